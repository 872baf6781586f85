"""Gymnasium environments: :class:`MovieRecEnv`, its vector env, and the Seq/Discrete variants."""

from recgym.envs.context import EnvContext, build_context
from recgym.envs.discrete import MovieRecDiscreteEnv
from recgym.envs.movie_rec import MovieRecEnv
from recgym.envs.movie_rec_seq import MovieRecSeqEnv
from recgym.envs.registration import ENV_IDS, register_envs
from recgym.envs.vector import MovieRecSeqVectorEnv, MovieRecVectorEnv

__all__ = [
    "ENV_IDS",
    "EnvContext",
    "MovieRecDiscreteEnv",
    "MovieRecEnv",
    "MovieRecSeqEnv",
    "MovieRecSeqVectorEnv",
    "MovieRecVectorEnv",
    "build_context",
    "register_envs",
]
