"""A batched vector environment: N replayed users, one decode (matrix product) per step."""

from __future__ import annotations

from itertools import compress
from typing import Any

import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from recgym.envs.context import EnvContext
from recgym.envs.core import StepBatch, check_slate, choose_episode, reset_info
from recgym.envs.core import step_info as row_step_info
from recgym.envs.movie_rec import MovieRecEnv
from recgym.envs.movie_rec_seq import MovieRecSeqEnv
from recgym.envs.render import Snapshot, render_frame, render_table
from recgym.errors import ConfigError, check_int


class MovieRecVectorEnv(VectorEnv):
    """``num_envs`` replayed users stepped together over one dataset and decoder.

    Each step ranks the catalogue for every sub-environment in one batched matrix product, then
    applies all slates with a handful of array operations (:class:`recgym.envs.core.ReplayCore`,
    the same code a single :class:`MovieRecEnv` runs with one slot). Trajectories, rewards and
    infos equal those of ``SyncVectorEnv`` over ``num_envs`` single environments (seeds
    ``seed, seed + 1, ...``, Gymnasium's convention).

    Autoreset follows Gymnasium 1.x: ``autoreset_mode="NextStep"`` (default, as
    ``SyncVectorEnv``) or ``"SameStep"`` (the finished episode's last observation and info are
    in ``info["final_obs"]`` and ``info["final_info"]``); the mode is in
    ``metadata["autoreset_mode"]``. Infos are batched exactly as ``SyncVectorEnv`` batches them
    (a ``"_key"`` mask beside each key).

    Args:
        num_envs: Number of sub-environments.
        autoreset_mode: ``"NextStep"`` or ``"SameStep"`` (or an ``AutoresetMode``).
        max_episode_steps: Truncate episodes after this many steps (as ``TimeLimit``).
        render_mode: ``"ansi"`` or ``"rgb_array"``: ``render()`` returns a tuple with each
            sub-environment's slate table or picture (as ``SyncVectorEnv`` does).
        **kwargs: Arguments of :class:`MovieRecEnv`.

    Example:
        >>> import gymnasium as gym, recgym
        >>> envs = gym.make_vec("MovieRecSynthetic-v0", num_envs=4, embedding_dim=8)
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape
        (4, 90)
        >>> obs, rewards, terminated, truncated, info = envs.step(envs.action_space.sample())
        >>> info["slate"].shape
        (4, 10)
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}
    #: The single environment whose configuration, spaces and observations the slots share.
    env_class: type[MovieRecEnv] = MovieRecEnv

    def __init__(
        self,
        num_envs: int = 1,
        *,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Validate, build the shared context once, and allocate ``num_envs`` slots."""
        check_int("num_envs", num_envs)
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            mode = None
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ConfigError(
                f"autoreset_mode={autoreset_mode!r} is not supported; use 'NextStep' or "
                "'SameStep' (gymnasium.vector.AutoresetMode)."
            )
        check_int("max_episode_steps", max_episode_steps, optional=True)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ConfigError(
                f"render_mode={render_mode!r} is not supported; use one of "
                f"{self.metadata['render_modes']} or None."
            )
        # One single env validates the arguments, builds the context and gives the spaces; it
        # also renders a slot on demand.
        self._template = self.env_class(render_mode=render_mode, **kwargs)
        t = self._template
        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        self.max_episode_steps = max_episode_steps
        self.autoreset_mode = mode
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.single_observation_space = t.observation_space
        self.single_action_space = t.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._core = t.make_core(self.num_envs)
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self._last: list[dict | None] = [None] * self.num_envs
        # for render(): each slot's last reward and episode return (kept only when rendering)
        self._reward = np.full(self.num_envs, np.nan)
        self._return = np.zeros(self.num_envs)
        self._item_ids = self.context.dataset.item_ids.tolist()  # movieIds as Python ints

    @property
    def context(self) -> EnvContext:
        """The shared read-only data (dataset, split, embeddings, decoder)."""
        return self._template.context

    @property
    def slate_size(self) -> int:
        """Items per slate."""
        return self._template.slate_size

    # --------------------------------------------------------------------- reset
    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all (or ``options["reset_mask"]``) sub-environments; seeds as SyncVectorEnv."""
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(
                    f"{len(seeds)} seeds given for num_envs={self.num_envs}; pass one per env."
                )
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            mask = np.ones(self.num_envs, dtype=bool)
        elif not (
            isinstance(mask, np.ndarray) and mask.dtype == bool and mask.shape == (self.num_envs,)
        ):
            raise ValueError(
                f"options['reset_mask'] must be a bool array of shape ({self.num_envs},)."
            )
        infos: dict[str, Any] = {}
        for i in np.flatnonzero(mask).tolist():
            infos = self._add_info(infos, self._reset_slot(i, seeds[i], options or None), i)
        return self._obs.copy(), infos

    def _reset_slot(self, i: int, seed: int | None, options: dict | None = None) -> dict:
        if seed is not None or self._rngs[i] is None:
            self._rngs[i], _ = seeding.np_random(seed)
        episode = choose_episode(self.context, self._rngs[i], options)
        self._core.reset_slot(i, episode)
        self._obs[i] = self._core.observe(np.array([i]))[0]
        self._autoreset[i] = False
        self._elapsed[i] = 0
        self._last[i] = None
        self._reward[i], self._return[i] = np.nan, 0.0
        return reset_info(self._core, i)

    # ---------------------------------------------------------------------- step
    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Decode all actions in one batch, then apply each slate (with autoreset)."""
        a = np.asarray(actions, dtype=np.float32)
        dim = self.single_action_space.shape[0]
        if a.shape != (self.num_envs, dim):
            raise ValueError(f"actions have shape {a.shape}; expected ({self.num_envs}, {dim}).")
        if not np.all(np.isfinite(a)):
            bad = np.flatnonzero(~np.isfinite(a).all(axis=1)).tolist()
            raise ValueError(f"actions of sub-environments {bad} contain NaN or inf.")
        rows = self._rows_to_step()
        # Every slot is decoded, also those about to autoreset (their slates are dropped): one
        # product over the state arrays as they are beats copying the rows that step.
        core = self._core
        slates, _ = self.context.ranker.topk(a, self.slate_size, core.blocked, core.penalty)
        return self._apply(rows, slates[rows] if len(rows) < self.num_envs else slates)

    def step_slates(
        self, slates: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Show a slate chosen directly to each sub-environment (for baselines).

        Rows of sub-environments that autoreset this step are ignored. Each other row must hold
        ``slate_size`` distinct unblocked items (see :meth:`blocked_mask`).
        """
        s = np.asarray(slates, dtype=np.int64)
        if s.shape != (self.num_envs, self.slate_size):
            raise ValueError(
                f"slates have shape {s.shape}; expected ({self.num_envs}, {self.slate_size})."
            )
        rows = self._rows_to_step()
        for i in rows.tolist():
            check_slate(s[i], self.slate_size, self._core.blocked[i])
        return self._apply(rows, s[rows])

    def blocked_mask(self) -> np.ndarray:
        """``(num_envs, n_items)`` items each sub-environment cannot show now (read-only)."""
        view = self._core.blocked.view()
        view.flags.writeable = False
        return view

    def _rows_to_step(self) -> np.ndarray:
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            rows = np.flatnonzero(~self._autoreset)
        else:
            rows = np.arange(self.num_envs)
        not_started = rows[self._core.episode[rows] < 0]
        if len(not_started):
            raise ResetNeeded(f"Sub-environments {not_started.tolist()} need reset() first.")
        return rows

    def _apply(
        self, rows: np.ndarray, slates: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        n = self.num_envs
        rewards = np.zeros(n, dtype=np.float64)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        resets: dict[int, dict] = {}
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            for i in np.flatnonzero(self._autoreset).tolist():
                resets[i] = self._reset_slot(i, None)
        batch = self._core.step(rows, slates)
        rewards[rows] = batch.rewards
        terminated[rows] = batch.terminated
        truncated[rows] = batch.truncated
        self._elapsed[rows] += 1
        if self.max_episode_steps is not None:
            truncated[rows] |= self._elapsed[rows] >= self.max_episode_steps
        self._obs[rows] = self._core.observe(rows)
        finals: dict[int, dict] = {}
        ended = terminated[rows] | truncated[rows]
        done = rows[ended]
        ds = self.context.dataset
        if self.render_mode is not None:
            keep = range(len(rows))
            self._reward[rows] = batch.rewards
            self._return[rows] += batch.rewards
        else:
            keep = np.flatnonzero(ended).tolist()
        for j in keep:  # per-row infos: for render, and the final_info of finished episodes
            self._last[int(rows[j])] = row_step_info(batch, j, ds)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            for i in done.tolist():
                finals[i] = {"final_obs": self._obs[i].copy(), "final_info": self._last[i]}
                resets[i] = self._reset_slot(i, None)
        self._autoreset = terminated | truncated
        infos = self._batch_infos(batch, resets, finals)
        return self._obs.copy(), rewards, terminated, truncated, infos

    def _batch_infos(
        self, batch: StepBatch, resets: dict[int, dict], finals: dict[int, dict]
    ) -> dict[str, Any]:
        """The infos ``SyncVectorEnv`` would build from the sub-environments' info dicts.

        Step infos are built straight from the batch arrays (one array per key); the rows that
        reset and the final obs/info of SAME_STEP go through ``VectorEnv._add_info``.
        """
        n = self.num_envs
        ds = self.context.dataset
        rows = batch.rows
        if finals:  # SAME_STEP: a row that reset reports its reset info, not the step's
            keep = ~np.isin(rows, list(finals))
        else:
            keep = np.ones(len(rows), dtype=bool)
        stepped = rows[keep]
        infos: dict[str, Any] = {}
        if len(stepped):
            mask = np.zeros(n, dtype=bool)
            mask[stepped] = True

            def dense(values: np.ndarray, dtype: type | np.dtype) -> np.ndarray:
                out = np.zeros((n, *values.shape[1:]), dtype=dtype)
                out[stepped] = values[keep]
                return out

            def objects(values: list) -> np.ndarray:  # tuples, one per stepped row
                out = np.full(n, None, dtype=object)
                out[stepped] = np.fromiter(compress(values, keep), dtype=object, count=len(stepped))
                return out

            ids = self._item_ids
            next_ids = [tuple([ids[i] for i in t]) for t in batch.next_items]
            infos = {
                "user_id": dense(batch.user_ids, int),
                "slate": dense(batch.slates, np.int64),
                "slate_movie_ids": dense(ds.item_ids[batch.slates], np.int64),
                "hits": dense(batch.hits, bool),
                "hit_ratings": dense(batch.hit_ratings, np.float32),
                "next_items": objects(batch.next_items),
                "next_movie_ids": objects(next_ids),
                "consumed": objects(batch.consumed),
                "n_future_left": dense(batch.n_left, int),
            }
            infos.update({f"_{key}": mask.copy() for key in list(infos)})
        for i in sorted(finals):
            infos = self._add_info(infos, finals[i], i)
        for i in sorted(resets):
            infos = self._add_info(infos, resets[i], i)
        return infos

    # -------------------------------------------------------------------- render
    def render(self) -> tuple[str, ...] | tuple[np.ndarray, ...] | None:
        """Each sub-environment's history and last slate, as text or as a picture.

        Returns:
            A tuple with one item per sub-environment: the table (``"ansi"``) or an
            ``(H, W, 3)`` uint8 array (``"rgb_array"``, as :meth:`MovieRecEnv.render`).
        """
        if self.render_mode is None:
            return None
        snaps = [self._snapshot(i) for i in range(self.num_envs)]
        if self.render_mode == "rgb_array":
            t = self._template
            return tuple(render_frame(snap, t.frame_size, t.slate_size) for snap in snaps)
        return tuple(render_table(snap) for snap in snaps)

    def _snapshot(self, i: int) -> Snapshot | None:
        """What sub-environment ``i`` shows (``None`` before its first reset)."""
        if self._core.episode[i] < 0:
            return None
        ds = self.context.dataset
        return Snapshot(
            dataset=ds,
            user_id=int(ds.user_ids[self._core.user[i]]),
            history=self._core.history(i),
            last=self._last[i],
            steps=int(self._elapsed[i]),
            reward=None if np.isnan(self._reward[i]) else float(self._reward[i]),
            episode_return=float(self._return[i]),
            split=self.context.split_name,
        )


class MovieRecSeqVectorEnv(MovieRecVectorEnv):
    """``num_envs`` users of :class:`~recgym.envs.MovieRecSeqEnv`, stepped together.

    What ``gym.make_vec("MovieRecSeq-v0", num_envs=N)`` gives: everything as
    :class:`MovieRecVectorEnv` (one batched decode per step, the same trajectories as
    ``SyncVectorEnv``), with the sequence observation of ``MovieRecSeq-v0``.

    Args:
        num_envs: Number of sub-environments.
        **kwargs: Those of :class:`MovieRecVectorEnv` and :class:`~recgym.envs.MovieRecSeqEnv`
            (``history_size``, ``min_history``, ...).

    Example:
        >>> import gymnasium as gym, recgym
        >>> envs = gym.make_vec("MovieRecSeq-v0", num_envs=4, dataset="synthetic",
        ...                     embedding_dim=8, history_size=20)
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape
        (4, 200)
    """

    env_class = MovieRecSeqEnv

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        """As :class:`MovieRecVectorEnv`."""
        super().__init__(num_envs, **kwargs)
