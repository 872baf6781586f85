"""Recommendation policies behind one interface: trained agents and simple baselines.

Every policy has ``recommend(env, obs) -> slate`` (``slate_size`` item indices that the
environment accepts, see :meth:`recgym.envs.MovieRecEnv.step_slate`) and ``reset(env)`` at each
episode start, so :func:`agents.evaluate.evaluate` treats them all alike. Policies that act in
embedding space (:class:`AgentPolicy`, :class:`RandomActionPolicy`,
:class:`EmbeddingMeanPolicy`) also have SB3's ``predict(obs, ...) -> (action, state)``.

Baselines fit on the TRAIN split only (``env.context.split.train_mask``):

* ``random``: a uniformly random slate of allowed items.
* ``popularity``: items by number of train ratings.
* ``itemknn``: item-item cosine similarity of train co-occurrence (who rated both),
  ``sim(i, j) = c_ij / sqrt(n_i n_j)``; an item scores ``sum_j w_j sim(i, j)`` over the state's
  last ``n_recent`` items ``j``, weighted by ``w_j = (scaled rating + 1) / 2``.
* ``embedding-mean``: the action is the rating-weighted mean of the state's embeddings,
  ``sum_j r_j e_j / sum_j |r_j|`` with ratings scaled to [-1, 1] (disliked items push away).
* ``sasrec``: a SASRec next-item transformer with its own item embeddings, trained with a
  full-softmax cross-entropy on the train users' sequences and early-stopped on validation
  users (:mod:`agents.sasrec`; ``arch="gru"`` for GRU4Rec).
* ``oracle``: reads the user's future (privileged): the items of the next timestamp first,
  then the rest of the future by rating. An upper bound, not a recommender.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from agents.config import BASELINES
from recgym.embeddings import rating_matrix
from recgym.envs import MovieRecEnv
from recgym.errors import ConfigError, suggest


class Policy:
    """Base class: a policy recommends a slate for the current state of an environment."""

    name = "policy"

    def reset(self, env: MovieRecEnv) -> None:
        """Called at the start of each episode."""

    def recommend(self, env: MovieRecEnv, obs: np.ndarray) -> np.ndarray:
        """Return ``env.slate_size`` allowed item indices, best first."""
        raise NotImplementedError


class ActionPolicy(Policy):
    """A policy that acts in embedding space; the environment decodes its action.

    ``batch_size > 1`` tells :func:`agents.evaluate.evaluate` to replay that many users at
    once and ask for their actions in one :meth:`act_batch` call (for a network, one forward
    pass instead of one per user); the policy must then keep no state between steps.
    """

    batch_size = 1

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The action for ``obs``."""
        raise NotImplementedError

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        """The actions for a ``(B, obs_dim)`` batch of observations."""
        return np.stack([self.act(o) for o in obs])

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3-style ``predict`` (one observation or a batch)."""
        obs = np.asarray(observation, dtype=np.float32)
        if obs.ndim == 1:
            return self.act(obs), None
        return self.act_batch(obs), None

    def recommend(self, env: MovieRecEnv, obs: np.ndarray) -> np.ndarray:
        """Decode the action to the environment's slate."""
        return env.decode(self.act(obs))[0]

    def recommend_batch(
        self, envs: list[MovieRecEnv], obs: np.ndarray, active: list[int]
    ) -> dict[int, np.ndarray]:
        """The slates of the ``active`` rows of a batch (``envs[s]`` holds row ``s``'s user)."""
        actions = self.act_batch(obs)
        return {s: envs[s].decode(actions[s])[0] for s in active}


class AgentPolicy(ActionPolicy):
    """A trained Stable-Baselines3 model, acting deterministically.

    Evaluation replays ``batch_size`` users at once with it: one forward pass per step for
    all of them (SB3's ``predict`` costs about as much for 64 observations as for one).

    Args:
        model: Any SB3 algorithm whose observation space matches the environment's.
        name: Label for tables.
        batch_size: Users evaluated at once (1: one at a time).
    """

    def __init__(self, model: Any, name: str = "agent", batch_size: int = 64) -> None:
        """Wrap ``model``."""
        self.model = model
        self.name = name
        self.batch_size = batch_size

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The model's deterministic action."""
        return self.model.predict(obs, deterministic=True)[0]

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        """The model's deterministic actions for a batch, in one forward pass."""
        return self.model.predict(obs, deterministic=True)[0]


class RandomActionPolicy(ActionPolicy):
    """Uniform random actions in ``[-1, 1]^dim`` (what an untrained agent does)."""

    name = "random-action"

    def __init__(self, dim: int, seed: int = 0) -> None:
        """Seeded generator of ``dim``-dimensional actions."""
        self.dim = dim
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """A random action."""
        return self.rng.uniform(-1, 1, self.dim).astype(np.float32)


class RandomPolicy(Policy):
    """A uniformly random slate of allowed items (seeded)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        """Seeded generator."""
        self.rng = np.random.default_rng(seed)

    def recommend(self, env: MovieRecEnv, obs: np.ndarray) -> np.ndarray:
        """Random scores, then the top slate among allowed items."""
        return env.recommend_from_scores(self.rng.random(env.dataset.n_items))


class PopularityPolicy(Policy):
    """Most-rated items of the train split first."""

    name = "popularity"

    def __init__(self, env: MovieRecEnv) -> None:
        """Count train ratings per item."""
        ctx = env.context
        self.scores = ctx.dataset.item_popularity(ctx.split.train_mask).astype(np.float64)

    def recommend(self, env: MovieRecEnv, obs: np.ndarray) -> np.ndarray:
        """The most popular allowed items."""
        return env.recommend_from_scores(self.scores)


class ItemKNNPolicy(Policy):
    """Item-item cosine co-occurrence kNN over the state's recent items (see module docs).

    Args:
        env: The environment (its train split is used).
        n_recent: How many of the most recent consumed items score the catalogue.
    """

    name = "itemknn"

    def __init__(self, env: MovieRecEnv, n_recent: int = 10) -> None:
        """Build the binary train matrix and item norms."""
        ctx = env.context
        x = rating_matrix(ctx.dataset, ctx.split.train_mask)
        x.data[:] = 1.0
        self.x = sp.csr_matrix(x, dtype=np.float64)
        self.xt = self.x.T.tocsr()
        counts = np.asarray(self.x.sum(axis=0)).ravel()
        self.inv_norm = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
        self.n_recent = n_recent

    def scores(self, env: MovieRecEnv) -> np.ndarray:
        """``sum_j w_j sim(i, j)`` over the recent items ``j``, for every item ``i``."""
        items, ratings = env.history()
        items, ratings = items[-self.n_recent :], ratings[-self.n_recent :]
        h = np.zeros(self.x.shape[1])
        np.add.at(h, items, (ratings.astype(np.float64) + 1.0) / 2.0)
        per_user = self.x @ (h * self.inv_norm)
        return (self.xt @ per_user) * self.inv_norm

    def recommend(self, env: MovieRecEnv, obs: np.ndarray) -> np.ndarray:
        """The allowed items most similar to the recent ones."""
        return env.recommend_from_scores(self.scores(env))


class EmbeddingMeanPolicy(ActionPolicy):
    """Action = rating-weighted mean of the state's embeddings (see module docs).

    Args:
        frame_size: Items averaged: the observation's frame (``MovieRec-v0``), or the last
            ``frame_size`` slots of a sequence observation.
        dim: Embedding dimension.
        history_size: ``None`` for ``MovieRec-v0``'s layout; the slots of a
            ``MovieRecSeq-v0`` observation (embeddings, ratings, mask). The last
            ``frame_size`` slots are exactly ``MovieRec-v0``'s frame, so both envs get the
            same actions; padding slots (mask 0) are left out.
    """

    name = "embedding-mean"

    def __init__(self, frame_size: int, dim: int, history_size: int | None = None) -> None:
        """Remember the observation layout."""
        self.frame_size, self.dim, self.history_size = frame_size, dim, history_size

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Rating-weighted mean of the state's item embeddings."""
        f, d = self.frame_size, self.dim
        if self.history_size is None:
            emb = obs[: f * d].reshape(f, d).astype(np.float64)
            r = obs[f * d :].astype(np.float64)
        else:
            h = self.history_size
            f = min(f, h)
            real = obs[h * (d + 1) + h - f :] > 0  # the mask of the last f slots
            emb = obs[(h - f) * d : h * d].reshape(f, d)[real].astype(np.float64)
            r = obs[h * d + h - f : h * (d + 1)][real].astype(np.float64)
        weight = np.abs(r).sum()
        a = (r @ emb) / weight if weight > 0 else emb.mean(axis=0)
        return a.astype(np.float32)


class OraclePolicy(Policy):
    """Upper bound: recommends from the user's actual future (privileged, see module docs)."""

    name = "oracle"

    def recommend(self, env: MovieRecEnv, obs: np.ndarray) -> np.ndarray:
        """Next-timestamp items first, then the rest of the future by rating."""
        items, ratings, ts = env.future()
        scores = np.zeros(env.dataset.n_items)
        if len(items):
            scores[items] = 1.0 + ratings / 10.0
            scores[items[ts == ts[0]]] += 10.0
        return env.recommend_from_scores(scores)


def make_baseline(name: str, env: MovieRecEnv, seed: int = 0, **options: Any) -> Policy:
    """Build a baseline by name for ``env`` (fitted on its train split).

    Args:
        name: One of :data:`BASELINES` (or ``"random-action"``).
        env: The (unwrapped) environment whose dataset and split to use.
        seed: Seed of the random baselines and of ``sasrec``'s training.
        **options: ``sasrec`` only: fields of :class:`agents.sasrec.SASRecConfig`
            (``arch="gru"``, ``dim=128``, ...), ``path`` (load saved weights instead of
            training) and ``progress``. A fitted ``sasrec`` is cached in memory per dataset,
            split, seed and options, so asking again does not retrain.

    Raises:
        ConfigError: For an unknown name (with the closest known one), or options given to a
            baseline that takes none.
    """
    if options and name != "sasrec":
        raise ConfigError(
            f"Baseline {name!r} takes no options; got {sorted(options)}. Only 'sasrec' does."
        )
    if name == "sasrec":
        from agents.sasrec import sasrec_policy  # the transformer's code only when asked for

        return sasrec_policy(env, seed=seed, **options)
    if name == "random":
        return RandomPolicy(seed)
    if name == "random-action":
        return RandomActionPolicy(env.embedding_dim, seed)
    if name == "popularity":
        return PopularityPolicy(env)
    if name == "itemknn":
        return ItemKNNPolicy(env)
    if name == "embedding-mean":
        history_size = getattr(env, "history_size", None)  # MovieRecSeq's layout
        return EmbeddingMeanPolicy(env.frame_size, env.embedding_dim, history_size)
    if name == "oracle":
        return OraclePolicy()
    raise ConfigError(
        f"Unknown baseline {name!r}; choose from {list(BASELINES)}." + suggest(name, BASELINES)
    )
