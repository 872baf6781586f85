"""Wolpertinger re-ranking (Dulac-Arnold et al. 2015): the actor proposes, the critic disposes.

The actor's point ``a = pi(s)`` gives the decoder's ``k`` nearest allowed items (consumed and
already shown ones excluded, as the environment excludes them); the critic scores every
candidate ``i`` as an action, ``Q(s, e_i)``, in one batched forward pass (the minimum over the
critic's heads, as the TD3 and SAC targets take it); the slate is the ``slate_size`` candidates
with the highest Q, ties to the decoder's order. With ``k == slate_size`` it is the plain decode,
re-ordered.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from agents.policies import Policy
from recgym.envs import MovieRecEnv
from recgym.errors import ConfigError


def critic_values(model: Any, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``min_j Q_j(s, a)`` over the model's critic heads, ``(B,)``, without gradients."""
    with torch.no_grad():
        q = torch.cat(model.critic(observations, actions), dim=1)
        return q.min(dim=1).values


class WolpertingerPolicy(Policy):
    """Re-rank the actor's ``k`` nearest allowed items by the critic (see module docstring).

    Args:
        model: A trained DDPG, TD3 or SAC model (plain or anchored).
        k: Candidates per step (at least the slate size, at most the catalogue).
        name: Label for tables (default ``"<algo>+wolpertinger"``).
    """

    def __init__(self, model: Any, k: int = 100, name: str | None = None) -> None:
        """Check ``k`` and keep the model."""
        if not hasattr(model, "critic"):
            raise ConfigError(f"{type(model).__name__} has no critic to re-rank with.")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k={k!r} must be a positive integer (candidates per step).")
        self.model = model
        self.k = int(k)
        self.name = name or f"{type(model).__name__.lower()}+wolpertinger"

    def recommend(self, env: MovieRecEnv, obs: np.ndarray) -> np.ndarray:
        """The ``slate_size`` candidates with the highest Q."""
        n_items, slate = env.dataset.n_items, env.slate_size
        if not slate <= self.k <= n_items:
            raise ConfigError(
                f"k={self.k} must be between the slate size ({slate}) and the catalogue size "
                f"({n_items}); choose a k in that range."
            )
        action = self.model.predict(obs, deterministic=True)[0]
        candidates, _ = env.context.ranker.topk(action, self.k, env.blocked_mask())
        candidates = candidates[0][candidates[0] >= 0]
        if len(candidates) <= slate:
            return candidates
        device = self.model.device
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=device)
        emb = torch.as_tensor(env.context.embeddings[candidates], device=device)
        q = critic_values(self.model, obs_t.expand(len(candidates), -1), emb).cpu().numpy()
        order = np.argsort(-q, kind="stable")[:slate]
        return candidates[order]


def value_gap(
    model: Any,
    env: MovieRecEnv,
    policy: Policy | None = None,
    max_users: int | None = None,
) -> dict[str, float]:
    """The critic's predicted return against the realised one, on ``env``'s users.

    Each user is replayed once with ``policy`` (default: the model's deterministic action).
    At every step ``t`` the critic predicts ``Q(s_t, a_t)`` for the action taken (for a policy
    that shows slates directly, the first slate item's embedding), and the realised discounted
    return is ``G_t = sum_j gamma^j r_(t+j)`` to the end of the episode, with the model's gamma.

    Returns:
        ``{"predicted", "realised", "gap"}``: means over all steps, ``gap = predicted - realised``
        (positive: over-estimation).
    """
    import math

    from agents.policies import AgentPolicy

    env = getattr(env, "unwrapped", env)
    policy = policy or AgentPolicy(model)
    gamma = float(model.gamma)
    predicted, realised = [], []
    users = env.episode_user_ids[:max_users]
    emb = env.context.embeddings
    for uid in users.tolist():
        obs, _ = env.reset(options={"user_id": uid})
        policy.reset(env)
        observations, actions, rewards, done = [], [], [], False
        while not done:
            slate = policy.recommend(env, obs)
            observations.append(obs)
            actions.append(emb[slate[0]])
            obs, reward, terminated, truncated, _ = env.step_slate(slate)
            rewards.append(reward)
            done = terminated or truncated
        if isinstance(policy, AgentPolicy):  # the action itself, not its first item
            actions = [policy.act(o) for o in observations]
        q = critic_values(
            model,
            torch.as_tensor(np.asarray(observations, dtype=np.float32), device=model.device),
            torch.as_tensor(np.asarray(actions, dtype=np.float32), device=model.device),
        )
        predicted += q.cpu().numpy().tolist()
        g, returns = 0.0, []
        for r in reversed(rewards):
            g = r + gamma * g
            returns.append(g)
        realised += returns[::-1]
    if not predicted:
        return {"predicted": math.nan, "realised": math.nan, "gap": math.nan}
    p, r = float(np.mean(predicted)), float(np.mean(realised))
    return {"predicted": p, "realised": r, "gap": p - r}
