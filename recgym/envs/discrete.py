"""``MovieRecDiscrete-v0``: the same replay with a handful of discrete actions, for coursework."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from recgym.clustering import kmeans
from recgym.envs.movie_rec import MovieRecEnv
from recgym.errors import ConfigError, check_choice

GROUPS = ("genres", "clusters")
OBSERVATIONS = ("embedding", "tabular")


class MovieRecDiscreteEnv(MovieRecEnv):
    """MovieRec with ``Discrete(K)`` actions: pick a group of movies, get its best slate.

    ## Description

    The same users, replay, rewards, transitions and episode ends as :class:`MovieRecEnv`
    (``MovieRec-v0``); only the action and, optionally, the observation differ.

    ## Action Space

    ``Discrete(K)``: a group of movies. ``groups="genres"`` (default): the dataset's genres
    (19 for ml-latest-small, ``K`` = number of genres); ``groups="clusters"``: ``n_groups``
    k-means clusters of the item embeddings (seeded). The environment turns group ``g`` into a
    slate: the user's *taste* is the rating-weighted mean of the embeddings of their last
    ``frame_size`` movies (as the ``embedding-mean`` baseline), and the slate is the
    ``slate_size`` unblocked movies of ``g`` with the highest dot product with it; when ``g``
    has fewer unblocked movies, the slate is filled with the best other movies.

    ## Observation Space

    ``observation="embedding"`` (default): the ``MovieRec-v0`` vector (for DQN).
    ``observation="tabular"``: ``Discrete(2 * S)`` with ``state = 2 * group + liked`` for the
    last consumed movie, where ``liked`` is 1 when its rating is above the middle of the scale.
    With clusters ``S = K``; with genres a movie's group is its rarest genre (the most specific),
    and movies without a genre form one more group, ``S = K + 1``. ``n_states`` says how many.

    ## Arguments

    Those of :class:`MovieRecEnv`, plus ``groups``, ``n_groups`` (clusters only; default 20),
    ``observation`` and ``group_seed`` (k-means seed).

    ## Version History

    * v0: initial release.

    Example:
        >>> import gymnasium as gym, recgym
        >>> env = gym.make("MovieRecDiscrete-v0", dataset="synthetic", observation="tabular",
        ...                embedding_dim=8)
        >>> env.action_space, env.observation_space
        (Discrete(14), Discrete(30))
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(3)
        >>> len(info["slate"])
        10
    """

    def __init__(
        self,
        *,
        groups: str = "genres",
        n_groups: int | None = None,
        observation: str = "embedding",
        group_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        """Build the base environment, then the item groups and the spaces."""
        check_choice("groups", groups, GROUPS)
        check_choice("observation", observation, OBSERVATIONS)
        if n_groups is not None and groups == "genres":
            raise ConfigError("n_groups applies to groups='clusters'; genres fix their number.")
        super().__init__(**kwargs)
        ds = self.dataset
        if groups == "genres":
            member = ds.genre_matrix.toarray().astype(bool)  # (n_items, K)
            if member.shape[1] < 2:
                raise ConfigError(f"{ds.name} lists fewer than 2 genres; use groups='clusters'.")
            rarity = member.sum(0)
            has = member.any(1)
            rarest = np.where(member, rarity[None, :], np.iinfo(np.int64).max).argmin(1)
            self.item_group = np.where(has, rarest, member.shape[1])  # no genre -> extra group
            self.group_names = [*ds.genres, "(no genres)"]
            self.n_states = 2 * (member.shape[1] + 1)
        else:
            k = 20 if n_groups is None else n_groups
            if not isinstance(k, (int, np.integer)) or not 2 <= k <= ds.n_items:
                raise ConfigError(f"n_groups={n_groups!r} must be an integer in [2, {ds.n_items}].")
            labels = kmeans(self.context.embeddings, int(k), rng=group_seed)
            member = np.zeros((ds.n_items, k), dtype=bool)
            member[np.arange(ds.n_items), labels] = True
            self.item_group = labels
            self.group_names = [f"cluster {j}" for j in range(k)]
            self.n_states = 2 * k
        self.member = member
        self.groups, self.observation_kind = groups, observation
        self._group: int | None = None  # the last group chosen, for render()
        self.action_space = spaces.Discrete(member.shape[1])
        if observation == "tabular":
            self.observation_space = spaces.Discrete(self.n_states)

    # ------------------------------------------------------------------ spaces
    def _observe(self, obs: np.ndarray) -> np.ndarray | int:
        if self.observation_kind == "embedding":
            return obs
        items, ratings = self._core.history(0)
        return int(2 * self.item_group[items[-1]] + int(ratings[-1] > 0))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray | int, dict[str, Any]]:
        """As :meth:`MovieRecEnv.reset`; the observation follows ``observation``."""
        obs, info = super().reset(seed=seed, options=options)
        self._group = None
        return self._observe(obs), info

    def taste(self) -> np.ndarray:
        """Rating-weighted mean embedding of the last ``frame_size`` consumed movies."""
        items, ratings = self._core.history(0)
        items, r = items[-self.frame_size :], ratings[-self.frame_size :].astype(np.float64)
        emb = self.context.embeddings[items].astype(np.float64)
        weight = np.abs(r).sum()
        return (r @ emb) / weight if weight > 0 else emb.mean(axis=0)

    def decode(self, action: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The slate group ``action`` gives now (see the class docstring), and its scores."""
        a = np.asarray(action)
        if a.shape not in ((), (1,)) or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"action must be one group index in [0, {self.action_space.n}).")
        g = int(a.reshape(()))
        if not 0 <= g < self.action_space.n:
            raise ValueError(f"action {g} is not a group index in [0, {self.action_space.n}).")
        scores = self.context.embeddings @ self.taste()
        scores = np.where(self.member[:, g], scores, scores - 1e6)  # group first, then the rest
        slate = self.recommend_from_scores(scores)
        return slate, scores[slate]

    def step(self, action: int | np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Turn the group into a slate, then reward and transition as MovieRec-v0."""
        self._check_running()
        slate, _ = self.decode(action)
        self._group = int(np.asarray(action).reshape(()))
        obs, reward, terminated, truncated, info = self._apply_slate(slate)
        return self._observe(obs), reward, terminated, truncated, info

    def step_slate(self, slate: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """As :meth:`MovieRecEnv.step_slate`; the observation follows ``observation``."""
        self._group = None
        obs, reward, terminated, truncated, info = super().step_slate(slate)
        return self._observe(obs), reward, terminated, truncated, info

    def _render_caption(self) -> str:
        """The group the last action chose, for the frame's slate heading."""
        return (
            "" if self._group is None else f"group {self._group}, {self.group_names[self._group]}"
        )
