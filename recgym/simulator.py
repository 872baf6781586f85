"""A rating model for the environment's ``reward="simulator"`` mode.

Biased matrix factorisation, fitted on TRAIN interactions only::

    r_hat(u, i) = clip(mu + b_u + b_i + q_i . p_u, r_min, r_max)

* ``mu``: mean train rating; ``b_i = sum(r - mu - b_u) / (n_i + reg_bias)`` over the item's
  train ratings (user biases first, ``b_u = sum(r - mu) / (n_u + reg_bias)``).
* ``q_i``: rows of ``V S^(1/2)`` from a truncated SVD (rank ``rank``) of the train residuals
  ``r - mu - b_u - b_i``. Items without train ratings have ``b_i = 0`` and ``q_i = 0``.
* A user is *folded in* from a log of ratings (in the environment, the episode user's own whole
  log: the simulated user is that user): ``b_u`` as above, then ridge regression
  ``p_u = (Q^T Q + reg I)^-1 Q^T (r - mu - b_u - b_i)`` over the logged items.

So the model's parameters never see validation or test users; each simulated user is defined by
their own ratings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from recgym.data.dataset import Dataset
from recgym.seeding import RNGLike, as_generator


@dataclass
class FoldedUser:
    """A user folded into the model: their bias and factor vector."""

    bias: float
    factors: np.ndarray


class RatingModel:
    """Biased MF fitted on train interactions (see module docstring).

    Args:
        dataset: The dataset.
        train_mask: Interactions to fit on.
        rank: Number of latent factors (capped by the matrix size).
        reg_bias: Shrinkage of the biases (in pseudo-ratings).
        reg: Ridge penalty of the fold-in.
        rng: Seed of the SVD's start vector.
    """

    def __init__(
        self,
        dataset: Dataset,
        train_mask: np.ndarray,
        rank: int = 32,
        reg_bias: float = 5.0,
        reg: float = 2.0,
        rng: RNGLike = 0,
    ) -> None:
        """Fit biases and factors on the train interactions."""
        users = dataset.interaction_users[train_mask]
        items = dataset.items[train_mask]
        r = dataset.ratings[train_mask].astype(np.float64)
        self.rating_range = dataset.rating_range
        self.reg_bias, self.reg = reg_bias, reg
        self.mu = float(r.mean())
        n_u = np.bincount(users, minlength=dataset.n_users)
        b_u = np.bincount(users, weights=r - self.mu, minlength=dataset.n_users) / (n_u + reg_bias)
        n_i = np.bincount(items, minlength=dataset.n_items)
        resid = r - self.mu - b_u[users]
        self.item_bias = np.bincount(items, weights=resid, minlength=dataset.n_items) / (
            n_i + reg_bias
        )
        resid -= self.item_bias[items]
        m = sp.csr_matrix((resid, (users, items)), shape=(dataset.n_users, dataset.n_items))
        m = m[n_u > 0]
        k = max(1, min(rank, min(m.shape) - 1))
        v0 = as_generator(rng).uniform(-1, 1, min(m.shape))
        _, s, vt = svds(m, k=k, v0=v0)
        self.item_factors = (vt.T * np.sqrt(np.maximum(s, 0))).astype(np.float64)

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> FoldedUser:
        """Fold a user in from their logged ``(items, ratings)``."""
        r = np.asarray(ratings, dtype=np.float64)
        bias = float((r - self.mu - self.item_bias[items]).sum() / (len(r) + self.reg_bias))
        resid = r - self.mu - bias - self.item_bias[items]
        q = self.item_factors[items]
        a = q.T @ q + self.reg * np.eye(q.shape[1])
        return FoldedUser(bias, np.linalg.solve(a, q.T @ resid))

    def predict(self, user: FoldedUser, items: np.ndarray) -> np.ndarray:
        """Predicted ratings of ``items`` for ``user``, clipped to the rating range."""
        r = self.mu + user.bias + self.item_bias[items] + self.item_factors[items] @ user.factors
        return np.clip(r, *self.rating_range)
