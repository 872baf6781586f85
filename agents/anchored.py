"""DDPG, TD3 and SAC whose actor keeps a supervised anchor while it learns from the critic.

The SB3 algorithms, with one change to the actor update, in one of two forms
(``actor_loss``), both with the full-softmax cross-entropy of :class:`agents.anchor.BCAnchor`:

* ``"td3bc"`` (TD3+BC, Fujimoto & Gu 2021): the critic term beside the cross-entropy,

  * DDPG/TD3: ``loss = -critic_weight * Q(s, pi(s)) / mean|Q| + CE(pi(s_logged))``
  * SAC: ``loss = critic_weight * mean(alpha log pi(a|s) - Q(s, a)) / mean|Q|``
    ``+ CE(tanh(mu(s_logged)))``

  ``s`` is a minibatch of the replay buffer (online experience), ``s_logged`` one of the
  logged train transitions; ``mean|Q|`` is taken over the minibatch and not differentiated,
  so ``critic_weight`` (lambda) is scale-free; ``critic_weight=0`` keeps the
  behaviour-cloned actor and learns only the critic.
* ``"awr"`` (advantage-weighted regression, Peng et al. 2019): the cross-entropy alone, each
  logged transition weighted by ``w = exp(A / (temperature * std(A)))`` (at most 20, then
  divided by the batch mean), ``A = Q(s, a_logged) - Q(s, pi(s))``: the actor imitates the
  logged choices the critic rates above its own, more.

With ``hit_weight > 0`` and a hit term attached (:meth:`AnchoredMixin.set_hits`), both forms
add ``hit_weight * L_hits``, the reward-weighted cross-entropy of :mod:`agents.hits`: the
actor's softmax policy raises the slate items that earned the reward in the environment's
transitions (any hit of the user's future, not only the next item).

Without an anchor the update is SB3's own. The critic update is SB3's, unchanged;
:meth:`AnchoredTD3.critic_step` (and SAC's) is also what :func:`agents.anchor.warm_up_critic`
runs on logged transitions before online learning.

The models save and load as ordinary SB3 zips (``model.save``, ``AnchoredTD3.load``). The
anchor and the hit term, which hold transitions, are not saved: attach them with
:meth:`AnchoredMixin.set_anchor` and :meth:`AnchoredMixin.set_hits` to continue training a
loaded model (:func:`agents.recipe.attach_anchor` does both).
"""

from __future__ import annotations

import io
import os
import pathlib
from typing import Any

import numpy as np
import torch
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.utils import polyak_update
from torch.nn import functional as F

from agents.anchor import BCAnchor, policy_action
from agents.hits import HitImitation
from agents.wolpertinger import critic_values
from recgym.errors import ConfigError, check_choice

RECIPE = "anchored"
ACTOR_LOSSES = ("td3bc", "awr")
MAX_WEIGHT = 20.0  # AWR's weight clip


class AnchoredMixin:
    """What the anchored DDPG, TD3 and SAC share (see the module docstring).

    Attributes:
        anchor: The cross-entropy term, or ``None`` (SB3's actor loss).
        critic_weight: Lambda, the weight of the normalised critic term (>= 0).
        actor_loss: ``"td3bc"`` or ``"awr"`` (see the module docstring).
        awr_temperature: AWR's temperature, in standard deviations of the advantage (> 0).
        actor_learning_rate: The actor's step size (``None``: the model's ``learning_rate``,
            which the critic keeps): fine-tuning a cloned actor wants smaller steps than a
            critic learning from scratch.
        hits: The reward-weighted cross-entropy of :mod:`agents.hits`, or ``None``.
        hit_weight: Its weight in the actor loss (>= 0; 0: not used).
        recipe: ``"anchored"``, saved with the model so that loading checks it.
        algorithm: ``"ddpg"``, ``"td3"`` or ``"sac"``, saved too (:func:`load_agent`).
        anchor_log_scale: The anchor's log-temperature when it was attached (saved, so that
            :func:`agents.recipe.attach_anchor` restores the anchor of a loaded model).
    """

    anchor: BCAnchor | None
    critic_weight: float
    actor_loss: str = "td3bc"
    awr_temperature: float = 1.0
    hits: HitImitation | None = None
    hit_weight: float = 0.0
    recipe: str = RECIPE
    sb3_name: str = ""  # the SB3 class this one extends, for messages

    def __init__(
        self,
        *args: Any,
        anchor: BCAnchor | None = None,
        critic_weight: float = 1.0,
        actor_loss: str = "td3bc",
        awr_temperature: float = 1.0,
        actor_learning_rate: float | None = None,
        hit_weight: float = 0.0,
        **kwargs: Any,
    ) -> None:
        """Build the SB3 algorithm, then attach the anchor.

        Args:
            *args: The SB3 algorithm's arguments.
            anchor: The cross-entropy term (``None``: SB3's actor loss until one is set; for
                SAC, on ``tanh`` of the mean action).
            critic_weight: Lambda of the normalised critic term (default 1.0).
            actor_loss: ``"td3bc"`` (default) or ``"awr"``.
            awr_temperature: AWR's temperature (default 1.0).
            actor_learning_rate: The actor's step size (default: ``learning_rate``).
            hit_weight: Weight of the hit term (default 0: none), once one is attached.
            **kwargs: The SB3 algorithm's keyword arguments.
        """
        super().__init__(*args, **kwargs)
        if not isinstance(critic_weight, (int, float)) or not critic_weight >= 0:
            raise ConfigError(
                f"critic_weight={critic_weight!r} must be a number >= 0 (0: keep the "
                "behaviour-cloned actor; 1-5 are typical)."
            )
        check_choice("actor_loss", actor_loss, ACTOR_LOSSES)
        if (
            isinstance(hit_weight, bool)
            or not isinstance(hit_weight, (int, float))
            or not hit_weight >= 0
        ):
            raise ConfigError(
                f"hit_weight={hit_weight!r} must be a number >= 0 (0: no hit term; it weighs "
                "agents.hits' cross-entropy against the anchor's)."
            )
        if not isinstance(awr_temperature, (int, float)) or not awr_temperature > 0:
            raise ConfigError(f"awr_temperature={awr_temperature!r} must be a number > 0.")
        if actor_learning_rate is not None and (
            not isinstance(actor_learning_rate, (int, float)) or not actor_learning_rate > 0
        ):
            raise ConfigError(
                f"actor_learning_rate={actor_learning_rate!r} must be a number > 0 (or None: "
                "the model's learning_rate)."
            )
        self.actor_learning_rate = actor_learning_rate
        self.anchor_log_scale: float | None = None
        self.critic_weight = float(critic_weight)
        self.actor_loss = actor_loss
        self.awr_temperature = float(awr_temperature)
        self.hit_weight = float(hit_weight)
        self.hits = None
        self.recipe = RECIPE
        self.algorithm = self.sb3_name.lower()
        self.anchor = None
        if anchor is not None:
            self.set_anchor(anchor)

    def set_anchor(self, anchor: BCAnchor | None) -> None:
        """Attach (or with ``None`` detach) the cross-entropy term of the actor loss."""
        if anchor is not None:
            want = int(np.prod(self.observation_space.shape))
            got = anchor.transitions.observations.shape[1]
            if got != want:
                raise ConfigError(
                    f"The anchor's transitions have observations of size {got}; the model "
                    f"expects {want}. Build both from the same environment settings."
                )
            anchor.to(self.device)
            anchor.device = self.device
            self.anchor_log_scale = float(anchor.log_scale.item())  # saved with the model
        self.anchor = anchor

    def set_hits(self, hits: HitImitation | None) -> None:
        """Attach (or with ``None`` detach) the hit term of the actor loss (:mod:`agents.hits`).

        Raises:
            ConfigError: If it was not built on this model's anchor (it shares the anchor's
                logits and logged states): attach the anchor first.
        """
        if hits is not None:
            if self.anchor is None or hits.anchor is not self.anchor:
                raise ConfigError(
                    "The hit term must share this model's anchor: attach the anchor first "
                    "(set_anchor) and build HitImitation with it."
                )
        self.hits = hits

    def _update_learning_rates(self, critic_optimizers: list[torch.optim.Optimizer]) -> None:
        """SB3's schedule for the critic (and entropy) optimizers; the actor's own rate."""
        self._update_learning_rate(critic_optimizers)
        if self.actor_learning_rate is None:
            self._update_learning_rate([self.actor.optimizer])
        else:
            for group in self.actor.optimizer.param_groups:
                group["lr"] = self.actor_learning_rate

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "anchor", "hits", "_ce_losses", "_hit_losses"]

    @property
    def _uses_rl_loss(self) -> bool:
        """Whether the actor loss reads SB3's critic term (not with AWR: its CE is the loss)."""
        return self.anchor is None or (self.actor_loss == "td3bc" and self.critic_weight > 0)

    def _anchored_actor_loss(
        self, rl_loss: torch.Tensor | None, q: torch.Tensor | None
    ) -> torch.Tensor:
        """The actor loss of ``actor_loss`` (``rl_loss``, SB3's, without an anchor).

        ``rl_loss`` and ``q`` may be ``None`` when :attr:`_uses_rl_loss` is false.
        """
        if self.anchor is None:
            return rl_loss
        index = self.anchor.sample_index(self.batch_size)
        batch = self.anchor.batch(index)
        actions = policy_action(self, batch.observations)
        weights = None
        if self.actor_loss == "awr":
            advantage = critic_values(self, batch.observations, batch.actions) - critic_values(
                self, batch.observations, actions.detach()
            )
            weights = awr_weights(advantage, self.awr_temperature)
        with_hits = self.hits is not None and self.hit_weight > 0
        log_probs = self.anchor.log_probs(actions, batch) if with_hits else None
        ce = self.anchor.loss(actions, batch, weights, log_probs=log_probs)
        self._ce_losses.append(ce.item())
        if with_hits:  # the same states and log-softmax, the slate items that paid as targets
            hit_loss = self.hits.loss(log_probs, index)
            self._hit_losses.append(hit_loss.item())
            ce = ce + self.hit_weight * hit_loss
        if not self._uses_rl_loss:
            return ce
        scale = self.critic_weight / q.abs().mean().detach().clamp_min(1e-6)
        return scale * rl_loss + ce

    @classmethod
    def load(
        cls,
        path: str | pathlib.Path | io.BufferedIOBase,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """SB3's ``load``, refusing a zip saved by another recipe (plain SB3, say)."""
        if isinstance(path, (str, os.PathLike)):
            data, _, _ = load_from_zip_file(path, device="cpu", load_data=True)
            recipe = (data or {}).get("recipe", "sb3")
            if recipe != RECIPE:
                raise ConfigError(
                    f"{os.fspath(path)!r} was saved by recipe {recipe!r}, not {RECIPE!r}: load "
                    f"it with stable_baselines3.{cls.sb3_name}.load, or with "
                    "agents.anchored.load_agent, which picks the class from the file."
                )
        return super().load(path, *args, **kwargs)


def awr_weights(advantage: torch.Tensor, temperature: float) -> torch.Tensor:
    """``exp(A / (temperature * std(A)))``, clipped at ``MAX_WEIGHT``, divided by their mean."""
    scale = temperature * advantage.std().clamp_min(1e-6)
    weights = torch.exp(advantage / scale).clamp(max=MAX_WEIGHT)
    return weights / weights.mean()


class AnchoredTD3(AnchoredMixin, TD3):
    """TD3 with the anchored actor loss (see the module docstring).

    Takes TD3's arguments and the anchored ones of :class:`AnchoredMixin` (``anchor``,
    ``critic_weight``, ``actor_loss``, ``awr_temperature``, ``actor_learning_rate``).
    """

    sb3_name = "TD3"

    def critic_step(self, data: ReplayBufferSamples) -> float:
        """One TD3 critic update on ``data`` (SB3's target: clipped double Q, smoothed)."""
        discounts = data.discounts if data.discounts is not None else self.gamma
        with torch.no_grad():
            noise = data.actions.clone().data.normal_(0, self.target_policy_noise)
            noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
            next_actions = (self.actor_target(data.next_observations) + noise).clamp(-1, 1)
            next_q = torch.cat(self.critic_target(data.next_observations, next_actions), dim=1)
            next_q, _ = torch.min(next_q, dim=1, keepdim=True)
            target_q = data.rewards + (1 - data.dones) * discounts * next_q
        current = self.critic(data.observations, data.actions)
        return _gradient_step(self.critic.optimizer, sum(F.mse_loss(q, target_q) for q in current))

    def update_critic_target(self) -> None:
        """Polyak-average the critic into its target (and copy batch-norm statistics)."""
        polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
        polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's TD3 update with the anchored actor loss."""
        self.policy.set_training_mode(True)
        self._update_learning_rates([self.critic.optimizer])
        actor_losses, critic_losses, self._ce_losses, self._hit_losses = [], [], [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            critic_losses.append(self.critic_step(data))
            if self._n_updates % self.policy_delay == 0:
                q = rl_loss = None
                if self._uses_rl_loss:
                    q = self.critic.q1_forward(data.observations, self.actor(data.observations))
                    rl_loss = -q.mean()
                loss = self._anchored_actor_loss(rl_loss, q)
                actor_losses.append(_gradient_step(self.actor.optimizer, loss))
                self.update_critic_target()
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
                polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)
        _record(self, actor_losses, critic_losses)


class AnchoredDDPG(AnchoredTD3):
    """DDPG with the anchored actor loss: TD3 with one critic, no delay, no target smoothing.

    As SB3's ``DDPG`` is its ``TD3`` with those three settings, so is this class. Takes
    DDPG's arguments and the anchored ones of :class:`AnchoredMixin`.
    """

    sb3_name = "DDPG"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Build with DDPG's settings."""
        policy_kwargs = dict(kwargs.pop("policy_kwargs", None) or {})
        policy_kwargs.setdefault("n_critics", 1)
        super().__init__(
            *args,
            policy_delay=1,
            target_policy_noise=0.0,
            target_noise_clip=0.0,
            policy_kwargs=policy_kwargs,
            **kwargs,
        )


class AnchoredSAC(AnchoredMixin, SAC):
    """SAC with the anchored actor loss (see the module docstring).

    Takes SAC's arguments and the anchored ones of :class:`AnchoredMixin` (its anchor is on
    ``tanh`` of the mean action).
    """

    sb3_name = "SAC"

    def _ent_coef(self) -> torch.Tensor:
        if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
            return torch.exp(self.log_ent_coef.detach())
        return self.ent_coef_tensor

    def critic_step(self, data: ReplayBufferSamples) -> float:
        """One SAC critic update on ``data`` (SB3's soft target, the current entropy weight)."""
        discounts = data.discounts if data.discounts is not None else self.gamma
        ent_coef = self._ent_coef()
        with torch.no_grad():
            next_actions, next_log_prob = self.actor.action_log_prob(data.next_observations)
            next_q = torch.cat(self.critic_target(data.next_observations, next_actions), dim=1)
            next_q, _ = torch.min(next_q, dim=1, keepdim=True)
            next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1)
            target_q = data.rewards + (1 - data.dones) * discounts * next_q
        current = self.critic(data.observations, data.actions)
        loss = 0.5 * sum(F.mse_loss(q, target_q) for q in current)
        return _gradient_step(self.critic.optimizer, loss)

    def update_critic_target(self) -> None:
        """Polyak-average the critic into its target (and copy batch-norm statistics)."""
        polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
        polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """SB3's SAC update with the anchored actor loss."""
        self.policy.set_training_mode(True)
        optimizers = [self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rates(optimizers)
        actor_losses, critic_losses, ent_coefs = [], [], []
        self._ce_losses, self._hit_losses = [], []
        for step in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            if self.use_sde:
                self.actor.reset_noise()
            learn_ent_coef = self.ent_coef_optimizer is not None and self.log_ent_coef is not None
            if learn_ent_coef or self._uses_rl_loss:
                actions_pi, log_prob = self.actor.action_log_prob(data.observations)
                log_prob = log_prob.reshape(-1, 1)
            if learn_ent_coef:
                ent_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
                _gradient_step(self.ent_coef_optimizer, ent_loss)
            ent_coef = self._ent_coef()
            ent_coefs.append(ent_coef.item())
            critic_losses.append(self.critic_step(data))
            min_q = rl_loss = None
            if self._uses_rl_loss:
                q = torch.cat(self.critic(data.observations, actions_pi), dim=1)
                min_q, _ = torch.min(q, dim=1, keepdim=True)
                rl_loss = (ent_coef * log_prob - min_q).mean()
            loss = self._anchored_actor_loss(rl_loss, min_q)
            actor_losses.append(_gradient_step(self.actor.optimizer, loss))
            if step % self.target_update_interval == 0:
                self.update_critic_target()
        self._n_updates += gradient_steps
        self.logger.record("train/ent_coef", float(np.mean(ent_coefs)))
        _record(self, actor_losses, critic_losses)


def _gradient_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    """One step of ``optimizer`` down ``loss``; the loss's value."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.item())


def _record(model: Any, actor_losses: list[float], critic_losses: list[float]) -> None:
    model.logger.record("train/n_updates", model._n_updates, exclude="tensorboard")
    if actor_losses:
        model.logger.record("train/actor_loss", float(np.mean(actor_losses)))
    if model._ce_losses:
        model.logger.record("train/anchor_ce", float(np.mean(model._ce_losses)))
    if model._hit_losses:
        model.logger.record("train/hit_ce", float(np.mean(model._hit_losses)))
    model.logger.record("train/critic_loss", float(np.mean(critic_losses)))


#: The keyword arguments the anchored classes add to SB3's.
OPTIONS = ("critic_weight", "actor_loss", "awr_temperature", "actor_learning_rate", "hit_weight")

ANCHORED: dict[str, type[AnchoredMixin]] = {
    "ddpg": AnchoredDDPG,
    "td3": AnchoredTD3,
    "sac": AnchoredSAC,
}


def saved_recipe(path: str | os.PathLike[str]) -> tuple[str, str | None]:
    """``(recipe, algorithm)`` of a saved model: ``("anchored", "td3")``, ``("sb3", None)``..."""
    data, _, _ = load_from_zip_file(path, device="cpu", load_data=True)
    data = data or {}
    return data.get("recipe", "sb3"), data.get("algorithm")


def load_agent(
    path: str | os.PathLike[str], algo: str | None = None, device: str = "auto", **kwargs: Any
) -> Any:
    """Load a saved model with the class that saved it.

    Args:
        path: The ``.zip``.
        algo: ``"ddpg"``, ``"td3"``, ``"sac"`` or ``"dqn"``: needed for a plain SB3 zip, checked
            against an anchored one.
        device: Torch device.
        **kwargs: Passed to SB3's ``load`` (``env=...``).

    Raises:
        ConfigError: If ``algo`` is missing for a plain zip or contradicts the file.
    """
    from agents.factory import ALGOS

    recipe, saved_algo = saved_recipe(path)
    if recipe == RECIPE:
        if algo is not None and algo != saved_algo:
            raise ConfigError(
                f"{os.fspath(path)!r} holds an anchored {saved_algo!r} model, not {algo!r}."
            )
        return ANCHORED[saved_algo].load(path, device=device, **kwargs)
    if algo not in ALGOS:
        raise ConfigError(
            f"{os.fspath(path)!r} is a plain SB3 model: pass algo= one of {list(ALGOS)}."
        )
    return ALGOS[algo].load(path, device=device, **kwargs)
