"""Small builders shared by tests."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd


def real_data_dir() -> Path | None:
    """The folder of ``$RECGYM_DATA_DIR`` holding ml-latest-small, or None."""
    for part in os.environ.get("RECGYM_DATA_DIR", "").split(os.pathsep):
        if part and (Path(part) / "ml-latest-small" / "ratings.csv").is_file():
            return Path(part)
    return None


@contextlib.contextmanager
def agents_log() -> Iterator[list[str]]:
    """The status lines the ``agents`` logger reports inside the block (progress lines apart).

    For module-scoped fixtures, where pytest's function-scoped ``caplog`` is not available.
    """
    lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.name == "agents":
                lines.append(record.getMessage())

    log = logging.getLogger("agents")
    handler, level = Lines(logging.INFO), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def frame(rows: list[tuple]) -> pd.DataFrame:
    """A ratings frame from ``(userId, movieId, rating, timestamp)`` tuples."""
    return pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])


def movies(ids: list[int], genres: list[str] | None = None) -> pd.DataFrame:
    """A movies frame with titles ``"Movie <id> (2000)"``."""
    return pd.DataFrame(
        {
            "movieId": ids,
            "title": [f"Movie {i} (2000)" for i in ids],
            "genres": genres or ["Drama"] * len(ids),
        }
    )


# A replay scenario with known answers: 12 identical users (so any split works), each rating
# movies 1..12 at t = 10, 20, ..., 120; a catalogue of movies 1..30; identity embeddings, so an
# action names its slate.
SCENARIO_RATINGS = [4.0, 3.0, 5.0, 1.0, 2.0, 4.5, 0.5, 5.0, 3.0, 2.0, 4.0, 1.0]
N_ITEMS = 30


def scenario_dataset(extra_rows: list[tuple] | None = None):
    """The scenario as a Dataset (movieId m is item index m - 1)."""
    from recgym.data import Dataset

    rows = [(u, m, SCENARIO_RATINGS[m - 1], 10 * m) for u in range(1, 13) for m in range(1, 13)]
    return Dataset.from_frame(
        frame(rows + (extra_rows or [])),
        movies(list(range(1, N_ITEMS + 1))),
        rating_range=(0.5, 5.0),
        name="scenario",
    )


def scenario_env(**kwargs):
    """A MovieRecEnv over the scenario: frame 2, slate 3, identity embeddings."""
    import numpy as np

    from recgym.envs import MovieRecEnv

    ds = kwargs.pop("dataset", None) or scenario_dataset()
    defaults = dict(
        dataset=ds,
        embedding=np.eye(ds.n_items, dtype=np.float32),
        frame_size=2,
        slate_size=3,
    )
    return MovieRecEnv(**{**defaults, **kwargs})


def act(*movie_ids: int, n: int = N_ITEMS):
    """An action whose slate is ``movie_ids`` in that order (identity embeddings)."""
    import numpy as np

    a = np.zeros(n, dtype=np.float32)
    for rank, m in enumerate(movie_ids):
        a[m - 1] = 1.0 - 0.1 * rank
    return a


def assert_same_info(a, b, path="info"):
    """Infos equal key by key, arrays exactly (dtype too), object arrays element-wise."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), (path, set(a) ^ set(b))
        for k in a:
            assert_same_info(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert a.shape == b.shape, path
        for x, y in zip(a, b, strict=True):
            assert_same_info(x, y, path + "[]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, (path, a.dtype, b.dtype)
        np.testing.assert_array_equal(a, b, err_msg=path)
    else:
        assert a == b or (a != a and b != b), (path, a, b)


def step_alike(vec, ref, actions):
    """Step two vector envs with ``actions``; assert the same results; return ``vec``'s step."""
    got, want = vec.step(actions), ref.step(actions)
    for x, y in zip(got[:4], want[:4], strict=True):
        np.testing.assert_array_equal(x, y)
    assert_same_info(got[4], want[4])
    return got


def assert_same_weights(train) -> None:
    """``train()`` (returning a model) twice, torch deterministic: the same weights to the bit."""
    import torch

    def weights():
        return [p.detach().cpu().numpy().copy() for p in train().policy.parameters()]

    torch.use_deterministic_algorithms(True)
    try:
        for a, b in zip(weights(), weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    finally:
        torch.use_deterministic_algorithms(False)
