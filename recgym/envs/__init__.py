"""Gymnasium environments: :class:`MovieRecEnv` and its batched :class:`MovieRecVectorEnv`."""

from recgym.envs.context import EnvContext, build_context
from recgym.envs.discrete import MovieRecDiscreteEnv
from recgym.envs.movie_rec import MovieRecEnv
from recgym.envs.registration import ENV_IDS, register_envs
from recgym.envs.vector import MovieRecVectorEnv

__all__ = [
    "ENV_IDS",
    "EnvContext",
    "MovieRecDiscreteEnv",
    "MovieRecEnv",
    "MovieRecVectorEnv",
    "build_context",
    "register_envs",
]
