r"""Learning from the reward's hits: a reward-weighted cross-entropy towards what paid off.

The anchor (:class:`agents.anchor.BCAnchor`) teaches the actor the user's *next* logged item.
The environment pays for more: any slate item the user rates later in their log is a hit,
worth its scaled rating. Its critic-free RL term is the slate policy gradient of that reward
(REINFORCE over a slate, as in Chen et al. 2019, "Top-K Off-Policy Correction for a REINFORCE
Recommender System", in the reward-weighted-regression form of Peters & Schaal 2007): read the
actor's action as a softmax policy over the catalogue, with the anchor's own logits
(``pi(i | s) = softmax_i(exp(s) score(e_i, a))``, consumed items masked), and, on transitions
the environment produced, raise the log-probability of every slate item by what it added to
the reward::

    L_hits = - sum_{b, p} A_{b,p} log pi(slate_{b,p} | s_b) / sum_{b, p} A_{b,p},
    A_{b,p} = w_p max(c_{b,p}, 0)

``c_{b,p}`` is slate position ``p``'s contribution to the reward (a hit's scaled rating,
``unrated_reward`` elsewhere: :class:`recgym.envs.core.StepBatch`), ``w_p`` the reward's
position weight. Only positive contributions pull (a hit the user disliked, or a miss, is not
pushed away: a negative weight on ``log pi`` has no lower bound). The normalisation makes the
loss a weighted average of log-probabilities, on the anchor's scale, so its weight
(``hit_weight`` of :mod:`agents.anchored`) is relative to the anchor's.

The transitions are the recipe's exploration transitions: from every logged train state, the
cloned actor's action plus the exploration noise, stepped through the environment (the critic
warm-up's data, :func:`agents.recipe.noisy_actor`), so each carries the slate that action
decoded to and what each of its items earned. Unlike the next-item anchor, the term sees the
hits further ahead in the log, which the reward counts and the next-item target does not.

Measured on ml-latest-small (user split, SASRec's space, 3 seeds in their own tables, test
users, paired with the recipe without the term): ``hit_weight=3`` lowered NDCG@10 by 0.0103
(DDPG), 0.0079 (TD3) and 0.0081 (SAC) and raised the return by 0.030, 0.013 and 0.001, every
return interval covering zero; the reward pays for far-ahead movies that the ranking metrics
(the next movies) do not count. So the recipe's default is 0 (off); README, Results.
"""

from __future__ import annotations

import numpy as np
import torch

from agents.anchor import BCAnchor, target_cross_entropy
from agents.offline import Transitions
from recgym.errors import ConfigError


class HitImitation:
    """The reward-weighted cross-entropy of the module docstring, on a set of transitions.

    Its transitions are stepped from the anchor's logged states, row for row, so a minibatch
    of the anchor (:meth:`agents.anchor.BCAnchor.sample_index`) gives both terms: the
    anchor's targets (the next items) and these (the slate items that paid), scored on one
    log-softmax of the actor's actions.

    Args:
        anchor: The anchor whose logits (item vectors, metric, temperature, consumed-item
            masks) the policy uses.
        transitions: Transitions stepped from the same logged states as the anchor's (the
            rows must match: same ``steps`` and ``history_starts``), with their slates and
            contributions; the recipe passes its exploration transitions.
        position_weights: The reward's position weights ``w_p`` (``(slate_size,)``).

    Raises:
        ConfigError: If the transitions do not match the anchor's rows or the slate size.
    """

    def __init__(
        self, anchor: BCAnchor, transitions: Transitions, position_weights: np.ndarray
    ) -> None:
        """Compute every slate position's advantage ``w_p max(c, 0)``."""
        logged = anchor.transitions
        if len(transitions) != len(logged) or not (
            np.array_equal(transitions.steps, logged.steps)
            and np.array_equal(transitions.history_starts, logged.history_starts)
        ):
            raise ConfigError(
                "The hit transitions were not stepped from the anchor's logged states; build "
                "both with agents.offline.logged_transitions on the same train environment."
            )
        w = np.asarray(position_weights, dtype=np.float32)
        if w.shape != (transitions.slates.shape[1],):
            raise ConfigError(
                f"position_weights has shape {w.shape}; expected ({transitions.slates.shape[1]},)"
                ", one per slate position."
            )
        self.anchor = anchor
        self.slates = transitions.slates
        self.advantages = np.maximum(transitions.contributions, 0.0) * w

    def __len__(self) -> int:
        """Number of transitions with at least one paying slate item."""
        return int((self.advantages > 0).any(axis=1).sum())

    def loss(self, log_probs: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        """``L_hits`` of the module docstring on the anchor's minibatch ``index``.

        Args:
            log_probs: ``(B, n_items)`` :meth:`agents.anchor.BCAnchor.log_probs` of the
                actor's actions in the logged states ``index``.
            index: ``(B,)`` the minibatch's transition indices.
        """
        adv = self.advantages[index]
        rows, cols = np.nonzero(adv > 0)
        total = float(adv[rows, cols].sum())
        if total <= 0:  # nothing paid in this minibatch
            return log_probs.new_zeros(())
        # weights with a mean of 1 per row, so the row mean is sum(A log pi) / sum(A)
        weights = adv[rows, cols] * (len(index) / total)
        device = log_probs.device
        return target_cross_entropy(
            log_probs,
            torch.as_tensor(rows, device=device),
            torch.as_tensor(self.slates[index][rows, cols], device=device),
            torch.as_tensor(weights.astype(np.float32), device=device),
        )


__all__ = ["HitImitation"]
