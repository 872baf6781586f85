"""Gymnasium environments: :class:`MovieRecEnv`, its vector env, and the Seq/Discrete variants.

Names are imported on first use, so that ``import recgym`` (which registers the ids through
:mod:`recgym.envs.registration`) does not load pandas and SciPy before an environment is made.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recgym.envs' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (for tab completion)."""
    return sorted({*globals(), *_EXPORTS})
