"""embedding="sasrec": SASRec's item table as the env's space; cached, leak-free, resolvable."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import frame, movies

import agents.sasrec_embeddings as se
from agents.config import RunConfig
from agents.factory import make_env
from agents.sasrec import SASRecConfig, fit_sasrec
from recgym.data import Dataset
from recgym.envs import MovieRecEnv
from recgym.errors import ConfigError, RecgymWarning

TINY = SASRecConfig(dim=8, max_len=12, max_epochs=2, device="cpu")


def chain_rows(n_users: int = 80, n_items: int = 30, length: int = 12, reverse=()) -> list:
    """User u consumes ``s, s+1, ...`` one per second; users in ``reverse`` the other way."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(1, n_users + 1):
        s = int(rng.integers(0, n_items - length + 1))
        seq = [s + j + 1 for j in range(length)]
        seq = seq[::-1] if u in reverse else seq
        rows += [(u, m, 4.0, 100 * u + j) for j, m in enumerate(seq)]
    return rows


def chain_env(rows: list | None = None, **kwargs) -> MovieRecEnv:
    ds = Dataset.from_frame(frame(rows or chain_rows()), movies(list(range(1, 31))),
                            rating_range=(0.5, 5.0), name="chain")  # fmt: skip
    return MovieRecEnv(dataset=ds, embedding="random", embedding_dim=4, frame_size=3, **kwargs)


def test_table_is_the_fitted_models_item_table_scaled_to_a_longest_row_of_one():
    env = chain_env()
    emb = se.sasrec_item_embeddings(env, 8, seed=1, config=TINY, cache=False)
    table = fit_sasrec(env, TINY, seed=1).net.item_emb.weight[1:].detach().numpy()
    np.testing.assert_allclose(emb, table / np.linalg.norm(table, axis=1).max(), rtol=1e-6)
    assert emb.shape == (30, 8) and emb.dtype == np.float32
    assert np.linalg.norm(emb, axis=1).max() == pytest.approx(1.0, abs=1e-6)
    # the norms are kept: rows differ in length, so a dot-product decode can prefer items
    assert np.ptp(np.linalg.norm(emb, axis=1)) > 0.05


def test_test_users_do_not_change_the_table():
    env = chain_env(split="test")
    test_users = set(env.episode_user_ids.tolist())
    assert env.context.split.strategy == "user" and test_users
    changed = chain_env(chain_rows(reverse=test_users), split="test")
    assert set(changed.episode_user_ids.tolist()) == test_users
    val_users = set(chain_env(split="val").episode_user_ids.tolist())
    train_user = min(set(range(1, 81)) - test_users - val_users)
    torch.use_deterministic_algorithms(True)
    try:
        a = se.sasrec_item_embeddings(env, 8, config=TINY, cache=False)
        b = se.sasrec_item_embeddings(changed, 8, config=TINY, cache=False)
        # a train user's log is read: the same change to it changes the table
        d = se.sasrec_item_embeddings(chain_env(chain_rows(reverse={train_user})), 8,
                                      config=TINY, cache=False)  # fmt: skip
    finally:
        torch.use_deterministic_algorithms(False)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, d)


def test_cache_round_trip_and_a_corrupt_file_is_refitted(fresh_cache, monkeypatch):
    env = chain_env()
    first = se.sasrec_item_embeddings(env, 8, config=TINY)
    files = list((fresh_cache / "embeddings").glob("*-sasrec-*.npy"))
    assert len(files) == 1 and not list((fresh_cache / "embeddings").glob("*.tmp*"))

    def no_fit(*args, **kwargs):
        raise AssertionError("the cached table should have been read")

    with monkeypatch.context() as m:
        m.setattr("agents.sasrec.fit_sasrec", no_fit)
        np.testing.assert_array_equal(se.sasrec_item_embeddings(env, 8, config=TINY), first)
        # the same ratings from files with other modification times: same content, same table
        ds = dataclasses.replace(env.context.dataset, fingerprint="copied-again")
        again = MovieRecEnv(dataset=ds, embedding="random", embedding_dim=4, frame_size=3)
        np.testing.assert_array_equal(se.sasrec_item_embeddings(again, 8, config=TINY), first)
    # other ratings are another file
    other = chain_env([(u, m, 3.0, t) for u, m, _, t in chain_rows()])
    assert se._cache_key(other, TINY, 0, "cpu") != se._cache_key(env, TINY, 0, "cpu")
    # another seed or another width is another file
    assert not np.array_equal(se.sasrec_item_embeddings(env, 8, seed=1, config=TINY), first)
    assert len(list((fresh_cache / "embeddings").glob("*-sasrec-*.npy"))) == 2
    files[0].write_bytes(b"not an array")
    with pytest.warns(RecgymWarning, match="corrupt"):
        again = se.sasrec_item_embeddings(env, 8, config=TINY)
    np.testing.assert_array_equal(again, first)


@pytest.fixture
def tiny_fit(monkeypatch):
    """resolve_embedding with the TINY model instead of the baseline's settings."""
    real = se.sasrec_item_embeddings

    def fit(env, dim=8, seed=0, **kwargs):
        return real(env, dim, seed, config=TINY, cache=False)

    monkeypatch.setattr(se, "sasrec_item_embeddings", fit)


def test_resolve_embedding_passes_other_methods_through():
    kwargs = {"embedding": "implicit", "embedding_dim": 8}
    out = se.resolve_embedding("MovieRecSynthetic-v0", kwargs)
    assert out == kwargs and out is not kwargs
    assert se.resolve_embedding("MovieRecSynthetic-v0", {}) == {}


def test_make_env_and_run_config_take_embedding_sasrec(tiny_fit):
    kwargs = {"embedding": "sasrec", "embedding_dim": 8}
    resolved = se.resolve_embedding("MovieRecSynthetic-v0", kwargs)
    assert kwargs["embedding"] == "sasrec"  # the caller's mapping is not changed
    table = resolved["embedding"]
    assert table.shape == (2000, 8) and resolved["embedding_dim"] == 8
    vec = make_env("MovieRecSynthetic-v0", n_envs=2, **kwargs)
    assert vec.observation_space.shape == (10 * 9,) and vec.action_space.shape == (8,)
    env = RunConfig(env_id="MovieRecSynthetic-v0", env_kwargs=kwargs).make_eval_env("val")
    np.testing.assert_array_equal(env.context.embeddings, table)
    assert env.context.split_name == "val"


def test_bad_input_names_the_value_and_the_fix():
    env = chain_env()
    with pytest.raises(ConfigError, match="embedding_dim"):
        se.sasrec_item_embeddings(env, 0, config=TINY, cache=False)
    with pytest.raises(ConfigError, match="embedding_seed"):
        se.sasrec_item_embeddings(env, 8, seed=-1, config=TINY, cache=False)
    # the environment itself (no torch) points to where the method lives
    with pytest.raises(ConfigError, match="agents"):
        MovieRecEnv(dataset=env.context.dataset, embedding="sasrec")
    # a typo of the agents' method gets the suggestion from the environment's own error
    with pytest.raises(ConfigError, match="Did you mean 'sasrec'"):
        MovieRecEnv(dataset=env.context.dataset, embedding="sasrc")
    with pytest.raises(ConfigError, match="Did you mean 'implicit'"):
        MovieRecEnv(dataset=env.context.dataset, embedding="implict")
