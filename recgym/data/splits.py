"""Leak-free train/validation/test splits, and the episodes each split replays.

Two strategies, both reproducible:

* **User split** (:func:`split_users`): users are permuted with a seeded generator and cut into
  train/val/test by ``fractions`` (default 80/10/10). An episode replays one whole user of the
  split: the first ``frame_size`` interactions seed the state, the rest are the future.
  Fitted models (embeddings, popularity, rating simulator) see the train users' ratings only.
* **Temporal split** (:func:`temporal_split`): two global cut-off times ``t_val < t_test``
  (default: the 80% and 90% quantiles of all timestamps). Train episodes replay each user's
  interactions before ``t_val``; val episodes replay those in ``[t_val, t_test)`` and test
  episodes those from ``t_test`` on, the state seeded from the user's last ``frame_size``
  interactions before the window. Fitted models see interactions before ``t_val`` only.

Either way an episode is a window ``[future_start, end)`` of one user's time-ordered
interactions; everything the user did before ``future_start`` is their history (consumed, and
masked out of recommendations). Users with fewer than ``frame_size`` history or no future
interaction in the window are skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recgym.data.dataset import Dataset
from recgym.errors import ConfigError, check_choice
from recgym.seeding import RNGLike, as_generator, seed_key

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Episodes:
    """The episodes of one split: one window of one user's interactions each.

    Attributes:
        users: User index of each episode (int64).
        future_start: Flat index where the replayed future starts; the user's interactions from
            ``indptr[user]`` up to it are the history (int64).
        end: Flat index (exclusive) where the future ends (int64).
        n_skipped: Users of the split skipped for too short a history or no future.
    """

    users: np.ndarray
    future_start: np.ndarray
    end: np.ndarray
    n_skipped: int

    def __len__(self) -> int:
        """Number of episodes."""
        return len(self.users)


@dataclass(frozen=True)
class Split:
    """A train/val/test split of a dataset.

    Attributes:
        strategy: ``"user"`` or ``"temporal"``.
        train_mask: Interactions fitted models may see (bool, ``(n_ratings,)``).
        user_sets: For the user split, the sorted user indices of each split.
        cutoffs: For the temporal split, ``(t_val, t_test)`` in unix seconds.
        key: Identifies the split for cache keys (``None`` if not reproducible from a seed).
    """

    strategy: str
    train_mask: np.ndarray
    user_sets: dict[str, np.ndarray] = field(default_factory=dict)
    cutoffs: tuple[int, int] | None = None
    key: str | None = None

    def episodes(self, dataset: Dataset, name: str, frame_size: int) -> Episodes:
        """Return the episodes that split ``name`` replays.

        Args:
            dataset: The dataset this split was made from.
            name: ``"train"``, ``"val"`` or ``"test"``.
            frame_size: Interactions needed in the history to seed the state.

        Returns:
            The episodes, users whose history or future is too short skipped.
        """
        check_choice("split", name, SPLITS)
        start = dataset.indptr[:-1]
        stop = dataset.indptr[1:]
        if self.strategy == "user":
            users = self.user_sets[name]
            fs, end = start[users] + frame_size, stop[users]
        else:
            t_val, t_test = self.cutoffs  # type: ignore[misc]
            users = np.arange(dataset.n_users)
            lo, hi = {
                "train": (None, t_val),
                "val": (t_val, t_test),
                "test": (t_test, None),
            }[name]
            fs = start + frame_size if lo is None else _first_at_or_after(dataset, lo)
            end = stop if hi is None else _first_at_or_after(dataset, hi)
            fs = np.maximum(fs, start)
        ok = (fs - start[users] >= frame_size) & (end > fs)
        return Episodes(
            users=users[ok].astype(np.int64),
            future_start=fs[ok].astype(np.int64),
            end=end[ok].astype(np.int64),
            n_skipped=int((~ok).sum()),
        )


def _first_at_or_after(dataset: Dataset, t: int) -> np.ndarray:
    """Per user, the flat index of the first interaction at or after time ``t``."""
    before = (dataset.timestamps < t).astype(np.int64)
    counts = np.add.reduceat(before, dataset.indptr[:-1]) if dataset.n_ratings else before
    return dataset.indptr[:-1] + counts


def split_users(
    dataset: Dataset,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    rng: RNGLike = 0,
) -> Split:
    """Split users into train/val/test by a seeded permutation.

    ``n_test = round(n * fractions[2])``, ``n_val = round(n * fractions[1])`` (each at least one
    when its fraction is positive), the rest train.

    Args:
        dataset: The dataset.
        fractions: Train, val and test shares (non-negative, summing to 1).
        rng: Seed or generator of the permutation.

    Returns:
        The split.

    Raises:
        ConfigError: On bad fractions or too few users.

    Examples:
        >>> from recgym.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=50, n_items=200, n_ratings=1500)
        >>> s = split_users(ds, rng=0)
        >>> [len(s.user_sets[k]) for k in ("train", "val", "test")]
        [40, 5, 5]
    """
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise ConfigError(
            f"fractions={tuple(fractions)} must be three non-negative shares summing to 1, "
            "e.g. (0.8, 0.1, 0.1)."
        )
    n = dataset.n_users
    n_test = max(int(f[2] > 0), round(n * f[2]))
    n_val = max(int(f[1] > 0), round(n * f[1]))
    if n_test + n_val >= n and f[0] > 0:
        raise ConfigError(
            f"{n} users are too few for fractions {tuple(fractions)}: no train user would remain."
        )
    perm = as_generator(rng).permutation(n)
    sets = {
        "test": np.sort(perm[:n_test]),
        "val": np.sort(perm[n_test : n_test + n_val]),
        "train": np.sort(perm[n_test + n_val :]),
    }
    is_train = np.zeros(n, dtype=bool)
    is_train[sets["train"]] = True
    key = seed_key(rng)
    return Split(
        strategy="user",
        train_mask=is_train[dataset.interaction_users],
        user_sets=sets,
        key=None if key is None else f"user-{f.round(6).tolist()}-{key}",
    )


def temporal_split(
    dataset: Dataset,
    cutoffs: tuple[int, int] | None = None,
    quantiles: tuple[float, float] = (0.8, 0.9),
) -> Split:
    """Split interactions by two global cut-off times.

    Args:
        dataset: The dataset.
        cutoffs: ``(t_val, t_test)`` in unix seconds; default from ``quantiles``.
        quantiles: Quantiles of all timestamps used as cut-offs when ``cutoffs`` is None.

    Returns:
        The split (``train_mask`` = interactions before ``t_val``).

    Raises:
        ConfigError: If the cut-offs are not increasing.
    """
    if cutoffs is None:
        q = np.asarray(quantiles, dtype=float)
        if q.shape != (2,) or not (0 < q[0] <= q[1] < 1):
            raise ConfigError(f"quantiles={quantiles} must satisfy 0 < q_val <= q_test < 1.")
        cutoffs = tuple(int(x) for x in np.quantile(dataset.timestamps, q))
    t_val, t_test = (int(c) for c in cutoffs)
    if t_val > t_test:
        raise ConfigError(f"cutoffs=({t_val}, {t_test}): t_val must not be after t_test.")
    return Split(
        strategy="temporal",
        train_mask=dataset.timestamps < t_val,
        cutoffs=(t_val, t_test),
        key=f"temporal-{t_val}-{t_test}",
    )


def make_split(dataset: Dataset, strategy: str = "user", rng: RNGLike = 0) -> Split:
    """Make a split with default settings: ``"user"`` (80/10/10, seeded) or ``"temporal"``."""
    check_choice("split_strategy", strategy, ("user", "temporal"))
    return split_users(dataset, rng=rng) if strategy == "user" else temporal_split(dataset)
