"""Wolpertinger re-ranking (Dulac-Arnold et al. 2015): the actor proposes, the critic disposes.

The actor's point ``a = pi(s)`` gives the decoder's ``k`` nearest allowed items (consumed and
already shown ones excluded, as the environment excludes them); the critic scores every
candidate ``i`` as an action, ``Q(s, e_i)``, in one batched forward pass; the slate is the
``slate_size`` candidates with the highest Q, ties to the decoder's order. With
``k == slate_size`` it is the plain decode, re-ordered.

The Q that ranks is the one the actor is trained to climb (:func:`ranking_heads`): TD3's first
critic head (Stable-Baselines3's TD3 actor loss is ``-Q_1(s, pi(s))``), DDPG's only head, and
the minimum over SAC's two heads (its actor loss takes the minimum). Scoring only TD3's first
head halves the re-ranking's critic cost (the 256-256 MLP over ``k`` candidates per user, most
of Wolpertinger's time); the twin heads' minimum is what TD3's *targets* use, against
over-estimation in bootstrapping, which a re-ranking does not do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from agents.policies import ActionPolicy, Policy
from agents.threads import outer_torch_threads
from recgym.envs import MovieRecEnv
from recgym.errors import ConfigError


def ranking_heads(model: Any) -> int | None:
    """How many critic heads rank Wolpertinger's candidates: those the actor's loss reads.

    ``1`` for TD3 and DDPG (their actor loss is ``-Q_1(s, pi(s))``), ``None`` (all, their
    minimum) for SAC and anything else.
    """
    from stable_baselines3 import TD3  # DDPG is a TD3 subclass

    return 1 if isinstance(model, TD3) else None


def critic_values(
    model: Any, observations: torch.Tensor, actions: torch.Tensor, heads: int | None = None
) -> torch.Tensor:
    """``min_j Q_j(s, a)`` over the model's critic heads, ``(B,)``, without gradients.

    Args:
        model: DDPG, TD3 or SAC (plain or anchored), or anything whose ``critic(s, a)``
            returns a tuple of ``(B, 1)`` values.
        observations: ``(B, obs_dim)``.
        actions: ``(B, dim)``.
        heads: Only the first ``heads`` heads (``None``: all).
    """
    with torch.no_grad():
        q = torch.cat(model.critic(observations, actions)[:heads], dim=1)
        return q.min(dim=1).values


def candidate_values(
    model: Any,
    observations: torch.Tensor,
    actions: torch.Tensor,
    rows: torch.Tensor,
    heads: int | None = None,
) -> torch.Tensor:
    """``critic_values(model, observations[rows], actions, heads)``, each state's part once.

    An SB3 critic head is an MLP on ``concat(features(s), a)``; its first layer is
    ``W_s features(s) + W_a a + b``. With many candidate actions per state, the state's
    features and ``W_s features(s) + b`` are computed once per state, and only ``W_a a`` and
    the later layers once per candidate: the same values (up to float rounding), at about
    half the cost for a 256-256 critic. When every state has the same number of candidates,
    in order (``rows`` is ``0, 0, ..., 1, 1, ...``, as the re-ranking passes them), the state
    part is broadcast onto its candidates instead of gathered row by row (a quarter faster
    again, the same values). Heads that do not start with a linear layer, and critics that
    are not SB3's, get the plain pass.

    Args:
        model: DDPG, TD3 or SAC (plain or anchored).
        observations: ``(B, obs_dim)``, one per state.
        actions: ``(N, dim)``, the candidates.
        rows: ``(N,)``, the state of each candidate.
        heads: Only the first ``heads`` critic heads (``None``: all, their minimum).
    """
    critic = model.critic
    if not hasattr(critic, "q_networks"):  # not an SB3 critic: the plain pass
        return critic_values(model, observations[rows], actions, heads)
    with torch.no_grad():
        features = critic.extract_features(observations, critic.features_extractor)
        width = features.shape[1]
        per_state = len(actions) // max(len(observations), 1)
        grouped = per_state * len(observations) == len(actions) and torch.equal(
            rows, torch.arange(len(observations), device=rows.device).repeat_interleave(per_state)
        )
        values = []
        for head in critic.q_networks[:heads]:
            first = head[0] if isinstance(head, torch.nn.Sequential) else None
            if not isinstance(first, torch.nn.Linear):
                values.append(head(torch.cat([features[rows], actions], dim=1)))
                continue
            state_part = torch.nn.functional.linear(features, first.weight[:, :width], first.bias)
            action_part = actions @ first.weight[:, width:].T
            if grouped:  # (states, per_state, hidden) + (states, 1, hidden)
                hidden = action_part.view(len(observations), per_state, -1) + state_part[:, None]
                hidden = hidden.view(len(actions), -1)
            else:
                hidden = state_part[rows] + action_part
            values.append(head[1:](hidden))
        return torch.cat(values, dim=1).min(dim=1).values


class WolpertingerPolicy(ActionPolicy):
    """Re-rank the actor's ``k`` nearest allowed items by the critic (see module docstring).

    The ranking Q is :func:`ranking_heads`' (TD3: the first head; SAC: the twin minimum).

    Evaluation replays ``batch_size`` users at once with it: one actor forward pass for all of
    them, then one critic pass over all their candidates. Evaluation runs torch on one thread
    (:mod:`agents.threads`); that pass takes back the threads from before it.

    Args:
        model: A trained DDPG, TD3 or SAC model (plain or anchored).
        k: Candidates per step (at least the slate size, at most the catalogue).
        name: Label for tables (default ``"<algo>+wolpertinger"``).
        batch_size: Users evaluated at once (1: one at a time).
    """

    def __init__(
        self, model: Any, k: int = 100, name: str | None = None, batch_size: int = 64
    ) -> None:
        """Check ``k`` and keep the model."""
        if not hasattr(model, "critic"):
            raise ConfigError(f"{type(model).__name__} has no critic to re-rank with.")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k={k!r} must be a positive integer (candidates per step).")
        self.model = model
        self.k = int(k)
        self.name = name or f"{type(model).__name__.lower()}+wolpertinger"
        self.batch_size = batch_size

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The actor's deterministic action (the centre of the candidates)."""
        return self.model.predict(obs, deterministic=True)[0]

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        """The actor's actions for a batch, in one forward pass."""
        return self.model.predict(obs, deterministic=True)[0]

    def recommend(self, env: MovieRecEnv, obs: np.ndarray) -> np.ndarray:
        """The ``slate_size`` candidates with the highest Q."""
        return self.recommend_batch([env], np.asarray(obs)[None], [0])[0]

    def recommend_batch(
        self, envs: list[MovieRecEnv], obs: np.ndarray, active: list[int]
    ) -> dict[int, np.ndarray]:
        """The re-ranked slates of the ``active`` rows, with one critic pass for all of them."""
        env = envs[active[0]]
        n_items, slate = env.dataset.n_items, env.slate_size
        if not slate <= self.k <= n_items:
            raise ConfigError(
                f"k={self.k} must be between the slate size ({slate}) and the catalogue size "
                f"({n_items}); choose a k in that range."
            )
        actions = self.act_batch(obs)
        blocked = np.stack([envs[s].blocked_mask() for s in active])
        items, _ = env.context.ranker.topk(actions[active], self.k, blocked)  # one call for all
        candidates = [row[row >= 0] for row in items]
        counts = [len(c) for c in candidates]
        device = self.model.device
        rows = torch.as_tensor(np.repeat(np.arange(len(active)), counts), device=device)
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32)[active], device=device)
        emb = torch.as_tensor(env.context.embeddings[np.concatenate(candidates)], device=device)
        with outer_torch_threads():  # one large pass: the threads evaluation set aside
            q = candidate_values(self.model, obs_t, emb, rows, ranking_heads(self.model))
        q = q.cpu().numpy()
        out, start = {}, 0
        for s, items in zip(active, candidates, strict=True):
            row_q = q[start : start + len(items)]
            start += len(items)
            out[s] = items[np.argsort(-row_q, kind="stable")[:slate]]
        return out


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
