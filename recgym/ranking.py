"""Nearest-embedding ranking: turn action vectors into ranked items of the catalogue.

For an action ``a`` and item vectors ``v_i`` the score is

* ``"dot"``: ``a . v_i``
* ``"cosine"``: ``a . v_i / (|a| |v_i|)`` (0 for a zero action)
* ``"euclidean"``: ``-|a - v_i|^2``
* ``"correlation"``: the Pearson correlation of ``a`` and ``v_i`` (each centred on the mean of
  its own components), ``(a - mean(a)) . (v_i - mean(v_i)) / (|a - mean(a)| |v_i - mean(v_i)|)``,
  which is ``1 - scipy.spatial.distance.correlation(a, v_i)``: ranking by the largest score is
  ranking by the smallest correlation distance (RecNN's walkthrough). 0 for a constant action
  or item vector (where the correlation is undefined).

With recgym's unit-norm embeddings dot, cosine and euclidean rank items identically (they
differ in the score values and for un-normalised matrices you supply); correlation ranks
differently (it ignores each vector's mean component).

Excluded items (a boolean mask per row) never appear. Ranking is two-stage. First the backend
(``"numpy"`` matmul and :func:`top_candidates`, or ``"torch"`` on CPU or GPU) finds, in
float32, every item that can be among the ``k`` best: the float32 top ``k`` and every item
within a bound on float32 rounding error of the k-th (so exact ties, e.g. a zero action or
duplicate item vectors, are all seen). Then the candidates are re-scored in float64, pair by
pair, and sorted by score, ties broken by the lower item index. The result is the float64
ranking, whatever the batch size or backend, which is what lets a batched vector environment
reproduce single environments exactly. (The ``"faiss"`` backend returns a fixed number of
neighbours, the ``2k`` best beyond the excluded items, so it can miss ties and near-ties
beyond them.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recgym.errors import ConfigError, check_choice

METRICS = ("dot", "cosine", "euclidean", "correlation")
BACKENDS = ("numpy", "torch", "faiss")
GROUP = 32  # items per group in top_candidates (32 measured fastest of 8-64 at 10k items)


def top_candidates(
    scores: np.ndarray, k: int, margin: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, every item that scores within ``margin`` of the k-th largest value, or above.

    Returns each row's finite items scoring at least ``t - margin``, for a bound ``t`` no larger
    than the row's k-th largest value: the ``k`` best, every item tied with the k-th or within
    ``margin`` of it, and usually a few more. For long rows ``t`` is the k-th largest *group
    maximum*: items are split into ``n / GROUP`` interleaved groups (item ``j`` in group
    ``j mod n_groups``); the ``k`` groups with the largest maxima hold ``k`` items ``>= t``, so
    ``t`` is at most the k-th largest value, and an item ``>= t - margin`` lies in a group whose
    maximum is ``>= t - margin``, so only those groups (about ``k``) are scanned. One vectorised
    maximum over the groups, a partition of the group maxima and a scan of about ``k * GROUP``
    items per row replace a partition of the whole row (about 10x faster for 10k items). Short
    rows use the k-th largest value itself as ``t``.

    Args:
        scores: ``(B, n)`` float32, ``-inf`` where an item is not allowed; the grouped path needs
            ``n`` a multiple of ``GROUP`` (pad with ``-inf``).
        k: How many per row (at most ``n``).
        margin: Optional ``(B,)`` non-negative float32 slack below the bound (e.g. the rounding
            error of the scores).

    Returns:
        ``(rows, items)``: int64 arrays of the selected ``(row, item)`` pairs, ordered by row. A
        row with fewer than ``k`` finite values gives all of them.
    """
    b, n = scores.shape
    n_groups = n // GROUP
    grouped = n % GROUP == 0 and n_groups >= 4 * k
    if grouped:
        group_max = scores.reshape(b, GROUP, n_groups).max(axis=1)
        bound = np.partition(group_max, n_groups - k, axis=1)[:, n_groups - k]
    else:
        bound = np.partition(scores, n - k, axis=1)[:, n - k]
    if margin is not None:
        bound = bound - margin
    bound = np.maximum(bound, _LOWEST)  # fewer than k finite values: every finite item
    if not grouped:
        rows, items = np.nonzero(scores >= bound[:, None])
        return rows.astype(np.int64), items.astype(np.int64)
    # the groups to scan, as flat indices into group_max, then their items' flat indices
    flat_groups = np.flatnonzero(group_max >= bound[:, None])
    group_rows = flat_groups // n_groups
    first = group_rows * (n - n_groups) + flat_groups  # row * n + group: its first item
    flat = (first[:, None] + np.arange(GROUP) * n_groups).ravel()
    flat = flat[scores.ravel()[flat] >= np.repeat(bound[group_rows], GROUP)]
    rows = flat // n
    return rows, flat - rows * n


def _inverse(norms: np.ndarray) -> np.ndarray:
    """``1 / norms``, with 0 where a norm is 0 (a zero vector scores 0 against everything)."""
    return np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)


_LOWEST = np.finfo(np.float32).min  # the smallest finite float32: a bound that drops -inf
_CHUNK = 1 << 16  # candidates re-scored at once (bounds memory when everything ties)


class Ranker:
    """Ranks catalogue items against action vectors.

    Args:
        item_vectors: ``(n_items, dim)`` item embeddings.
        metric: ``"dot"``, ``"cosine"``, ``"euclidean"`` or ``"correlation"`` (see the module).
        backend: ``"numpy"`` (default), ``"torch"`` (imported lazily) or ``"faiss"`` (the
            ``recgym[faiss]`` extra; exact flat index).
        device: Torch device for the torch backend (``"cpu"``, ``"cuda"``, ``"auto"``). The
            rounding-error margin assumes float32 matmuls: leave TF32 off (torch's default,
            ``torch.backends.cuda.matmul.allow_tf32``) or near-ties may be missed on a GPU.

    Examples:
        >>> v = np.eye(4, dtype=np.float32)
        >>> items, scores = Ranker(v).topk(np.array([0.1, 0.9, 0.5, 0.0]), k=2)
        >>> items.tolist(), scores.round(2).tolist()
        ([[1, 2]], [[0.9, 0.5]])
        >>> Ranker(v).topk(np.array([0.1, 0.9, 0.5, 0.0]), k=2,
        ...                exclude=np.array([False, True, False, False]))[0].tolist()
        [[2, 0]]
    """

    def __init__(
        self,
        item_vectors: np.ndarray,
        metric: str = "dot",
        backend: str = "numpy",
        device: str | None = None,
    ) -> None:
        """Prepare the catalogue for the chosen metric and backend."""
        check_choice("metric", metric, METRICS)
        check_choice("backend", backend, BACKENDS)
        v = np.asarray(item_vectors)
        if v.ndim != 2 or v.shape[0] < 1 or not np.all(np.isfinite(v)):
            raise ConfigError(
                f"item vectors must be a finite (n_items, dim) matrix; got shape {v.shape}."
            )
        self.metric = metric
        self.backend = backend
        self.device = device
        self.vectors = np.ascontiguousarray(v, dtype=np.float32)
        # float64 item vectors of the exact scores; correlation centres them once, here
        self._v64 = self._centred(self.vectors.astype(np.float64))
        norms = np.linalg.norm(self._v64, axis=1)
        self._inv_norm = _inverse(norms)
        # The float32 scoring matrix: cosine and correlation use normalised (and, for
        # correlation, centred) vectors; euclidean adds -|v|^2/2 to the dot product.
        if metric in ("cosine", "correlation"):
            self._score_vectors = (self._v64 * self._inv_norm[:, None]).astype(np.float32)
        else:
            self._score_vectors = self.vectors
        self._half_sq = (0.5 * norms**2).astype(np.float32)
        # numpy backend: rows padded to a multiple of GROUP so scores reshape into groups.
        n_pad = -(-self.n_items // GROUP) * GROUP
        padded = np.zeros((n_pad, self.dim), dtype=np.float32)
        padded[: self.n_items] = self._score_vectors
        self._padded_t = np.ascontiguousarray(padded.T)  # (dim, n_pad): the fastest matmul
        self._padded_half_sq = np.zeros(n_pad, dtype=np.float32)
        self._padded_half_sq[: self.n_items] = self._half_sq
        # For the rounding-error margin of float32 scores (see _margin).
        self._max_norm = float(np.linalg.norm(self._score_vectors.astype(np.float64), axis=1).max())
        self._max_half_sq = float(self._half_sq.max()) if metric == "euclidean" else 0.0
        self._backend_state: Any = None

    @property
    def n_items(self) -> int:
        """Number of items in the catalogue."""
        return self.vectors.shape[0]

    @property
    def dim(self) -> int:
        """Dimension of the vectors."""
        return self.vectors.shape[1]

    # ------------------------------------------------------------------ scores
    def scores(self, actions: np.ndarray) -> np.ndarray:
        """Exact float64 scores of every item for each action (``(B, n_items)``)."""
        a = self._centred(np.atleast_2d(np.asarray(actions, dtype=np.float64)))
        rows = np.repeat(np.arange(len(a)), self.n_items)
        items = np.tile(np.arange(self.n_items), len(a))
        return self._exact(a, rows, items).reshape(len(a), self.n_items)

    def _centred(self, x: np.ndarray) -> np.ndarray:
        """For ``"correlation"``, each float64 row minus its mean; otherwise ``x`` itself."""
        if self.metric != "correlation":
            return x
        return x - x.mean(axis=1, keepdims=True)

    def _exact(self, a: np.ndarray, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Exact float64 scores of the pairs (action ``a[rows[j]]``, item ``items[j]``).

        ``a`` is float64 and already centred for ``"correlation"`` (:meth:`_centred`). Pair by
        pair (a multiply-and-sum per pair, not BLAS, in chunks of ``_CHUNK`` pairs): a pair's
        score does not depend on the batch or on the other pairs.
        """
        out = np.empty(len(items))
        normalised = self.metric in ("cosine", "correlation")
        if normalised:
            inv_a = _inverse(np.linalg.norm(a, axis=1))
        for start in range(0, len(items), _CHUNK):
            r, i = rows[start : start + _CHUNK], items[start : start + _CHUNK]
            v, ar = self._v64[i], a[r]
            if self.metric == "euclidean":
                v -= ar
                out[start : start + len(i)] = -(v * v).sum(-1)
                continue
            dots = (v * ar).sum(-1)
            if normalised:
                dots *= self._inv_norm[i] * inv_a[r]
            out[start : start + len(i)] = dots
        return out

    # ------------------------------------------------------------------ penalty
    @property
    def padded_width(self) -> int:
        """Width of a :meth:`penalty` row: ``n_items`` rounded up to a multiple of ``GROUP``."""
        return self._padded_t.shape[1]

    def penalty(self, exclude: np.ndarray) -> np.ndarray:
        """The additive form of an exclusion mask, for :meth:`topk`'s ``penalty``.

        Args:
            exclude: Boolean ``(B, n_items)``.

        Returns:
            float32 ``(B, padded_width)``: ``-inf`` where ``exclude`` is True and in the padding
            columns, ``0`` elsewhere. Keep it in step with ``exclude`` (set an entry to
            ``-inf`` when an item is excluded, back to ``0`` when it is allowed again).
        """
        ex = np.atleast_2d(np.asarray(exclude, dtype=bool))
        if ex.shape[1] != self.n_items:
            raise ConfigError(f"exclude has shape {ex.shape}; expected (B, {self.n_items}).")
        out = np.full((len(ex), self.padded_width), -np.inf, dtype=np.float32)
        out[:, : self.n_items] = np.where(ex, np.float32(-np.inf), np.float32(0.0))
        return out

    # -------------------------------------------------------------------- top-k
    def topk(
        self,
        actions: np.ndarray,
        k: int,
        exclude: np.ndarray | None = None,
        penalty: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items for each action, best first.

        Args:
            actions: ``(dim,)`` or ``(B, dim)``.
            k: Number of items per row (at most ``n_items``).
            exclude: Boolean ``(n_items,)`` or ``(B, n_items)``; True items are never returned.
            penalty: Optional ``(B, padded_width)`` float32, the same exclusion in additive
                form (:meth:`penalty`). The numpy backend adds it to the scores instead of
                masking them with ``exclude``, which is several times faster when many items
                are excluded (a masked write branches on every item, an addition does not).
                The results are the same; pass ``exclude`` too for the other backends.

        Returns:
            ``(items, scores)``, each ``(B, k)`` (int64 and float64). A row with fewer than
            ``k`` allowed items is padded with -1 and ``-inf``.
        """
        a = np.asarray(actions)
        if a.ndim == 1:
            a = a[None]
        if a.ndim != 2 or a.shape[1] != self.dim:
            raise ConfigError(f"actions have shape {a.shape}; the items have dimension {self.dim}.")
        if not 1 <= k <= self.n_items:
            raise ConfigError(f"k={k} must be between 1 and n_items={self.n_items}.")
        if len(a) == 0:  # e.g. every sub-environment of a vector env autoresets this step
            return np.empty((0, k), dtype=np.int64), np.empty((0, k))
        # correlation: the action is centred in float64 once, then rounded to float32 for the
        # candidate search (one rounding, which the margin covers) and kept for the re-scoring
        a64 = self._centred(a.astype(np.float64))
        a32 = np.ascontiguousarray(a64 if self.metric == "correlation" else a, dtype=np.float32)
        if exclude is not None and exclude.shape != (len(a), self.n_items):
            exclude = np.broadcast_to(np.asarray(exclude, dtype=bool), (len(a), self.n_items))
        if penalty is not None and penalty.shape != (len(a), self.padded_width):
            raise ConfigError(
                f"penalty has shape {penalty.shape}; expected ({len(a)}, {self.padded_width}) "
                "(build it with Ranker.penalty)."
            )
        if self.backend == "numpy":
            rows, items = self._candidates_numpy(a32, k, exclude, penalty)
        elif self.backend == "torch":
            rows, items = self._candidates_torch(a32, k, exclude)
        else:
            rows, items = self._candidates_faiss(a32, min(self.n_items, 2 * k), exclude)
        return self._best_exact(a64, rows, items, k)

    def _margin(self, a32: np.ndarray) -> np.ndarray:
        """Per row, twice a bound on the rounding error of its float32 scores (``(B,)``).

        A float32 dot product of length ``d`` is within ``gamma_d sum_i |a_i v_i| <= gamma_d
        |a| |v|`` of the exact one (Higham), ``gamma_d = d u / (1 - d u) < 2 d u`` with
        ``u = 2**-24``; two more roundings cover ``a`` and ``v`` stored as float32 (for
        correlation: centred in float64, then rounded) and the euclidean offset ``|v|^2 / 2``,
        and a factor 2 the float64 re-score. ``a32`` is the action the float32 scores were
        computed from (centred for correlation), so ``|a|`` is its norm. If every score is
        within ``delta`` of the exact one, the ``k`` items scoring ``>= t`` in float32 score
        ``>= t - delta`` exactly, so an item of the exact top ``k`` (or tied with its last)
        scores ``>= t - 2 delta`` in float32: the candidates within this margin hold it.
        """
        delta = 4 * (self.dim + 2) * 2.0**-24
        norms = np.linalg.norm(a32.astype(np.float64), axis=1)
        return (2 * delta * (norms * self._max_norm + self._max_half_sq)).astype(np.float32)

    def _best_exact(
        self, a64: np.ndarray, rows: np.ndarray, items: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Re-score the candidate pairs exactly; per row the best ``k`` (ties: lower index)."""
        b = len(a64)
        exact = self._exact(a64, rows, items)
        order = np.lexsort((items, -exact, rows))  # by row, then score, then index
        counts = np.bincount(rows, minlength=b)
        starts = np.cumsum(counts) - counts
        rank = np.arange(k)
        taken = rank < counts[:, None]  # (b, k): rows with fewer candidates are padded
        picked = order[(starts[:, None] + rank)[taken]]
        out_items = np.full((b, k), -1, dtype=np.int64)
        out_scores = np.full((b, k), -np.inf)
        out_items[taken] = items[picked]
        out_scores[taken] = exact[picked]
        return out_items, out_scores

    def _candidates_numpy(
        self,
        a32: np.ndarray,
        k: int,
        exclude: np.ndarray | None,
        penalty: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidate ``(row, item)`` pairs: the float32 top ``k`` and all within the margin."""
        n = self.n_items
        s = a32 @ self._padded_t
        if self.metric == "euclidean":
            s -= self._padded_half_sq
        if penalty is not None:  # -inf on excluded items and padding, 0 elsewhere
            np.add(s, penalty, out=s)
        else:
            s[:, n:] = -np.inf
            if exclude is not None:
                np.copyto(s[:, :n], -np.inf, where=exclude)
        return top_candidates(s, k, self._margin(a32))

    def _candidates_torch(
        self, a32: np.ndarray, k: int, exclude: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`_candidates_numpy`, on a torch device."""
        import torch

        if self._backend_state is None:
            dev = self.device or "cpu"
            if dev == "auto":
                dev = "cuda" if torch.cuda.is_available() else "cpu"
            self._backend_state = (
                torch.device(dev),
                torch.from_numpy(self._score_vectors).to(dev),
                torch.from_numpy(self._half_sq).to(dev),
            )
        dev, v, half_sq = self._backend_state
        with torch.no_grad():
            s = torch.from_numpy(a32).to(dev) @ v.T
            if self.metric == "euclidean":
                s -= half_sq
            if exclude is not None:
                s.masked_fill_(torch.from_numpy(np.ascontiguousarray(exclude)).to(dev), -np.inf)
            bound = torch.topk(s, k, dim=1).values[:, -1]
            bound = (bound - torch.from_numpy(self._margin(a32)).to(dev)).clamp(min=float(_LOWEST))
            rows, items = torch.nonzero(s >= bound[:, None], as_tuple=True)
        return rows.cpu().numpy().astype(np.int64), items.cpu().numpy().astype(np.int64)

    def _candidates_faiss(
        self, a32: np.ndarray, m: int, exclude: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidate pairs from an exact faiss index (which cannot see ties beyond its k)."""
        try:
            import faiss
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ConfigError("backend='faiss' needs faiss: pip install 'recgym[faiss]'.") from exc
        if self._backend_state is None:
            if self.metric == "euclidean":
                index = faiss.IndexFlatL2(self.dim)
            else:
                index = faiss.IndexFlatIP(self.dim)
            index.add(self._score_vectors)
            self._backend_state = index
        n_excl = 0 if exclude is None else int(exclude.sum(axis=1).max())
        # m + (most excluded in a row) results hold each row's m best allowed items
        _, cand = self._backend_state.search(a32, min(self.n_items, m + n_excl))
        cand = cand.astype(np.int64)
        valid = cand >= 0
        if exclude is not None:
            valid &= ~np.take_along_axis(exclude, np.maximum(cand, 0), 1)
        rows, cols = np.nonzero(valid)
        return rows.astype(np.int64), cand[rows, cols]


def topk_of_scores(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """The ``k`` highest-scoring allowed items per row, best first, ties by lower index.

    Used by policies that score items directly (popularity, kNN, oracle).

    Args:
        scores: ``(n_items,)`` or ``(B, n_items)``.
        k: Items per row.
        exclude: Boolean mask of the same shape (broadcast); True items are skipped.

    Returns:
        ``(B, k)`` int64 item indices, padded with -1 where fewer are allowed.

    Examples:
        >>> topk_of_scores(np.array([1.0, 3.0, 3.0, 2.0]), 3).tolist()
        [[1, 2, 3]]
    """
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64)).copy()
    if exclude is not None:
        np.putmask(s, np.broadcast_to(exclude, s.shape), -np.inf)
    n = s.shape[1]
    k = min(k, n)
    # lexsort on (-score, index) over the top candidates; m >= k keeps ties exact.
    if k < n:
        kth = np.partition(s, n - k, axis=1)[:, n - k][:, None]
        cand_mask = s >= kth
    else:
        cand_mask = np.ones_like(s, dtype=bool)
    out = np.full((len(s), k), -1, dtype=np.int64)
    for r in range(len(s)):
        cand = np.flatnonzero(cand_mask[r])
        order = np.lexsort((cand, -s[r, cand]))[:k]
        chosen = cand[order]
        chosen = chosen[np.isfinite(s[r, chosen])]
        out[r, : len(chosen)] = chosen
    return out
