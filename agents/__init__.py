"""Agents for recgym: Stable-Baselines3 DDPG/TD3/SAC, baselines, offline pre-training, evaluation.

This package needs the ``agents`` extra (torch, stable-baselines3): ``pip install
'recgym[agents]'``. The environment library, ``recgym``, never imports it.
"""

from agents.evaluate import EvalResult, evaluate, results_table
from agents.factory import ALGOS, make_agent, make_env
from agents.offline import fill_replay_buffer, logged_transitions, pretrain
from agents.policies import BASELINES, AgentPolicy, Policy, make_baseline
from agents.tabular import SARSA, QLearning, TabularAgent, TabularPolicy

__all__ = [
    "ALGOS",
    "BASELINES",
    "AgentPolicy",
    "QLearning",
    "SARSA",
    "TabularAgent",
    "TabularPolicy",
    "EvalResult",
    "Policy",
    "evaluate",
    "fill_replay_buffer",
    "logged_transitions",
    "make_agent",
    "make_baseline",
    "make_env",
    "pretrain",
    "results_table",
]
