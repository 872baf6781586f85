"""Ranking and beyond-accuracy metrics, with their formulas.

Per step, for a slate ``s_1..s_k`` (best first) and the set ``R`` of relevant items:

* ``HR@k = 1 if any s_p in R else 0``
* ``NDCG@k = DCG / IDCG`` with ``DCG = sum_p [s_p in R] / log2(p + 1)`` (``p`` from 1) and
  ``IDCG = sum_{p=1..min(k, |R|)} 1 / log2(p + 1)``
* ``MRR@k = 1 / p`` for the first ``p`` with ``s_p in R``, else 0
* ``precision@k = |{s_p in L}| / k`` for the set ``L`` of liked items (the evaluation reads
  which slate items are liked from the environment's ``info``: :mod:`agents.evaluate`)

Per run, over all slates shown:

* coverage = distinct items recommended / catalogue size
* intra-list diversity = mean over slates of the mean pairwise cosine distance
  ``1 - cos(e_i, e_j)`` of the slate's item embeddings
* novelty = mean over recommended items of ``-log2((n_i + 1) / (N + 1))``, ``n_i`` the item's
  train interactions and ``N`` the number of train users (rarer items are more novel)

Edge cases (no relevant item, no users) warn with :class:`MetricWarning` and return NaN rather
than raising, as LensKit does.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Sequence

import numpy as np
from scipy import stats


class MetricWarning(UserWarning):
    """A metric was undefined (empty relevant set, no users) and is NaN."""


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def hit_rate(slate: Sequence[int], relevant: Collection[int]) -> float:
    """``HR@k``: 1.0 if any slate item is relevant.

    Examples:
        >>> hit_rate([5, 3, 9], {9}), hit_rate([5, 3, 9], {1})
        (1.0, 0.0)
    """
    if not relevant:
        warnings.warn("hit_rate: no relevant item; result is NaN.", MetricWarning, stacklevel=2)
        return math.nan
    return float(any(i in relevant for i in slate))


def ndcg(slate: Sequence[int], relevant: Collection[int]) -> float:
    """``NDCG@k`` with binary relevance (see the module docstring).

    Examples:
        >>> round(ndcg([5, 3, 9], {5}), 4), round(ndcg([5, 3, 9], {3}), 4)
        (1.0, 0.6309)
        >>> round(ndcg([5, 3, 9], {3, 5}), 4)
        1.0
    """
    if not relevant:
        warnings.warn("ndcg: no relevant item; result is NaN.", MetricWarning, stacklevel=2)
        return math.nan
    k = len(slate)
    d = _discounts(k)
    gains = np.fromiter((i in relevant for i in slate), dtype=float, count=k)
    ideal = d[: min(k, len(relevant))].sum()
    return float(gains @ d / ideal)


def reciprocal_rank(slate: Sequence[int], relevant: Collection[int]) -> float:
    """``MRR@k`` of one slate: ``1 / rank`` of the first relevant item, 0 if none.

    Examples:
        >>> reciprocal_rank([5, 3, 9], {9})
        0.3333333333333333
    """
    if not relevant:
        warnings.warn("mrr: no relevant item; result is NaN.", MetricWarning, stacklevel=2)
        return math.nan
    for p, i in enumerate(slate, 1):
        if i in relevant:
            return 1.0 / p
    return 0.0


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of ``values`` (NaNs dropped).

    ``scipy.stats.t.interval(level, n - 1, loc=mean, scale=sem)``, ``sem`` the standard error
    of the mean; every interval of recgym's tables (over users, over seeds) is this one.

    Returns:
        ``(mean, low, high)``; NaN when there are no values, the interval NaN with one value,
        ``(mean, mean)`` when all values are equal.

    Examples:
        >>> m, lo, hi = mean_ci([1.0, 2.0, 3.0])
        >>> m, round(lo, 3), round(hi, 3)
        (2.0, -0.484, 4.484)
    """
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if len(x) == 0:
        warnings.warn("mean_ci: no values; result is NaN.", MetricWarning, stacklevel=2)
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if len(x) == 1:
        return m, math.nan, math.nan
    sem = float(stats.sem(x))
    if sem == 0:  # all values equal: SciPy wants a positive scale, the interval is the point
        return m, m, m
    low, high = stats.t.interval(level, len(x) - 1, loc=m, scale=sem)
    return m, float(low), float(high)


def coverage(recommended: Collection[int], n_items: int) -> float:
    """Distinct recommended items over the catalogue size."""
    return len(set(recommended)) / n_items if n_items else math.nan


def intra_list_diversity(slates: np.ndarray, embeddings: np.ndarray) -> float:
    """Mean pairwise cosine distance within slates, averaged over slates.

    Args:
        slates: ``(n_slates, k)`` item indices.
        embeddings: ``(n_items, d)`` item vectors.

    Examples:
        >>> e = np.eye(3)
        >>> intra_list_diversity(np.array([[0, 1], [0, 0]]), e)
        0.5
    """
    slates = np.asarray(slates)
    if slates.size == 0:
        warnings.warn("diversity: no slates; result is NaN.", MetricWarning, stacklevel=2)
        return math.nan
    e = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    v = e[slates]  # (n, k, d)
    sim = np.einsum("nkd,njd->nkj", v, v)
    k = slates.shape[1]
    off = ~np.eye(k, dtype=bool)
    return float((1.0 - sim[:, off]).mean()) if k > 1 else 0.0


def novelty(recommended: np.ndarray, train_counts: np.ndarray, n_train_users: int) -> float:
    """Mean self-information ``-log2((n_i + 1) / (N + 1))`` of the recommended items."""
    rec = np.asarray(recommended).ravel()
    if rec.size == 0:
        warnings.warn("novelty: nothing recommended; result is NaN.", MetricWarning, stacklevel=2)
        return math.nan
    p = (train_counts[rec] + 1.0) / (n_train_users + 1.0)
    return float(-np.log2(p).mean())
