"""What every copy of an environment shares: data, split, embeddings, decoder, simulator.

Building it loads the dataset, makes the split and fits the embeddings (all cached on disk), so
it is memoised in memory: ``gym.make`` twice, or a vector environment of 256 copies, builds it
once. Everything in it is read-only.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from recgym.data import Dataset, Episodes, Split, load_movielens, make_split, synthetic_dataset
from recgym.data.catalog import MOVIELENS
from recgym.embeddings import METHODS, item_embeddings
from recgym.errors import ConfigError, UnknownDatasetError, check_choice, check_int, suggest
from recgym.memo import Memo
from recgym.ranking import BACKENDS, METRICS, Ranker
from recgym.simulator import RatingModel

REWARDS = ("rating", "simulator")
SYNTHETIC = "synthetic"
_MEMO: Memo[EnvContext] = Memo(8)  # the contexts built last


#: The embedding dimension when ``embedding_dim`` is None.
DEFAULT_EMBEDDING_DIM = 32

#: The ``embedding`` method the agents package adds (SASRec's item table; it needs torch):
#: named here only to point users to it.
AGENTS_EMBEDDING = "sasrec"


@dataclass(eq=False)
class EnvContext:
    """Read-only data shared by environments of one configuration.

    Attributes:
        dataset: The ratings.
        split: The train/val/test split.
        split_name: Which split the episodes come from.
        episodes: The episodes of that split (users with too short a log skipped).
        embeddings: ``(n_items, dim)`` item vectors.
        ranker: The decoder over ``embeddings``.
        scaled_ratings: Every rating scaled to [-1, 1] (float32, ``(n_ratings,)``).
        simulator: The rating model, for ``reward="simulator"``.
        group_end: For each interaction, the flat index just past the last interaction of the
            same user in the same second (``(n_ratings,)``): the "next items" of a step.
        group_start: For each interaction, the flat index of the first interaction of the same
            user in the same second.
        n_skipped_users: Users of the split without an episode (too short a history or future,
            or a log that would exhaust the catalogue).
    """

    dataset: Dataset
    split: Split
    split_name: str
    episodes: Episodes
    embeddings: np.ndarray
    ranker: Ranker
    scaled_ratings: np.ndarray
    simulator: RatingModel | None
    group_end: np.ndarray
    group_start: np.ndarray
    n_skipped_users: int

    def episode_of_user(self, user_id: int) -> int:
        """Index of the episode that replays original user id ``user_id``."""
        from recgym.errors import UnknownUserError

        u = self.dataset.user_index(user_id)  # raises UnknownUserError for unknown ids
        pos = int(np.searchsorted(self.episodes.users, u))
        if pos < len(self.episodes) and self.episodes.users[pos] == u:
            return pos
        some = self.dataset.user_ids[self.episodes.users[:5]].tolist()
        raise UnknownUserError(
            f"User {user_id} has no episode in the {self.split_name!r} split of "
            f"{self.dataset.name} ({self.split.strategy} split): either the user "
            f"belongs to another split or their log is too short. Users of this split include "
            f"{some}; pass split=... to choose another split."
        )


def resolve_dataset(dataset: str | Dataset, data_dir: str | os.PathLike[str] | None) -> Dataset:
    """Load a dataset given by name (``"synthetic"`` generates one), or return it as is."""
    if isinstance(dataset, Dataset):
        return dataset
    if not isinstance(dataset, str):
        raise ConfigError(
            f"dataset={dataset!r} must be a dataset name ({sorted(MOVIELENS)} or "
            f"{SYNTHETIC!r}) or a recgym.data.Dataset."
        )
    if dataset == SYNTHETIC:
        return synthetic_dataset()
    if dataset not in MOVIELENS:
        names = [*MOVIELENS, SYNTHETIC]
        raise UnknownDatasetError(
            f"Unknown dataset {dataset!r}; known: {sorted(names)}." + suggest(dataset, names)
        )
    return load_movielens(dataset, data_dir=data_dir)


def _embedding_key(embedding: object) -> object:
    if isinstance(embedding, np.ndarray):
        return "matrix-" + hashlib.sha1(np.ascontiguousarray(embedding).tobytes()).hexdigest()
    return str(embedding)


def build_context(
    *,
    dataset: str | Dataset,
    data_dir: str | os.PathLike[str] | None,
    split: str,
    split_strategy: str,
    split_seed: int,
    frame_size: int,
    embedding: str | os.PathLike[str] | np.ndarray,
    embedding_dim: int | None,
    embedding_seed: int,
    slate_size: int,
    metric: str,
    reward: str,
    backend: str,
    device: str | None,
    min_history: int | None = None,
) -> EnvContext:
    """Build (or fetch from memory) the shared context of one environment configuration.

    Arguments are those of :class:`recgym.envs.MovieRecEnv`, plus ``min_history``: the
    interactions a user needs before an episode starts (``None``: ``frame_size``; see
    :class:`recgym.envs.MovieRecSeqEnv`). ``frame_size`` matters here only through it, so
    configurations with the same episodes share one context. Raises :class:`ConfigError` (or a
    data error) naming the bad value.
    """
    check_choice("split", split, ("train", "val", "test"))
    check_choice("split_strategy", split_strategy, ("user", "temporal"))
    check_choice("metric", metric, METRICS)
    check_choice("reward", reward, REWARDS)
    check_choice("backend", backend, BACKENDS)
    check_int("frame_size", frame_size)
    check_int("slate_size", slate_size)
    check_int("embedding_dim", embedding_dim, optional=True)
    check_int("min_history", min_history, optional=True)
    # the interactions an episode needs before its window
    need_name, need = "frame_size", frame_size
    if min_history is not None:
        need_name, need = "min_history", min_history
    ds = resolve_dataset(dataset, data_dir)
    key = (
        ds.fingerprint,
        split,
        split_strategy,
        split_seed,
        need,
        _embedding_key(embedding),
        embedding_dim,
        embedding_seed,
        slate_size,
        metric,
        reward,
        backend,
        device,
    )

    def build() -> EnvContext:
        the_split = make_split(ds, split_strategy, rng=split_seed)
        emb = _embeddings(ds, the_split, embedding, embedding_dim, embedding_seed)
        if slate_size > ds.n_items:
            raise ConfigError(
                f"slate_size={slate_size} exceeds the {ds.n_items} items of {ds.name}."
            )
        episodes = the_split.episodes(ds, split, need)
        # Before a user's last step, all but one of their items are consumed: the rest of the
        # catalogue must still fill a slate.
        fits = ds.user_lengths[episodes.users] - 1 + slate_size <= ds.n_items
        n_too_long = int((~fits).sum())
        episodes = Episodes(
            episodes.users[fits],
            episodes.future_start[fits],
            episodes.end[fits],
            episodes.n_skipped + n_too_long,
        )
        if len(episodes) == 0:
            raise ConfigError(
                f"The {split!r} split of {ds.name} ({split_strategy} split) has no user with more "
                f"than {need_name}={need} interactions in its window; use a smaller {need_name} "
                "or another split."
            )
        simulator = None
        if reward == "simulator":
            simulator = RatingModel(ds, the_split.train_mask, rank=min(32, emb.shape[1]))
        return EnvContext(
            dataset=ds,
            split=the_split,
            split_name=split,
            episodes=episodes,
            embeddings=emb,
            ranker=Ranker(emb, metric=metric, backend=backend, device=device),
            scaled_ratings=ds.scale_ratings(ds.ratings),
            simulator=simulator,
            group_end=same_second_group_end(ds),
            group_start=same_second_group_start(ds),
            n_skipped_users=episodes.n_skipped,
        )

    return _MEMO.get_or_build(key, build)


def _group_starts(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices where each (user, timestamp) group starts, and each interaction's group."""
    n = ds.n_ratings
    users = ds.interaction_users
    new = np.ones(n, dtype=bool)
    new[1:] = (users[1:] != users[:-1]) | (ds.timestamps[1:] != ds.timestamps[:-1])
    return np.flatnonzero(new), np.cumsum(new) - 1


def same_second_group_end(ds: Dataset) -> np.ndarray:
    """Per interaction, the flat index just past its (user, timestamp) group."""
    starts, group = _group_starts(ds)
    return np.append(starts[1:], ds.n_ratings)[group]


def same_second_group_start(ds: Dataset) -> np.ndarray:
    """Per interaction, the flat index of the first interaction of its (user, timestamp) group."""
    starts, group = _group_starts(ds)
    return starts[group]


def _embeddings(
    ds: Dataset,
    split: Split,
    embedding: str | os.PathLike[str] | np.ndarray,
    dim: int | None,
    seed: int,
) -> np.ndarray:
    if isinstance(embedding, np.ndarray):
        emb = np.asarray(embedding, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != ds.n_items:
            raise ConfigError(
                f"embedding matrix has shape {emb.shape}; it needs one row per item of "
                f"{ds.name}: ({ds.n_items}, dim)."
            )
        if dim is not None and emb.shape[1] != dim:
            raise ConfigError(
                f"embedding matrix has {emb.shape[1]} columns but embedding_dim={dim}; "
                f"omit embedding_dim or pass {emb.shape[1]}."
            )
        if not np.all(np.isfinite(emb)):
            raise ConfigError("embedding matrix holds NaN or inf values.")
        return emb
    dim = DEFAULT_EMBEDDING_DIM if dim is None else int(dim)
    if isinstance(embedding, str) and embedding in METHODS and embedding != "from_file":
        return item_embeddings(ds, embedding, dim, split=split, rng=seed)
    if isinstance(embedding, (str, os.PathLike)) and os.path.splitext(str(embedding))[1] in (
        ".npy",
        ".npz",
        ".pkl",
        ".pickle",
    ):
        return item_embeddings(ds, "from_file", dim, split=split, rng=seed, path=embedding)
    if isinstance(embedding, str) and embedding == AGENTS_EMBEDDING:
        raise ConfigError(
            f"embedding={AGENTS_EMBEDDING!r} is fitted by the agents package (it needs torch): "
            "build the environment with agents.make_env(...) or pass the matrix of "
            "agents.sasrec_embeddings.resolve_embedding(env_id, kwargs)."
        )
    raise ConfigError(
        f"embedding={embedding!r} must be one of {[m for m in METHODS if m != 'from_file']}, "
        "a path to a .npy/.npz/.pkl file, or an (n_items, dim) matrix (the agents package "
        f"adds {AGENTS_EMBEDDING!r})."
        + (suggest(embedding, (*METHODS, AGENTS_EMBEDDING)) if isinstance(embedding, str) else "")
    )
