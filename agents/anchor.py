"""The supervised anchor of the actor: full-softmax cross-entropy on logged train transitions.

An actor maps an observation to a point ``a`` in the item-embedding space, which the environment
decodes by scoring every item (``metric``: dot, cosine or euclidean). The anchor treats those
scores as logits over the whole catalogue and asks them to put the user's logged next item
first:

* ``logits_i = exp(s) * score(e_i, a)``, with a learned log-temperature ``s``;
* items the user already consumed get ``-inf``, as the environment masks them;
* the target is uniform over the user's next items (every item of the next logged second,
  as the evaluation counts them: :class:`agents.offline.Transitions`); with
  ``rating_weight = beta > 0`` each target's weight is multiplied by ``exp(beta r) / c``,
  ``r`` its rating scaled to [-1, 1] and ``c`` the mean of ``exp(beta r)`` over all logged
  targets (so the average weight stays 1): liked next items pull harder than disliked ones,
  as the environment's reward does;
* ``CE = -sum_i target_i log softmax(logits)_i``, averaged over the batch, plus
  ``norm_weight * (|a| - 1)^2``, which keeps actions on the unit sphere of the item vectors
  (the critic then sees actor actions and logged actions, item vectors, on one scale, and
  ``tanh`` stays out of saturation).

No sampled negatives: every item is in the softmax. :func:`pretrain_actor` fits an SB3 model's
actor with it (DDPG/TD3: the deterministic actor; SAC: ``tanh`` of its mean action), early
stopped on validation users; :func:`warm_up_critic` then fits the critic to that actor on the
same transitions (fitted Q evaluation) before online learning starts; the anchored algorithms of
:mod:`agents.anchored` keep the cross-entropy in the actor loss while they fine-tune.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.sac import SAC
from torch import nn
from tqdm.auto import tqdm

from agents.offline import Transitions
from recgym.envs import MovieRecEnv
from recgym.errors import ConfigError
from recgym.progress import tqdm_disable


def item_scores(actions: torch.Tensor, items: torch.Tensor, metric: str) -> torch.Tensor:
    """The decoder's score of every item for each action, in torch (``(B, n_items)``).

    The same formulas as :mod:`recgym.ranking`: ``dot`` ``a . e``; ``cosine`` ``a . e / (|a||e|)``;
    ``euclidean`` ``-|a - e|^2``; ``correlation`` the cosine of the centred vectors (the Pearson
    correlation; 0 for a constant vector).
    """
    if metric == "dot":
        return actions @ items.T
    if metric in ("cosine", "correlation"):
        if metric == "correlation":
            actions = actions - actions.mean(dim=1, keepdim=True)
            items = items - items.mean(dim=1, keepdim=True)
        return nn.functional.normalize(actions, dim=1) @ nn.functional.normalize(items, dim=1).T
    if metric == "euclidean":
        return (
            2 * actions @ items.T
            - (actions * actions).sum(1, keepdim=True)
            - (items * items).sum(1)[None, :]
        )
    raise ConfigError(
        f"metric={metric!r} has no torch scorer; use dot, cosine, euclidean or correlation."
    )


def policy_action(model: BaseAlgorithm, observations: torch.Tensor) -> torch.Tensor:
    """The model's deterministic action, differentiable (SAC: ``tanh`` of the mean action)."""
    if isinstance(model, SAC):
        mean, _, _ = model.actor.get_action_dist_params(observations)
        return torch.tanh(mean)
    return model.actor(observations)


def actor_parameters(model: BaseAlgorithm) -> list[nn.Parameter]:
    """The parameters that :func:`policy_action` depends on."""
    return list(model.actor.parameters())


@dataclass
class LoggedBatch:
    """A minibatch of logged transitions for the cross-entropy (tensors on the model's device).

    Attributes:
        observations: ``(B, obs_dim)``.
        consumed_rows: ``(C,)`` with ``consumed_items``: row ``consumed_rows[c]`` consumed
            item ``consumed_items[c]`` before its step (sparse: a few hundred items per row
            out of thousands; :attr:`consumed` is the dense mask).
        consumed_items: ``(C,)`` item indices.
        n_items: The catalogue size.
        target_rows: ``(T,)`` the row of each target (a row has one or more).
        target_items: ``(T,)`` the target item indices.
        target_weights: ``(T,)`` their weights (a row's weights sum to 1 when
            ``rating_weight`` is 0).
        actions: ``(B, dim)``, the logged actions (the items' embeddings).
    """

    observations: torch.Tensor
    consumed_rows: torch.Tensor
    consumed_items: torch.Tensor
    n_items: int
    target_rows: torch.Tensor
    target_items: torch.Tensor
    target_weights: torch.Tensor
    actions: torch.Tensor

    @property
    def consumed(self) -> torch.Tensor:
        """``(B, n_items)`` bool, the items each user consumed before the step."""
        dense = torch.zeros(
            (len(self.observations), self.n_items),
            dtype=torch.bool,
            device=self.observations.device,
        )
        dense[self.consumed_rows, self.consumed_items] = True
        return dense

    @property
    def targets(self) -> torch.Tensor:
        """``(B, n_items)`` float, the next-item distribution as a dense matrix."""
        dense = torch.zeros((len(self.observations), self.n_items), device=self.observations.device)
        dense[self.target_rows, self.target_items] = self.target_weights
        return dense


class BCAnchor(nn.Module):
    """Full-softmax cross-entropy of actions against the logged next items (see module).

    Args:
        env: The TRAIN environment the transitions come from (its embeddings, metric, data).
        transitions: :func:`agents.offline.logged_transitions` of ``env``.
        device: Torch device of the model.
        norm_weight: Weight of ``(|a| - 1)^2`` (0 turns it off).
        next_items: ``"second"`` (every item of the next logged second is a target, as the
            evaluation counts them) or ``"one"`` (the logged item only).
        rating_weight: ``beta`` of the targets' rating weights ``exp(beta r) / c`` (see
            module; 0: every target weighs the same).
        seed: Seed of the minibatch sampling.
    """

    def __init__(
        self,
        env: MovieRecEnv,
        transitions: Transitions,
        device: torch.device | str = "cpu",
        *,
        norm_weight: float = 0.1,
        next_items: str = "second",
        rating_weight: float = 0.0,
        seed: int = 0,
    ) -> None:
        """Put the item vectors on ``device``; the log-temperature starts at log(10)."""
        super().__init__()
        env = getattr(env, "unwrapped", env)
        if next_items not in ("second", "one"):
            raise ConfigError(f"next_items={next_items!r}; choose 'second' or 'one'.")
        if not norm_weight >= 0:
            raise ConfigError(f"norm_weight={norm_weight!r} must be >= 0.")
        if not rating_weight >= 0:
            raise ConfigError(
                f"rating_weight={rating_weight!r} must be >= 0 (0: targets weigh the same)."
            )
        if len(transitions) == 0:
            raise ConfigError("No logged transitions: the train split has no episode.")
        ctx = env.context
        self.transitions = transitions
        self.metric = ctx.ranker.metric
        self.n_items = ctx.dataset.n_items
        self.dataset_items = ctx.dataset.items
        self.norm_weight = float(norm_weight)
        self.next_items = next_items
        self.rating_weight = float(rating_weight)
        self._rating_factor = _rating_factors(
            ctx.scaled_ratings, transitions, next_items, self.rating_weight
        )
        self.device = torch.device(device)
        self.register_buffer("items", torch.as_tensor(ctx.embeddings, dtype=torch.float32))
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        self.rng = np.random.default_rng(seed)
        self.to(self.device)

    def __len__(self) -> int:
        """Number of logged transitions."""
        return len(self.transitions)

    def batch(self, index: np.ndarray) -> LoggedBatch:
        """The transitions ``index`` as tensors: observations, consumed masks, targets."""
        t = self.transitions
        starts, steps = t.history_starts[index], t.steps[index]
        consumed_rows, consumed_items = _ranges(self.dataset_items, starts, steps)
        if self.next_items == "second":
            ends = t.next_ends[index]
        else:
            ends = steps + 1
        rows, flat = _flat_ranges(steps, ends)
        targets = self.dataset_items[flat]
        weights = (1.0 / (ends - steps))[rows].astype(np.float32)
        if self._rating_factor is not None:
            weights *= self._rating_factor[flat]
        return LoggedBatch(
            observations=torch.as_tensor(t.observations[index], device=self.device),
            consumed_rows=torch.as_tensor(consumed_rows, device=self.device),
            consumed_items=torch.as_tensor(consumed_items, device=self.device),
            n_items=self.n_items,
            target_rows=torch.as_tensor(rows, device=self.device),
            target_items=torch.as_tensor(targets, device=self.device),
            target_weights=torch.as_tensor(weights, device=self.device),
            actions=torch.as_tensor(t.actions[index], device=self.device),
        )

    def sample_index(self, batch_size: int) -> np.ndarray:
        """A uniform draw of ``batch_size`` transition indices (with replacement)."""
        return self.rng.integers(len(self), size=batch_size)

    def sample(self, batch_size: int) -> LoggedBatch:
        """A uniform minibatch (with replacement across calls): ``batch(sample_index(...))``."""
        return self.batch(self.sample_index(batch_size))

    def logits(
        self, actions: torch.Tensor, consumed: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """Scaled item scores, consumed items at ``-inf``.

        Args:
            actions: ``(B, dim)``.
            consumed: ``(B, n_items)`` bool mask, or its ``(rows, items)`` index pairs (the
                same values; cheaper, as a minibatch's rows hold a few percent of the items).
        """
        scores = item_scores(actions, self.items, self.metric) * self.log_scale.exp()
        if isinstance(consumed, tuple):
            return scores.index_put(consumed, torch.tensor(float("-inf"), device=scores.device))
        return scores.masked_fill(consumed, float("-inf"))

    def log_probs(self, actions: torch.Tensor, batch: LoggedBatch) -> torch.Tensor:
        """``(B, n_items)`` log-softmax of :meth:`logits`: the actor's policy over the items."""
        consumed = (batch.consumed_rows, batch.consumed_items)
        return torch.log_softmax(self.logits(actions, consumed), dim=1)

    def loss(
        self,
        actions: torch.Tensor,
        batch: LoggedBatch,
        weights: torch.Tensor | None = None,
        log_probs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Cross-entropy plus the norm term, averaged over the batch (``weights``: per row).

        ``log_probs``: :meth:`log_probs` of ``actions``, when the caller has it already.
        """
        logp = self.log_probs(actions, batch) if log_probs is None else log_probs
        ce = target_cross_entropy(
            logp, batch.target_rows, batch.target_items, batch.target_weights, weights
        )
        if self.norm_weight:
            ce = ce + self.norm_weight * ((actions.norm(dim=1) - 1.0) ** 2).mean()
        return ce


def target_cross_entropy(
    log_probs: torch.Tensor,
    rows: torch.Tensor,
    items: torch.Tensor,
    target_weights: torch.Tensor,
    row_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """``mean_b w_b (-sum_t target_weights_t log_probs[b, items_t])``, ``t`` over row ``b``'s.

    Args:
        log_probs: ``(B, n_items)``.
        rows: ``(T,)`` the row of each target.
        items: ``(T,)`` its item (never a masked one: its log-probability must be finite).
        target_weights: ``(T,)``.
        row_weights: ``(B,)`` ``w_b`` (``None``: all 1).
    """
    picked = log_probs[rows, items] * target_weights
    ce = -torch.zeros(len(log_probs), device=log_probs.device).index_add(0, rows, picked)
    return ce.mean() if row_weights is None else (row_weights * ce).mean()


def _flat_ranges(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(row, flat)`` pairs: row ``j`` with each index of ``range(starts[j], stops[j])``."""
    lengths = stops - starts
    row = np.repeat(np.arange(len(starts)), lengths)
    flat = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    return row, flat


def _ranges(
    items: np.ndarray, starts: np.ndarray, stops: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(row, item)`` pairs: row ``j`` with each of ``items[starts[j]:stops[j]]``."""
    row, flat = _flat_ranges(starts, stops)
    return row, items[flat]


def _rating_factors(
    scaled_ratings: np.ndarray, transitions: Transitions, next_items: str, beta: float
) -> np.ndarray | None:
    """``exp(beta r) / c`` per interaction (float32), ``c`` its mean over the logged targets.

    ``None`` when ``beta`` is 0 (every target weighs the same).
    """
    if beta == 0:
        return None
    factors = np.exp(beta * scaled_ratings.astype(np.float64))
    steps = transitions.steps
    ends = transitions.next_ends if next_items == "second" else steps + 1
    _, flat = _flat_ranges(steps, ends)
    return (factors / factors[flat].mean()).astype(np.float32)


@dataclass
class PretrainResult:
    """What :func:`pretrain_actor` did.

    Attributes:
        epochs: Epochs run.
        best_epoch: The epoch whose weights were kept (by validation NDCG, else the last).
        losses: Mean training loss per epoch.
        val_ndcg: Validation NDCG@k per epoch (empty without a validation env).
        seconds: Wall time.
    """

    epochs: int = 0
    best_epoch: int = 0
    losses: list[float] = field(default_factory=list)
    val_ndcg: list[float] = field(default_factory=list)
    seconds: float = 0.0


def pretrain_actor(
    model: BaseAlgorithm,
    anchor: BCAnchor,
    *,
    epochs: int = 5,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    val_env: MovieRecEnv | None = None,
    val_users: int | None = None,
    patience: int = 2,
    sac_std: float | None = None,
    progress: bool | None = None,
) -> PretrainResult:
    """Fit the model's actor to the logged next items (behaviour cloning, see module).

    Each epoch passes once over the transitions in a seeded random order. With ``val_env`` the
    policy is evaluated on its users after every epoch (NDCG@k, :func:`agents.evaluate`), the
    best epoch's weights are kept and training stops after ``patience`` epochs without a gain.
    The target actor (DDPG/TD3) is set to the result.

    Args:
        model: A DDPG, TD3 or SAC model (plain or anchored).
        anchor: The cross-entropy and its transitions.
        epochs: Maximum passes over the transitions.
        batch_size: Minibatch size.
        learning_rate: Adam's step size.
        val_env: Validation environment for early stopping (``split="val"``).
        val_users: Evaluate only the first users of ``val_env`` (``None``: all).
        patience: Epochs without a validation gain before stopping.
        sac_std: For SAC, the standard deviation its policy starts fine-tuning with: the
            log-std head, which the cross-entropy does not train, is set to this constant
            (``None``: left as it is, 1 at initialisation, which would drown the cloned mean
            in noise).
        progress: Show a progress bar (``None``: only on a terminal).

    Returns:
        What was run and measured.
    """
    import time

    from agents.evaluate import evaluate
    from agents.policies import AgentPolicy

    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise ConfigError(
            f"epochs={epochs}, batch_size={batch_size} and learning_rate={learning_rate} must be "
            "positive."
        )
    if val_env is not None and getattr(val_env, "unwrapped", val_env).context.split_name == "train":
        raise ConfigError("val_env replays the train split; make it with split='val'.")
    start = time.perf_counter()
    params = actor_parameters(model)
    optimizer = torch.optim.Adam([*params, anchor.log_scale], lr=learning_rate)
    result = PretrainResult()
    best, best_state = -math.inf, None
    n = len(anchor)
    steps_per_epoch = -(-n // batch_size)
    bar = tqdm(
        total=epochs * steps_per_epoch, desc="actor pre-training", disable=tqdm_disable(progress)
    )
    model.policy.set_training_mode(True)
    for epoch in range(epochs):
        order = anchor.rng.permutation(n)
        total = 0.0
        for lo in range(0, n, batch_size):
            batch = anchor.batch(order[lo : lo + batch_size])
            loss = anchor.loss(policy_action(model, batch.observations), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch.observations)
            bar.update()
        result.losses.append(total / n)
        result.epochs = epoch + 1
        if val_env is None:
            result.best_epoch = epoch
            continue
        model.policy.set_training_mode(False)
        ndcg = evaluate(AgentPolicy(model), val_env, max_users=val_users, progress=False)
        model.policy.set_training_mode(True)
        score = ndcg.summary["ndcg"][0]
        result.val_ndcg.append(score)
        bar.set_postfix(loss=f"{result.losses[-1]:.3f}", val_ndcg=f"{score:.4f}")
        if score > best:
            best, result.best_epoch = score, epoch
            best_state = copy.deepcopy(model.actor.state_dict()), anchor.log_scale.item()
        elif epoch - result.best_epoch >= patience:
            break
    bar.close()
    if best_state is not None:
        model.actor.load_state_dict(best_state[0])
        with torch.no_grad():
            anchor.log_scale.fill_(best_state[1])
    if getattr(model, "actor_target", None) is not None:
        model.actor_target.load_state_dict(model.actor.state_dict())
    if (
        isinstance(model, SAC)
        and sac_std is not None
        and isinstance(model.actor.log_std, nn.Linear)
    ):
        with torch.no_grad():
            model.actor.log_std.weight.zero_()
            model.actor.log_std.bias.fill_(math.log(sac_std))
    model.policy.set_training_mode(False)
    result.seconds = time.perf_counter() - start
    return result


def logged_samples(
    anchor: BCAnchor, index: np.ndarray, transitions: Transitions | None = None
) -> ReplayBufferSamples:
    """The transitions ``index`` in SB3's replay-sample form (for critic updates).

    ``transitions``: where to read them (default: the anchor's logged transitions).
    """
    t, dev = (anchor.transitions if transitions is None else transitions), anchor.device

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x, dtype=np.float32), device=dev)

    done = t.dones[index] & ~t.timeouts[index]
    return ReplayBufferSamples(
        observations=tensor(t.observations[index]),
        actions=tensor(t.actions[index]),
        next_observations=tensor(t.next_observations[index]),
        dones=tensor(done)[:, None],
        rewards=tensor(t.rewards[index])[:, None],
    )


def warm_up_critic(
    model: BaseAlgorithm,
    anchor: BCAnchor,
    steps: int,
    batch_size: int | None = None,
    progress: bool | None = None,
    transitions: Transitions | None = None,
) -> list[float]:
    """Fit the critic to the current (fixed) actor on the logged transitions: fitted Q evaluation.

    Each step is the model's own critic update (:meth:`agents.anchored.AnchoredMixin.critic_step`:
    TD3's clipped double-Q target with the target actor, SAC's soft target) on a uniform
    minibatch of ``transitions``, then the Polyak update of the target critic. The actor is
    not changed.

    Args:
        model: An anchored DDPG, TD3 or SAC (:mod:`agents.anchored`).
        anchor: Holds the logged transitions and the sampling generator.
        steps: Critic updates.
        batch_size: Minibatch size (default: the model's).
        progress: Show a progress bar (``None``: only on a terminal).
        transitions: The critic's data (default: the anchor's logged transitions; the recipe
            passes the actor's own from the logged states, see :mod:`agents.recipe`).

    Returns:
        The critic loss of every 100th step.
    """
    if not hasattr(model, "critic_step"):
        raise ConfigError(
            f"{type(model).__name__} has no critic_step; build the model with recipe='anchored' "
            "(agents.anchored) to warm up its critic."
        )
    if steps < 0:
        raise ConfigError(f"steps={steps} must be >= 0.")
    batch_size = batch_size or model.batch_size
    model.policy.set_training_mode(True)
    losses = []
    data = anchor.transitions if transitions is None else transitions
    for step in tqdm(range(steps), desc="critic warm-up", disable=tqdm_disable(progress)):
        index = anchor.rng.integers(len(data), size=batch_size)
        loss = model.critic_step(logged_samples(anchor, index, data))
        model.update_critic_target()
        if step % 100 == 0:
            losses.append(loss)
    model.policy.set_training_mode(False)
    return losses
