"""Agents for recgym: Stable-Baselines3 DDPG/TD3/SAC, baselines, offline pre-training, evaluation.

This package needs the ``agents`` extra (torch, stable-baselines3): ``pip install
'recgym[agents]'``. The environment library, ``recgym``, never imports it. Names are imported
on first use (``from agents import make_agent`` loads torch then, ``import agents`` does not),
so the ``recgym`` command (:mod:`agents.cli`) starts fast and ``recgym data`` needs no torch.

Nothing here prints: what a run did goes to the ``agents`` logger, progress lines shown where
there is no progress bar to ``agents.progress`` (``logging.getLogger("agents")`` routes or
silences both; the ``recgym`` command shows them).
"""

from __future__ import annotations

import functools
import sys
import types
from collections.abc import Callable
from typing import Any

#: public name -> the module that defines it
_EXPORTS = {
    "ALGOS": "agents.factory",
    "BASELINES": "agents.config",
    "RunConfig": "agents.config",
    "AgentPolicy": "agents.policies",
    "Policy": "agents.policies",
    "make_baseline": "agents.policies",
    "SASRecConfig": "agents.sasrec",
    "SASRecPolicy": "agents.sasrec",
    "EvalResult": "agents.evaluate",
    "evaluate": "agents.evaluate",
    "results_table": "agents.evaluate",
    "effective_hyperparameters": "agents.factory",
    "make_agent": "agents.factory",
    "make_env": "agents.factory",
    "fill_replay_buffer": "agents.offline",
    "logged_transitions": "agents.offline",
    "pretrain": "agents.offline",
    "QLearning": "agents.tabular",
    "SARSA": "agents.tabular",
    "TabularAgent": "agents.tabular",
    "TabularPolicy": "agents.tabular",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (:func:`recgym.lazy.lazy_exports`)."""
    return _lazy()[0](name)


def __dir__() -> list[str]:
    """The public names (for tab completion)."""
    return _lazy()[1]()


@functools.cache
def _lazy() -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    # recgym.lazy is imported at the first look-up, not here: importing recgym registers the
    # environments (Gymnasium, NumPy), and `recgym --help` reads agents.config without them
    from recgym.lazy import lazy_exports

    return lazy_exports(__name__, _EXPORTS)


class _Package(types.ModuleType):
    """The package keeps its function ``evaluate`` when the submodule of that name loads.

    Importing ``agents.evaluate`` makes Python set the package attribute ``evaluate`` to the
    module; ``agents.evaluate(policy, env)`` must stay the function, as it always was.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and value.__name__ == _EXPORTS.get(name):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
