"""``MovieRec-v0``: replay a real MovieLens user; recommend slates by nearest embedding."""

from __future__ import annotations

import copy
import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from recgym.data import Dataset
from recgym.envs.context import EnvContext, build_context
from recgym.envs.core import ReplayCore, check_slate, choose_episode, reset_info, step_info
from recgym.envs.render import Snapshot, render_frame, render_table
from recgym.errors import ConfigError, check_int
from recgym.ranking import topk_of_scores


class MovieRecEnv(gym.Env):
    """Recommend movies to a replayed MovieLens user, one slate per step.

    ## Description

    Each episode replays one real user of the chosen split, in the order they rated movies
    (ties within a second ordered by a seeded hash, see :mod:`recgym.data.dataset`). The user's
    first ``frame_size`` interactions (for temporal val/test episodes: their last
    ``frame_size`` before the window) seed the state; the rest of their log in the window is the
    *future* ``F``. Each step the agent proposes a point in item-embedding space; the
    environment ranks the catalogue against it and shows the top ``slate_size`` movies. Movies
    of the slate that the user rated somewhere in ``F`` are *hits*: the user watches them.

    ## Action Space

    ``Box(-1, 1, (embedding_dim,), float32)``: a point in the item-embedding space. It is decoded
    by nearest-embedding ranking (``metric``: dot, cosine, euclidean or correlation) over the
    catalogue, with items the user already consumed masked out and, unless ``allow_repeats``,
    items already shown in this episode masked too (a user who passed on a movie is not shown
    it again; when fewer than ``slate_size`` candidates remain, the least recently shown are
    released). The top ``slate_size`` items by their float64 score, best first, form the
    slate; ties go to the lower item index (:mod:`recgym.ranking`). Actions are not clipped;
    NaN, inf or a wrong shape raise ``ValueError``.

    ## Observation Space

    ``Box(shape=(frame_size * (embedding_dim + 1),), float32)``: the embeddings of the last
    ``frame_size`` consumed items, oldest first, flattened, followed by their ratings scaled
    linearly from the dataset's rating range to [-1, 1] (RecNN's layout: 1290 values for
    ``frame_size=10``, ``embedding_dim=128``). Bounds are [-1, 1] for unit-norm embeddings.

    ## Rewards

    ``reward="rating"`` (default): each slate position ``p`` (0-based) contributes its item's
    rating in ``F`` scaled to [-1, 1] if it is a hit, else ``unrated_reward`` (0); position
    weights ``w_p = 1 / log2(p + 2)`` are normalised to sum to 1, so a slate of top-rated hits
    scores 1 and a slate of hits rated at the bottom of the scale scores -1.
    ``hit_discount=g`` (default 1.0: off) discounts a hit by how far ahead in the log it comes:
    its contribution is multiplied by ``g ** n``, ``n`` the number of the user's remaining
    future items logged in an earlier second than it, so a hit on the user's next items counts
    fully and a hit far ahead little. It asks for what the ranking metrics measure (the next
    items) rather than for any item of the user's future.
    ``reward="simulator"``: every slate item contributes its rating predicted by a biased matrix
    factorisation fitted on the train split (:mod:`recgym.simulator`), scaled the same way; the
    transition is unchanged.

    ## Starting State

    ``reset`` picks an episode (user) of the split uniformly with ``self.np_random``, or the one
    given by ``options={"user_id": <original userId>}`` (or ``{"episode": <index>}``). Users
    with fewer than ``frame_size`` interactions before the window, none in it, or a log that
    would leave fewer than ``slate_size`` unconsumed items, are skipped; their number is
    :attr:`n_skipped_users`. Construction does no reset and draws no randomness.

    ## Transition

    Hits are consumed: removed from ``F`` and appended to the state in log order. With no hit
    the user consumes their next logged item anyway. So every step consumes at least one item
    and actions change the next state.

    ## Episode End

    * truncated: ``F`` is exhausted (the log ended; the user did not leave), or the
      ``max_episode_steps`` given to ``gym.make`` is reached.
    * terminated: with ``patience=N``, the user leaves after ``N`` consecutive slates without a
      hit.

    ## Info

    ``reset``: ``user_id``, ``episode``, ``n_history``, ``n_future``. ``step``: ``user_id``,
    ``slate`` (item indices, int64), ``slate_movie_ids``, ``hits`` (bool per position),
    ``hit_ratings`` (the raw rating of each hit, 0 otherwise: tell them apart with ``hits``;
    not NaN, which no equality check, Gymnasium's included, can compare), ``next_items`` and
    ``next_movie_ids`` (the user's actual next items: every remaining item of the next logged
    timestamp, since ratings within a second have no known order), ``consumed`` (items consumed
    this step, log order), ``n_future_left``. These suffice for HR/NDCG/MRR/precision. The
    variable-length fields (``next_items``, ``next_movie_ids``, ``consumed``) are tuples, so
    vector environments batch them as object arrays.

    ## Arguments

    * ``dataset``: ``"ml-latest-small"`` (default), any MovieLens name, ``"synthetic"``
      (generated, no download) or a :class:`recgym.data.Dataset`.
    * ``data_dir``: where to look for the data first.
    * ``split``: ``"train"`` (default), ``"val"`` or ``"test"``.
    * ``split_strategy``: ``"user"`` (default; 80/10/10 of users) or ``"temporal"``.
    * ``split_seed``: seed of the user split (0).
    * ``frame_size``: consumed items in the state (10).
    * ``embedding``: ``"implicit"`` (default: truncated SVD of who rated what in the train
      split), ``"sppmi"`` (factorised positive PMI of movies the train users watched within
      three steps of each other), ``"svd"`` (of the user-centred ratings), ``"genres"``,
      ``"random"``, a ``.npy``/``.npz``/``.pkl`` path, or an ``(n_items, dim)`` matrix
      (:mod:`recgym.embeddings`), used as given (the agents package's ``"sasrec"``, SASRec's
      learned item table, arrives as such a matrix: ``agents.sasrec_embeddings``).
    * ``embedding_dim``: dimension (32; for a matrix, its width).
    * ``embedding_seed``: seed of the embedding fit (0).
    * ``slate_size``: items per slate (10).
    * ``metric``: ``"dot"`` (default), ``"cosine"``, ``"euclidean"`` or ``"correlation"``
      (Pearson correlation, ``1 - scipy.spatial.distance.correlation``; see
      :mod:`recgym.ranking`).
    * ``reward``: ``"rating"`` (default) or ``"simulator"``.
    * ``unrated_reward``: contribution of a slate item the user never rated (0.0), in [-1, 1].
    * ``hit_discount``: discount of hits by how far ahead they come (1.0: none), in (0, 1].
    * ``allow_repeats``: turn the shown-item mask off (False).
    * ``patience``: slates without a hit before the user leaves (None: never).
    * ``backend``: decoder backend, ``"numpy"`` (default), ``"torch"`` or ``"faiss"``.
    * ``device``: torch device for ``backend="torch"``.
    * ``render_mode``: ``"ansi"`` (returns the slate table), ``"human"`` (prints it) or
      ``"rgb_array"`` (returns a picture of the state and the slate: the last ten movies
      watched with their ratings, the slate with its hits on a green band, and the step's
      reward; an ``(H, 800, 3)`` uint8 array whose height depends on ``frame_size`` and
      ``slate_size``, 528 by default). Stable-Baselines3 (``DDPG("MlpPolicy",
      "MovieRec-v0")``, ``make_vec_env``), the RL Zoo and ``RecordVideo`` ask for it. Drawn
      only when ``render()`` is called.

    ## Version History

    * v0: initial release. Before release, the default ``embedding`` became ``"implicit"``
      (it was ``"svd"``): on ml-latest-small's validation users every agent and the
      ``embedding-mean`` baseline rank better in it (behaviour cloning: NDCG@10 0.042 against
      0.013 with 32 dimensions; ``benchmarks/results/ml-latest-small/tuning.md``), and
      ``hit_discount`` was added (its default, 1.0, is the original reward). ``"sppmi"``
      embeddings were added as an option and measured as a default, and not made it: they
      raised the cloned actor's test NDCG@10 (0.0444 -> 0.0501) but lowered its return
      (2.584 -> 2.484) and every agent's, to below item-kNN's (that run had 3,000 online steps
      against 5,000; the cloned actor, which has none, shows the same drop), and did not
      raise the best agent's NDCG@10 (``benchmarks/results/ml-latest-small/user-sppmi/``).
      The space study's best, SASRec's learned item table (validation NDCG@10 of the cloned
      actor 0.053 against 0.042), is the agents' default (``agents.sasrec_embeddings``), not
      this environment's: it needs torch and a model fit, and ``recgym`` imports neither.
      ``render_mode="rgb_array"`` was added later, with no change to the dynamics.

    ## Registered Configurations

    =======================  ===================  ==========================================
    id                       dataset              notes
    =======================  ===================  ==========================================
    MovieRec-v0              ml-latest-small      defaults above
    MovieRec-100k-v0         ml-100k              whole-star ratings
    MovieRec-1M-v0           ml-1m
    MovieRec-20M-v0          ml-20m
    MovieRec-25M-v0          ml-25m
    MovieRecSynthetic-v0     synthetic            600 users, 2,000 items; needs no download
    =======================  ===================  ==========================================

    ``gym.make_vec(id, num_envs=N)`` gives :class:`recgym.envs.MovieRecVectorEnv`, which decodes
    all sub-environments in one matrix product. ``MovieRecSeq-v0``
    (:class:`recgym.envs.MovieRecSeqEnv`: the last ``history_size`` items as the observation)
    and ``MovieRecDiscrete-v0`` (:class:`recgym.envs.MovieRecDiscreteEnv`: discrete actions)
    replay the same users with the same rewards and transitions.

    Example:
        >>> import gymnasium as gym, recgym
        >>> env = gym.make("MovieRecSynthetic-v0", embedding_dim=8)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, env.action_space.shape
        ((90,), (8,))
        >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        >>> len(info["slate"]), -1.0 <= reward <= 1.0
        (10, True)
    """

    metadata = {"render_modes": ["ansi", "human", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        dataset: str | Dataset = "ml-latest-small",
        data_dir: str | os.PathLike[str] | None = None,
        split: str = "train",
        split_strategy: str = "user",
        split_seed: int = 0,
        frame_size: int = 10,
        embedding: str | os.PathLike[str] | np.ndarray = "implicit",
        embedding_dim: int | None = None,
        embedding_seed: int = 0,
        slate_size: int = 10,
        metric: str = "dot",
        reward: str = "rating",
        unrated_reward: float = 0.0,
        hit_discount: float = 1.0,
        allow_repeats: bool = False,
        patience: int | None = None,
        backend: str = "numpy",
        device: str | None = None,
        render_mode: str | None = None,
        _min_history: int | None = None,
    ) -> None:
        """Validate the configuration and build (or share) the data context. No reset here.

        ``_min_history`` is for subclasses (:class:`~recgym.envs.MovieRecSeqEnv`): the
        interactions a user needs before an episode starts, instead of ``frame_size``.
        """
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(
                f"render_mode={render_mode!r} is not supported; use one of "
                f"{self.metadata['render_modes']} or None."
            )
        if not isinstance(unrated_reward, (int, float)) or not -1.0 <= unrated_reward <= 1.0:
            raise ConfigError(f"unrated_reward={unrated_reward!r} must be a number in [-1, 1].")
        if (
            isinstance(hit_discount, bool)
            or not isinstance(hit_discount, (int, float))
            or not 0.0 < hit_discount <= 1.0
        ):
            raise ConfigError(
                f"hit_discount={hit_discount!r} must be a number in (0, 1] (1.0: no discount)."
            )
        if not isinstance(allow_repeats, (bool, np.bool_)):
            raise ConfigError(f"allow_repeats={allow_repeats!r} must be True or False.")
        check_int("patience", patience, optional=True)
        self._ctx = build_context(
            dataset=dataset,
            data_dir=data_dir,
            split=split,
            split_strategy=split_strategy,
            split_seed=split_seed,
            frame_size=frame_size,
            embedding=embedding,
            embedding_dim=embedding_dim,
            embedding_seed=embedding_seed,
            slate_size=slate_size,
            metric=metric,
            reward=reward,
            backend=backend,
            device=device,
            min_history=_min_history,
        )
        self.frame_size = int(frame_size)
        self.slate_size = int(slate_size)
        self.reward_mode = reward
        self.unrated_reward = float(unrated_reward)
        self.hit_discount = float(hit_discount)
        self.allow_repeats = bool(allow_repeats)
        self.patience = patience
        self.render_mode = render_mode

        ctx = self._ctx
        emb = ctx.embeddings
        self.embedding_dim = emb.shape[1]
        lo = float(min(-1.0, emb.min()))
        hi = float(max(1.0, emb.max()))
        n_obs = self.frame_size * (self.embedding_dim + 1)
        self.observation_space = spaces.Box(lo, hi, (n_obs,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (self.embedding_dim,), np.float32)

        self._core = self.make_core(1)
        self._row = np.zeros(1, dtype=np.int64)
        self._last: dict[str, Any] | None = None
        # for render(): the episode's steps, last reward and return
        self._steps, self._reward, self._return = 0, None, 0.0

    def make_core(self, n: int) -> ReplayCore:
        """A :class:`~recgym.envs.core.ReplayCore` of ``n`` slots with this configuration.

        The vector environment builds its core here too, so it replays exactly as this env.
        """
        return ReplayCore(
            self._ctx,
            n,
            frame_size=self.frame_size,
            slate_size=self.slate_size,
            unrated_reward=self.unrated_reward,
            allow_repeats=self.allow_repeats,
            patience=self.patience,
            hit_discount=self.hit_discount,
        )

    def sibling(self) -> MovieRecEnv:
        """Another environment with this one's configuration and data, with no episode yet.

        It shares the read-only :attr:`context` and every setting (reward, ``hit_discount``,
        patience, a subclass's own such as ``history_size``), so the two replay users side by
        side exactly as two ``gym.make`` calls with the same arguments would; nothing is
        loaded or fitted again. ``agents.evaluate`` replays several users at once this way.
        """
        twin = copy.copy(self)
        twin._core = self.make_core(1)
        twin._row = np.zeros(1, dtype=np.int64)
        twin._last = None
        twin._steps, twin._reward, twin._return = 0, None, 0.0
        twin._np_random, twin._np_random_seed = None, None
        return twin

    # ---------------------------------------------------------------- properties
    @property
    def context(self) -> EnvContext:
        """The shared read-only data (dataset, split, embeddings, decoder)."""
        return self._ctx

    @property
    def dataset(self) -> Dataset:
        """The dataset the users come from."""
        return self._ctx.dataset

    @property
    def n_episodes(self) -> int:
        """Number of users (episodes) in the split."""
        return len(self._ctx.episodes)

    @property
    def n_skipped_users(self) -> int:
        """Users of the split without an episode (log too short)."""
        return self._ctx.n_skipped_users

    @property
    def episode_user_ids(self) -> np.ndarray:
        """Original user ids of the split's episodes, in episode order."""
        return self._ctx.dataset.user_ids[self._ctx.episodes.users]

    # --------------------------------------------------------------------- reset
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: a random user of the split, or ``options["user_id"]``."""
        super().reset(seed=seed)
        episode = choose_episode(self._ctx, self.np_random, options)
        self._core.reset_slot(0, episode)
        self._last = None
        self._steps, self._reward, self._return = 0, None, 0.0
        return self._core.observe(self._row)[0], reset_info(self._core, 0)

    # ---------------------------------------------------------------------- step
    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Decode ``action`` to a slate, then reward and transition (see class docstring)."""
        self._check_running()
        slate, _ = self.decode(action)
        return self._apply_slate(slate)

    def decode(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the slate an action would show now, and the items' scores.

        Args:
            action: ``(embedding_dim,)`` finite vector.

        Returns:
            ``(items, scores)``: ``(slate_size,)`` item indices best first, and their scores.
        """
        a = self.validate_action(action)
        core = self._core
        items, scores = self._ctx.ranker.topk(a[None], self.slate_size, core.blocked, core.penalty)
        return items[0], scores[0]

    def validate_action(self, action: np.ndarray) -> np.ndarray:
        """Return ``action`` as float32, or raise ``ValueError`` on a bad shape or value."""
        a = np.asarray(action, dtype=np.float32)
        if a.shape != (self.embedding_dim,):
            raise ValueError(
                f"action has shape {a.shape}; expected ({self.embedding_dim},), a point in the "
                "item-embedding space."
            )
        # fast path: one reduction; a non-finite sum may also be an overflow, so check exactly
        if not np.isfinite(a.sum()) and not np.isfinite(a).all():
            raise ValueError(f"action contains NaN or inf: {a.tolist()[:8]}...")
        return a

    def step_slate(self, slate: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Show a slate chosen directly (for baselines that rank items themselves).

        The slate obeys the same rules as a decoded one: ``slate_size`` distinct item indices,
        none of them blocked (:meth:`blocked_mask`).

        Raises:
            ValueError: If the slate breaks a rule; the message names the offending items.
        """
        self._check_running()
        s = np.asarray(slate, dtype=np.int64)
        check_slate(s, self.slate_size, self._core.blocked[0])
        return self._apply_slate(s)

    def recommend_from_scores(self, scores: np.ndarray) -> np.ndarray:
        """The slate of the highest ``scores`` (one per item) among unblocked items."""
        return topk_of_scores(scores, self.slate_size, self._core.blocked[0])[0]

    def blocked_mask(self) -> np.ndarray:
        """Items that cannot be shown now (consumed, or shown and not released); read-only."""
        view = self._core.blocked[0].view()
        view.flags.writeable = False
        return view

    def history(self) -> tuple[np.ndarray, np.ndarray]:
        """Items the user consumed so far (oldest first) and their ratings scaled to [-1, 1]."""
        return self._core.history(0)

    def future(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """PRIVILEGED: the user's remaining future (items, raw ratings, timestamps), log order.

        For the oracle upper-bound baseline only: a policy that reads it is not a recommender.
        """
        return self._core.future(0)

    @property
    def user_id(self) -> int:
        """Original id of the current episode's user."""
        return int(self.dataset.user_ids[self._core.user[0]])

    def _check_running(self) -> None:
        if self._core.episode[0] < 0:
            raise ResetNeeded("Call reset() before step().")
        if not self._core.running[0]:
            raise ResetNeeded("The episode has ended; call reset() to start another.")

    def _apply_slate(self, slate: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        batch = self._core.step(self._row, slate[None])
        info = step_info(batch, 0, self.dataset)
        reward = float(batch.rewards[0])
        self._last = info
        self._steps += 1
        self._reward = reward
        self._return += reward
        if self.render_mode == "human":
            self.render()
        return (
            self._core.observe(self._row)[0],
            reward,
            bool(batch.terminated[0]),
            bool(batch.truncated[0]),
            info,
        )

    # -------------------------------------------------------------------- render
    def render(self) -> str | np.ndarray | None:
        """The recent history and the last slate: a table (``"ansi"``, ``"human"``) or a picture.

        Returns:
            ``"ansi"``: the text; ``"rgb_array"``: an ``(H, W, 3)`` uint8 array (see
            ``render_mode`` in the class docstring); ``"human"``: ``None`` (the table is printed).
        """
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without render_mode; pass render_mode='ansi' or 'rgb_array'."
            )
            return None
        snap = self._snapshot()
        if self.render_mode == "rgb_array":
            return render_frame(snap, self.frame_size, self.slate_size)
        text = render_table(snap)
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def _snapshot(self) -> Snapshot | None:
        """What a frame shows now (``None`` before the first reset)."""
        if self._core.episode[0] < 0:
            return None
        return Snapshot(
            dataset=self.dataset,
            user_id=self.user_id,
            history=self.history(),
            last=self._last,
            steps=self._steps,
            reward=self._reward,
            episode_return=self._return,
            split=self._ctx.split_name,
            caption=self._render_caption(),
        )

    def _render_caption(self) -> str:
        """A note on the last action for the frame's slate heading (none here)."""
        return ""
