"""Clustering of item vectors: :func:`kmeans` (``MovieRecDiscrete-v0``'s ``groups="clusters"``)."""

from __future__ import annotations

import numpy as np

from recgym.seeding import RNGLike, as_generator


def kmeans(vectors: np.ndarray, k: int, rng: RNGLike = 0, iters: int = 50) -> np.ndarray:
    """Cluster rows with k-means (k-means++ start, Lloyd iterations); return labels.

    Args:
        vectors: ``(n, d)`` points.
        k: Clusters (at most ``n``).
        rng: Seed of the start.
        iters: Lloyd iterations (stops early when labels settle).

    Returns:
        ``(n,)`` int64 labels in ``0..k-1``; every cluster is non-empty.

    Raises:
        ValueError: If ``vectors`` is not a matrix or ``k`` is not in ``[1, n]``.

    Examples:
        >>> labels = kmeans(np.array([[0.0], [0.1], [5.0], [5.2]]), 2, rng=0)
        >>> bool(labels[0] == labels[1] != labels[2] == labels[3])
        True
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"vectors has shape {x.shape}; kmeans needs an (n, d) matrix.")
    n = len(x)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k={k!r} must be an integer in [1, {n}] (the number of vectors).")
    gen = as_generator(rng)
    centres = [x[gen.integers(n)]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1 / n)
        centres.append(x[gen.choice(n, p=p)])
        d2 = np.minimum(d2, ((x - centres[-1]) ** 2).sum(1))
    c = np.array(centres)
    labels = np.full(n, -1)
    for _ in range(iters):
        dist = (x**2).sum(1)[:, None] - 2 * x @ c.T + (c**2).sum(1)[None]
        new = dist.argmin(1)
        _refill_empty(new, dist, k)
        if np.array_equal(new, labels):
            break
        labels = new
        c = np.array([x[labels == j].mean(0) for j in range(k)])
    return labels.astype(np.int64)


def _refill_empty(labels: np.ndarray, dist: np.ndarray, k: int) -> None:
    """Give each empty cluster the point farthest from its centre, in place.

    Points are taken only from clusters with more than one member, so no cluster is emptied
    (with duplicate points, the same point could otherwise be moved back and forth, leaving a
    cluster empty and its centre NaN).
    """
    counts = np.bincount(labels, minlength=k)
    if counts.all():
        return
    cost = dist[np.arange(len(labels)), labels]
    for j in np.flatnonzero(counts == 0):
        movable = np.flatnonzero(counts[labels] > 1)  # k <= n: some cluster has two or more
        i = movable[np.argmax(cost[movable])]
        counts[labels[i]] -= 1
        labels[i], counts[j], cost[i] = j, 1, dist[i, j]
