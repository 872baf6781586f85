"""Logged transitions of the train split, as the environment itself produces them.

For every TRAIN episode, each logged interaction ``t`` after the seed frame gives one transition:
the environment is put in the state the log describes just before ``t`` (the user has consumed
everything up to ``t``; nothing has been shown yet) and is stepped with the *logged action*, the
embedding of the item consumed at ``t``. So:

* state: the observation of that state (the ``frame_size`` items consumed just before ``t``;
  for ``MovieRecSeq-v0`` the last ``history_size`` with their mask),
* action: the embedding of the item at ``t`` (what the user "chose"),
* item: its index, the supervised target of :mod:`agents.anchor` (with ``steps`` and
  ``history_starts``, which give the items consumed before ``t``, masked as the environment
  masks them, and the other items of the same second, which count as next items too),
* reward, next state, end flags: what the environment returns for that action, with its own
  decoder, reward and transition (the slate around the item; its hits, the item among them,
  consumed in log order). The user's last interaction usually ends the episode as a truncation
  (the log ended, the user did not leave), so value targets keep bootstrapping.

These transitions are real transitions of the environment's MDP, so a critic fitted on them
(:func:`agents.anchor.warm_up_critic`) has the scale of the online rewards.
:func:`fill_replay_buffer` writes them into an SB3 model's replay buffer and :func:`pretrain`
runs the model's own gradient steps on it (RecNN's offline regime).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import configure
from tqdm.auto import tqdm

from recgym.envs import MovieRecEnv
from recgym.errors import ConfigError
from recgym.progress import tqdm_disable
from recgym.seeding import RNGLike, as_generator

BATCH = 512  # transitions replayed together


@dataclass
class Transitions:
    """Logged transitions, row-aligned arrays (see the module docstring).

    Attributes:
        observations: ``(T, obs_dim)`` float32.
        actions: ``(T, dim)`` float32 (item embeddings).
        rewards: ``(T,)`` float32, the environment's reward for the action.
        next_observations: ``(T, obs_dim)`` float32.
        dones: ``(T,)`` bool: the user left (``patience``).
        timeouts: ``(T,)`` bool: the user's log ended (a truncation).
        items: ``(T,)`` int64, the logged item at ``t`` (the action's item).
        steps: ``(T,)`` int64, the flat index ``t`` of that interaction in the dataset.
        history_starts: ``(T,)`` int64, the flat index of the user's first interaction:
            ``dataset.items[history_starts[j]:steps[j]]`` is what the user consumed before.
        next_ends: ``(T,)`` int64, the flat index past the last interaction of the same second
            as ``t``: ``dataset.items[steps[j]:next_ends[j]]`` are the user's next items.
        slates: ``(T, slate_size)`` int64, the slate the action was decoded to.
        contributions: ``(T, slate_size)`` float32, what each slate position added to the
            reward before the position weights (a hit's scaled rating, ``unrated_reward``
            elsewhere: :class:`recgym.envs.core.StepBatch`); :mod:`agents.hits` learns from
            them.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    dones: np.ndarray
    timeouts: np.ndarray
    items: np.ndarray
    steps: np.ndarray
    history_starts: np.ndarray
    next_ends: np.ndarray
    slates: np.ndarray
    contributions: np.ndarray

    def __len__(self) -> int:
        """Number of transitions."""
        return len(self.rewards)


def logged_transitions(
    env: MovieRecEnv,
    max_transitions: int | None = None,
    rng: RNGLike = 0,
    progress: bool | None = None,
    act: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Transitions:
    """Transitions of every episode of ``env``'s split, from the log (see the module docstring).

    Args:
        env: An environment on the TRAIN split (unwrapped or not).
        max_transitions: Keep a seeded uniform sample of at most this many (``None``: all).
        rng: Seed of that sample.
        progress: Show a progress bar (``None``: only on a terminal).
        act: Step each logged state with ``act(observations)`` (a ``(B, obs_dim)`` float32
            batch to ``(B, dim)`` actions) instead of the logged item's embedding: the
            transitions of that policy from the logged states (rewards and next states are
            the environment's for its slate; ``items`` stays the logged item). The critic
            warm-up of :mod:`agents.recipe` uses the cloned actor's.

    Returns:
        The transitions, in log order (users in episode order, then time).

    Raises:
        ConfigError: If ``env`` is not on the train split (that would train on held-out users).
    """
    env = getattr(env, "unwrapped", env)
    ctx = env.context
    if ctx.split_name != "train":
        raise ConfigError(
            f"Logged transitions come from the train split; this env replays "
            f"{ctx.split_name!r}. Make the env with split='train'."
        )
    ds, ep = ctx.dataset, ctx.episodes
    counts = ep.end - ep.future_start
    episode = np.repeat(np.arange(len(ep)), counts)
    t = np.repeat(ep.future_start - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    if max_transitions is not None and len(t) > max_transitions:
        keep = np.sort(as_generator(rng).choice(len(t), max_transitions, replace=False))
        episode, t = episode[keep], t[keep]
    n = len(t)
    actions = ctx.embeddings[ds.items[t]].astype(np.float32)
    obs_dim = int(np.prod(env.observation_space.shape))
    out = Transitions(
        observations=np.empty((n, obs_dim), dtype=np.float32),
        actions=actions,
        rewards=np.empty(n, dtype=np.float32),
        next_observations=np.empty((n, obs_dim), dtype=np.float32),
        dones=np.empty(n, dtype=bool),
        timeouts=np.empty(n, dtype=bool),
        items=ds.items[t].astype(np.int64),
        steps=t.astype(np.int64),
        history_starts=ds.indptr[ep.users[episode]].astype(np.int64),
        next_ends=ctx.group_end[t].astype(np.int64),
        slates=np.empty((n, env.slate_size), dtype=np.int64),
        contributions=np.empty((n, env.slate_size), dtype=np.float32),
    )
    core = env.make_core(min(BATCH, max(n, 1)))  # the env's own replay, obs layout and all
    bar = tqdm(
        range(0, n, BATCH), desc="logged transitions", unit="batch", disable=tqdm_disable(progress)
    )
    for lo in bar:
        hi = min(lo + BATCH, n)
        rows = np.arange(hi - lo)
        for i in rows.tolist():
            core.reset_slot(i, int(episode[lo + i]), future_start=int(t[lo + i]))
        out.observations[lo:hi] = core.observe(rows)
        if act is not None:
            actions[lo:hi] = _checked_actions(act(out.observations[lo:hi]), hi - lo, env)
        penalty = core.penalty[rows] if core.penalty is not None else None
        slates, _ = ctx.ranker.topk(actions[lo:hi], env.slate_size, core.blocked[rows], penalty)
        batch = core.step(rows, slates)
        out.rewards[lo:hi] = batch.rewards
        out.slates[lo:hi] = slates
        out.contributions[lo:hi] = batch.contributions
        out.next_observations[lo:hi] = core.observe(rows)
        out.dones[lo:hi] = batch.terminated
        out.timeouts[lo:hi] = batch.truncated
    return out


def _checked_actions(actions: np.ndarray, n: int, env: MovieRecEnv) -> np.ndarray:
    actions = np.asarray(actions, dtype=np.float32)
    shape = (n, *env.action_space.shape)
    if actions.shape != shape or not np.all(np.isfinite(actions)):
        raise ConfigError(
            f"act returned actions of shape {actions.shape} (finite: "
            f"{bool(np.all(np.isfinite(actions)))}); expected finite actions of shape {shape}."
        )
    return actions


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
    buf.dones[:rows] = (transitions.dones[:n] | transitions.timeouts[:n]).reshape(rows, n_envs)
    if hasattr(buf, "timeouts"):
        buf.timeouts[:rows] = transitions.timeouts[:n].reshape(rows, n_envs)
    buf.pos = rows % buf.buffer_size
    buf.full = rows == buf.buffer_size
    return n


def pretrain(model: BaseAlgorithm, gradient_steps: int, batch_size: int | None = None) -> None:
    """Run ``gradient_steps`` of the model's own updates on its replay buffer's content.

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
