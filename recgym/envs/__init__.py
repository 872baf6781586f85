"""Gymnasium environments: :class:`MovieRecEnv`, its vector env, and the Seq/Discrete variants.

Names are imported on first use, so that ``import recgym`` (which registers the ids through
:mod:`recgym.envs.registration`) does not load pandas and SciPy before an environment is made.
"""

from __future__ import annotations

from recgym.lazy import lazy_exports

#: public name -> the module that defines it
_EXPORTS = {
    "ENV_IDS": "recgym.envs.registration",
    "register_envs": "recgym.envs.registration",
    "EnvContext": "recgym.envs.context",
    "build_context": "recgym.envs.context",
    "MovieRecDiscreteEnv": "recgym.envs.discrete",
    "MovieRecEnv": "recgym.envs.movie_rec",
    "MovieRecSeqEnv": "recgym.envs.movie_rec_seq",
    "MovieRecSeqVectorEnv": "recgym.envs.vector",
    "MovieRecVectorEnv": "recgym.envs.vector",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
