"""The anchored recipe: what happens to an agent before online learning starts.

1. **Logged transitions** of the train users, stepped through the environment
   (:func:`agents.offline.logged_transitions`), each with its logged item.
2. **Behaviour cloning**: the actor is fitted to the logged next items with the full-softmax
   cross-entropy of :class:`agents.anchor.BCAnchor`, early-stopped on validation users
   (:func:`agents.anchor.pretrain_actor`). The result alone is the ``bc`` policy.
3. **Critic warm-up**: fitted Q evaluation of that actor (:func:`agents.anchor.warm_up_critic`),
   so the critic knows the actor before it steers it. Its data are the actor's own
   transitions from the logged states (:func:`noisy_actor`: the actor's action plus the
   exploration noise, stepped through the environment), so the targets ``Q(s', actor(s'))``
   ask about actions like those the critic is fitted on. With the logged movie's embedding as
   the action instead (``AnchorSettings(warmup_actions="logged")``, the only way before) the
   warm-up diverged in SASRec's item space (critic loss 0.04 to 7e6 in 2,000 steps,
   ml-latest-small, DDPG); with the actor's actions it stayed at 0.02-0.06.
4. The anchor is attached to the model (:meth:`agents.anchored.AnchoredMixin.set_anchor`), and,
   when the model's ``hit_weight`` is above 0, the hit term (:class:`agents.hits.HitImitation`)
   on the same noisy-actor transitions (stepped for it when the warm-up did not); then
   ``model.learn`` fine-tunes online with the anchored actor loss.

:func:`prepare_anchored` runs steps 1-4 on a model from ``make_agent(..., recipe="anchored")``;
:func:`attach_anchor` gives a saved anchored model (a resumed run) its anchor back. The
settings are :class:`agents.config.AnchorSettings`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from agents.allocator import keep_freed_memory
from agents.anchor import BCAnchor, PretrainResult, pretrain_actor, warm_up_critic
from agents.config import AnchorSettings
from agents.factory import ANCHORED_NOISE
from agents.hits import HitImitation
from agents.offline import Transitions, fill_replay_buffer, logged_transitions
from agents.threads import single_blas_thread
from recgym.envs import MovieRecEnv
from recgym.errors import ConfigError

progress_log = logging.getLogger("agents.progress")


@dataclass
class AnchorReport:
    """What :func:`prepare_anchored` did.

    Attributes:
        transitions: Logged transitions used.
        bc: The behaviour-cloning run.
        warmup_losses: Critic loss every 100 warm-up steps.
        seconds: Wall time per stage.
    """

    transitions: int
    bc: PretrainResult
    warmup_losses: list[float] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def prepare_anchored(
    model: Any,
    train_env: MovieRecEnv,
    val_env: MovieRecEnv | None,
    settings: AnchorSettings | None = None,
    *,
    seed: int = 0,
    stop_after_bc: bool = False,
    progress: bool | None = None,
) -> AnchorReport:
    """Run the recipe's offline stages on ``model`` (see the module docstring).

    Args:
        model: An anchored DDPG, TD3 or SAC (``make_agent(..., recipe="anchored")``).
        train_env: The TRAIN environment (its logged transitions).
        val_env: The validation environment (early stopping of behaviour cloning).
        settings: The stages' settings (defaults: :class:`AnchorSettings`).
        seed: Seed of the minibatch sampling.
        stop_after_bc: Stop after behaviour cloning (the ``bc`` policy: no critic, no anchor).
        progress: Show progress bars (``None``: only on a terminal).

    Returns:
        What was run, with timings.

    Raises:
        ConfigError: If the model is not anchored, or an environment is on the wrong split.
    """
    settings = (settings or AnchorSettings()).validate()
    if not hasattr(model, "set_anchor"):
        raise ConfigError(
            f"{type(model).__name__} is not an anchored model: build it with "
            "make_agent(..., recipe='anchored')."
        )
    keep_freed_memory()  # the cross-entropy's (batch, n_items) tensors: see agents.allocator
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    with single_blas_thread():
        transitions = logged_transitions(train_env, progress=progress)
        seconds["transitions"] = time.perf_counter() - start
        anchor = _new_anchor(model, train_env, transitions, settings, seed)
        progress_log.info("behaviour cloning on %d logged transitions", len(transitions))
        start = time.perf_counter()
        bc = pretrain_actor(
            model,
            anchor,
            epochs=settings.bc_epochs,
            batch_size=settings.bc_batch_size,
            learning_rate=settings.bc_learning_rate,
            val_env=val_env,
            val_users=settings.val_users,
            patience=settings.bc_patience,
            sac_std=ANCHORED_NOISE / math.sqrt(model.action_space.shape[0]),
            progress=progress,
        )
        seconds["bc"] = time.perf_counter() - start
        report = AnchorReport(transitions=len(transitions), bc=bc, seconds=seconds)
        if stop_after_bc:
            return report
        start = time.perf_counter()
        critic_data = None
        if settings.warmup_steps and settings.warmup_actions == "actor":
            critic_data = explored_transitions(model, train_env, seed, progress)
        report.warmup_losses = warm_up_critic(
            model, anchor, settings.warmup_steps, progress=progress, transitions=critic_data
        )
        seconds["warmup"] = time.perf_counter() - start
        model.set_anchor(anchor)
        if model.hit_weight > 0:
            start = time.perf_counter()
            if critic_data is None:
                critic_data = explored_transitions(model, train_env, seed, progress)
            model.set_hits(_new_hits(anchor, critic_data, train_env))
            seconds["hits"] = time.perf_counter() - start
    if settings.keep_logged:
        fill_replay_buffer(model, transitions)
    return report


def noisy_actor(model: Any, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """The model's deterministic action plus the recipe's Gaussian exploration noise, clipped.

    The noise has norm about ``ANCHORED_NOISE`` (standard deviation ``ANCHORED_NOISE /
    sqrt(dim)`` per component), drawn from a generator seeded with ``seed``.
    """
    rng = np.random.default_rng(seed)
    space = model.action_space
    sigma = ANCHORED_NOISE / math.sqrt(space.shape[0])

    def act(observations: np.ndarray) -> np.ndarray:
        actions, _ = model.policy.predict(observations, deterministic=True)
        actions = actions + rng.normal(0.0, sigma, actions.shape)
        return np.clip(actions, space.low, space.high).astype(np.float32)

    return act


def explored_transitions(
    model: Any, train_env: MovieRecEnv, seed: int = 0, progress: bool | None = None
) -> Transitions:
    """The model's own transitions from every logged train state (:func:`noisy_actor`'s actions).

    The critic warm-up's data, and the hit term's (:mod:`agents.hits`).
    """
    return logged_transitions(train_env, progress=progress, act=noisy_actor(model, seed))


def attach_anchor(
    model: Any, train_env: MovieRecEnv, settings: AnchorSettings | None = None, *, seed: int = 0
) -> BCAnchor:
    """Give a loaded anchored model its anchor back (the anchor is not saved with it).

    The logged transitions are stepped again and the anchor's temperature is the one the
    model was cloned with (``model.anchor_log_scale``). A model with ``hit_weight > 0`` gets
    its hit term back too, on exploring transitions stepped with its current actor (a fresh
    run steps them with the cloned one), so a resumed run learns from slates like its own.
    """
    settings = (settings or AnchorSettings()).validate()
    keep_freed_memory()
    with single_blas_thread():
        transitions = logged_transitions(train_env, progress=False)
    anchor = _new_anchor(model, train_env, transitions, settings, seed)
    if getattr(model, "anchor_log_scale", None) is not None:
        with torch.no_grad():
            anchor.log_scale.fill_(model.anchor_log_scale)
    model.set_anchor(anchor)
    if model.hit_weight > 0:
        with single_blas_thread():
            explored = explored_transitions(model, train_env, seed, progress=False)
        model.set_hits(_new_hits(anchor, explored, train_env))
    return anchor


def _new_hits(anchor: BCAnchor, transitions: Transitions, train_env: MovieRecEnv) -> HitImitation:
    """The hit term on ``transitions``, with the environment's position weights."""
    weights = getattr(train_env, "unwrapped", train_env).make_core(1).weights
    return HitImitation(anchor, transitions, weights)


def _new_anchor(
    model: Any,
    train_env: MovieRecEnv,
    transitions: Transitions,
    settings: AnchorSettings,
    seed: int,
) -> BCAnchor:
    """The cross-entropy anchor of ``model`` on the logged ``transitions``, as ``settings`` say."""
    return BCAnchor(
        train_env,
        transitions,
        model.device,
        norm_weight=settings.norm_weight,
        next_items=settings.next_items,
        rating_weight=settings.rating_weight,
        seed=seed,
    )
