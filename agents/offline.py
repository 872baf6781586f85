"""Offline pre-training from logged transitions (the regime RecNN trains in).

For every TRAIN episode, each logged interaction ``t`` after the seed frame gives one transition:

* state: the ``frame_size`` items the user consumed just before ``t`` (embeddings, then ratings
  scaled to [-1, 1]: the environment's observation layout; for ``MovieRecSeq-v0`` its layout,
  the last ``history_size`` items before ``t`` with a mask, padded in front),
* action: the embedding of the item consumed at ``t`` (what the user "chose"),
* reward: its rating scaled to [-1, 1],
* next state: the frame shifted by one item; the user's last interaction ends the episode as a
  truncation (the log ended, the user did not leave), so value targets keep bootstrapping.

:func:`fill_replay_buffer` writes them into an SB3 model's replay buffer and :func:`pretrain`
runs gradient steps on it; ``model.learn(...)`` can then continue online.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import configure

from recgym.envs import MovieRecEnv
from recgym.errors import ConfigError
from recgym.seeding import RNGLike, as_generator


@dataclass
class Transitions:
    """Logged transitions, row-aligned arrays.

    Attributes:
        observations: ``(T, obs_dim)`` float32.
        actions: ``(T, dim)`` float32 (item embeddings).
        rewards: ``(T,)`` float32.
        next_observations: ``(T, obs_dim)`` float32.
        timeouts: ``(T,)`` bool: the user's log ends here.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    timeouts: np.ndarray

    def __len__(self) -> int:
        """Number of transitions."""
        return len(self.rewards)


def logged_transitions(
    env: MovieRecEnv, max_transitions: int | None = 200_000, rng: RNGLike = 0
) -> Transitions:
    """Transitions of every episode of ``env``'s split, straight from the log (see module).

    Args:
        env: An environment on the TRAIN split (unwrapped or not).
        max_transitions: Keep a seeded uniform sample of at most this many (``None``: all).
        rng: Seed of that sample.

    Returns:
        The transitions.

    Raises:
        ConfigError: If ``env`` is not on the train split (that would train on held-out users).
    """
    env = getattr(env, "unwrapped", env)
    ctx = env.context
    if ctx.split_name != "train":
        raise ConfigError(
            f"Offline transitions come from the train split; this env replays "
            f"{ctx.split_name!r}. Make the env with split='train'."
        )
    ds, emb = ctx.dataset, ctx.embeddings
    ep = ctx.episodes
    counts = ep.end - ep.future_start
    t = np.repeat(ep.future_start - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    last = np.repeat(ep.end - 1, counts)
    first = np.repeat(ds.indptr[ep.users], counts)  # the user's first interaction
    if max_transitions is not None and len(t) > max_transitions:
        keep = np.sort(as_generator(rng).choice(len(t), max_transitions, replace=False))
        t, last, first = t[keep], last[keep], first[keep]
    # MovieRec-v0: the frame before t; MovieRecSeq-v0: up to history_size items before t
    sequence = getattr(env, "history_size", None)
    size = env.frame_size if sequence is None else sequence
    window = t[:, None] - size + np.arange(size)
    scaled = ctx.scaled_ratings

    def observations(w: np.ndarray) -> np.ndarray:
        if sequence is None:
            e = emb[ds.items[w]].reshape(len(w), -1)
            return np.concatenate([e, scaled[w]], axis=1).astype(np.float32)
        real = w >= first[:, None]  # slots before the user's first interaction: padding
        w = np.maximum(w, first[:, None])
        e = np.where(real[..., None], emb[ds.items[w]], 0.0).reshape(len(w), -1)
        r = np.where(real, scaled[w], 0.0)
        return np.concatenate([e, r, real], axis=1).astype(np.float32)

    return Transitions(
        observations=observations(window),
        actions=emb[ds.items[t]].astype(np.float32),
        rewards=scaled[t].astype(np.float32),
        next_observations=observations(window + 1),
        timeouts=t == last,
    )


def fill_replay_buffer(model: BaseAlgorithm, transitions: Transitions) -> int:
    """Write logged transitions into ``model``'s replay buffer (replacing its content).

    Returns:
        How many transitions were stored (the buffer may hold fewer than given; a remainder
        that does not fill a row of ``n_envs`` is dropped).
    """
    buf = model.replay_buffer
    if buf is None:
        raise ConfigError("This model has no replay buffer (an on-policy algorithm?).")
    n_envs = buf.n_envs
    n = min(len(transitions), buf.buffer_size * n_envs) // n_envs * n_envs
    obs_dim = buf.obs_shape[0]
    if transitions.observations.shape[1] != obs_dim:
        raise ConfigError(
            f"Transitions have observations of size {transitions.observations.shape[1]}; the "
            f"model expects {obs_dim}. Build both from the same environment settings."
        )
    rows = n // n_envs
    buf.observations[:rows] = transitions.observations[:n].reshape(rows, n_envs, obs_dim)
    if not buf.optimize_memory_usage:
        buf.next_observations[:rows] = transitions.next_observations[:n].reshape(
            rows, n_envs, obs_dim
        )
    buf.actions[:rows] = transitions.actions[:n].reshape(rows, n_envs, -1)
    buf.rewards[:rows] = transitions.rewards[:n].reshape(rows, n_envs)
    buf.dones[:rows] = 0.0
    if hasattr(buf, "timeouts"):
        buf.timeouts[:rows] = transitions.timeouts[:n].reshape(rows, n_envs)
    buf.pos = rows % buf.buffer_size
    buf.full = rows == buf.buffer_size
    return n


def pretrain(model: BaseAlgorithm, gradient_steps: int, batch_size: int | None = None) -> None:
    """Run ``gradient_steps`` updates on the replay buffer's current content.

    Args:
        model: An off-policy SB3 model with a filled replay buffer.
        gradient_steps: Number of updates.
        batch_size: Minibatch size (default: the model's).
    """
    if model.replay_buffer is None or model.replay_buffer.size() == 0:
        raise ConfigError("The replay buffer is empty: call fill_replay_buffer first.")
    if getattr(model, "_logger", None) is None:
        model.set_logger(configure(None, [""]))
    model.train(gradient_steps=gradient_steps, batch_size=batch_size or model.batch_size)
