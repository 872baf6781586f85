"""Stable-Baselines3 ``VecEnv`` over recgym's batched vector environment.

SB3 steps ``n`` environments at once; :class:`RecVecEnv` hands the whole batch to
:class:`recgym.envs.MovieRecVectorEnv`, which decodes all actions in one matrix product. SB3's
conventions are kept: same-step autoreset with ``info["terminal_observation"]``,
``info["TimeLimit.truncated"]`` (episodes that end because the user's log ran out are truncated,
so value targets keep bootstrapping), and ``info["episode"]`` with the return and length, as
SB3's ``Monitor`` would add (so ``env_is_wrapped(Monitor)`` answers True).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from agents.threads import single_blas_thread
from recgym.envs import MovieRecVectorEnv


class RecVecEnv(VecEnv):
    """SB3 view of a :class:`MovieRecVectorEnv` (created here in same-step autoreset mode).

    Args:
        n_envs: Number of parallel users.
        vector_env: The recgym vector environment class: :class:`MovieRecVectorEnv`
            (default, ``MovieRec-v0``) or a subclass such as
            :class:`recgym.envs.MovieRecSeqVectorEnv` (``MovieRecSeq-v0``).
        **env_kwargs: Arguments of its single environment (:class:`recgym.envs.MovieRecEnv`:
            dataset, embedding_dim, ...), plus ``max_episode_steps``.
    """

    def __init__(
        self,
        n_envs: int = 1,
        vector_env: type[MovieRecVectorEnv] = MovieRecVectorEnv,
        **env_kwargs: Any,
    ) -> None:
        """Build the vector environment."""
        self.venv = vector_env(n_envs, autoreset_mode=AutoresetMode.SAME_STEP, **env_kwargs)
        super().__init__(n_envs, self.venv.single_observation_space, self.venv.single_action_space)
        self._actions: np.ndarray | None = None
        self._returns = np.zeros(n_envs)
        self._lengths = np.zeros(n_envs, dtype=np.int64)
        self._t0 = time.time()

    @property
    def template(self) -> Any:
        """A single :class:`MovieRecEnv` with the same configuration (for its attributes)."""
        return self.venv._template

    def reset(self) -> np.ndarray:
        """Reset every user (seeds and options set with ``seed``/``set_options`` apply once)."""
        seeds = self._seeds if any(s is not None for s in self._seeds) else None
        with single_blas_thread():
            obs, infos = self.venv.reset(seed=seeds, options=self._options[0] or None)
        self.reset_infos = _split_infos(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        self._returns[:] = 0
        self._lengths[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = np.asarray(actions, dtype=np.float32).reshape(self.num_envs, -1)

    def step_wait(self) -> VecEnvStepReturn:
        """Step all users; finished ones reset at once (their last obs in the info)."""
        with single_blas_thread():  # the decode must not fight torch's threads
            obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        dones = terminated | truncated
        self._returns += rewards
        self._lengths += 1
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones).tolist():
            out[i] = {
                "terminal_observation": infos["final_obs"][i],
                "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                "episode": {
                    "r": float(self._returns[i]),
                    "l": int(self._lengths[i]),
                    "t": round(time.time() - self._t0, 6),
                },
            }
            self._returns[i] = 0.0
            self._lengths[i] = 0
        return obs, rewards.astype(np.float32), dones, out

    def close(self) -> None:
        """Release the vector environment."""
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """An attribute of the (identically configured) sub-environments."""
        return [getattr(self.template, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Not supported: the sub-environments share one configuration."""
        raise AttributeError(f"RecVecEnv cannot set {attr_name!r} per sub-environment.")

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method of the template environment (configuration queries)."""
        result = getattr(self.template, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._get_indices(indices))

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """True for SB3's ``Monitor`` only: this class records what a Monitor records.

        Each finished episode's ``info["episode"]`` (return, length, time) is added here, as
        ``Monitor`` adds it; SB3 asks this question before reading those statistics (for
        example ``evaluate_policy``, which would otherwise warn). No other wrapper is applied.
        """
        from stable_baselines3.common.monitor import Monitor

        wrapped = isinstance(wrapper_class, type) and issubclass(Monitor, wrapper_class)
        return [wrapped] * len(self._get_indices(indices))

    def _get_indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)


def _split_infos(infos: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Gymnasium's batched info dict -> SB3's list of per-env dicts."""
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, values in infos.items():
        if key.startswith("_"):
            continue
        mask = infos.get(f"_{key}", np.ones(n, dtype=bool))
        for i in np.flatnonzero(mask).tolist():
            out[i][key] = values[i]
    return out
