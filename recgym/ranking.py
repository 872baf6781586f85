"""Nearest-embedding ranking: turn action vectors into ranked items of the catalogue.

For an action ``a`` and item vectors ``v_i`` the score is

* ``"dot"``: ``a . v_i``
* ``"cosine"``: ``a . v_i / (|a| |v_i|)`` (0 for a zero action)
* ``"euclidean"``: ``-|a - v_i|^2``

With recgym's unit-norm embeddings all three rank items identically (they differ in the score
values and for un-normalised matrices you supply).

Excluded items (a boolean mask per row) never appear. Ranking is two-stage: the backend
(``"numpy"`` matmul and :func:`top_m`, ``"torch"`` on CPU or GPU, or ``"faiss"``) finds the
``2k`` best candidates in float32, then those are re-scored exactly in float64 and sorted by
score, ties broken by the lower item index (when more items than the candidates share the
boundary score, all of them are re-scored, so exact ties, e.g. a zero action, resolve to the
lowest indices; the faiss backend cannot see all scores and breaks such ties its own way).
The second stage makes results identical whatever the batch size or backend (up to float32
near-ties at the candidate boundary), which is what lets a batched vector environment reproduce
single environments exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recgym.errors import ConfigError, check_choice

METRICS = ("dot", "cosine", "euclidean")
BACKENDS = ("numpy", "torch", "faiss")
GROUP = 16


def top_m(scores: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the ``m`` largest values of each row (unordered), fast for long rows.

    Items are split into ``n / GROUP`` interleaved groups (item ``j`` in group ``j mod
    n_groups``). A group holding none of a row's top ``m`` values has every value below them, so
    the top ``m`` lie in the ``m`` groups with the largest maxima: one vectorised maximum over
    the groups, a partition of the group maxima, and a partition of ``m * GROUP`` candidates
    replace a partition of the whole row (4x faster for 10k items). Short rows use a plain
    partition.

    Args:
        scores: ``(B, n)`` with ``n`` a multiple of ``GROUP`` (pad with ``-inf``).
        m: How many per row.

    Returns:
        ``(indices, values, n_at_least)``: ``(B, m)`` indices and their values, and per row how
        many items score at least the smallest finite selected value (more than the number of
        finite selected values means ties at the boundary).
    """
    b, n = scores.shape
    n_groups = n // GROUP
    rows = _ROWS[b]
    if n % GROUP or n_groups < 4 * m:
        idx = np.argpartition(scores, n - m, axis=1)[:, n - m :]
        values = scores[rows, idx]
        bound = _bound(values)
        return idx, values, np.count_nonzero(scores >= bound[:, None], axis=1)
    group_max = scores.reshape(b, GROUP, n_groups).max(axis=1)
    groups = np.argpartition(group_max, n_groups - m, axis=1)[:, n_groups - m :]
    idx = (groups[:, :, None] + _GROUP_OFFSETS[n_groups]).reshape(b, -1)
    pool = scores[rows, idx]
    best = np.argpartition(pool, idx.shape[1] - m, axis=1)[:, -m:]
    values = pool[rows, best]
    bound = _bound(values)
    n_at_least = np.count_nonzero(pool >= bound[:, None], axis=1)
    # Items at or above the bound outside the chosen groups can only sit in a group whose
    # maximum reaches the bound: count those rows exactly (rare: ties across groups).
    spill = np.flatnonzero(np.count_nonzero(group_max >= bound[:, None], axis=1) > m)
    if len(spill):
        n_at_least[spill] = np.count_nonzero(scores[spill] >= bound[spill, None], axis=1)
    return idx[rows, best], values, n_at_least


def _bound(values: np.ndarray) -> np.ndarray:
    """Per row, the smallest finite value (``inf`` when none is finite)."""
    low = values.min(axis=1)
    if np.isfinite(low).all():
        return low
    return np.where(np.isfinite(values), values, np.inf).min(axis=1)


class _Cache(dict):
    """``key -> make(key)``, computed once per key (small index arrays reused every step)."""

    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: int) -> np.ndarray:
        value = self[key] = self.make(key)
        value.flags.writeable = False
        return value


_GROUP_OFFSETS = _Cache(lambda n_groups: np.arange(GROUP) * n_groups)
_ROWS = _Cache(lambda b: np.arange(b)[:, None])


class Ranker:
    """Ranks catalogue items against action vectors.

    Args:
        item_vectors: ``(n_items, dim)`` item embeddings.
        metric: ``"dot"``, ``"cosine"`` or ``"euclidean"``.
        backend: ``"numpy"`` (default), ``"torch"`` (imported lazily) or ``"faiss"`` (the
            ``recgym[faiss]`` extra; exact flat index).
        device: Torch device for the torch backend (``"cpu"``, ``"cuda"``, ``"auto"``).

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
        self._v64 = self.vectors.astype(np.float64)
        norms = np.linalg.norm(self._v64, axis=1)
        self._inv_norm = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
        # The float32 scoring matrix: cosine uses normalised vectors, euclidean adds -|v|^2/2.
        if metric == "cosine":
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
        a = np.atleast_2d(np.asarray(actions, dtype=np.float64))
        return self._exact(a, np.broadcast_to(np.arange(self.n_items), (len(a), self.n_items)))

    def _exact(self, a: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """Exact float64 scores of candidate items ``cand`` (B, m) for actions ``a`` (B, d).

        Row-wise multiply-and-sum: the result of a row does not depend on the batch.
        """
        v = self._v64[cand]
        if self.metric == "euclidean":
            return -((v - a[:, None, :]) ** 2).sum(-1)
        dots = (v * a[:, None, :]).sum(-1)
        if self.metric == "cosine":
            an = np.linalg.norm(a, axis=1)
            inv_a = np.where(an > 0, 1.0 / np.where(an > 0, an, 1.0), 0.0)
            return dots * self._inv_norm[cand] * inv_a[:, None]
        return dots

    # ------------------------------------------------------------------ penalty
    @property
    def padded_width(self) -> int:
        """Width of a :meth:`penalty` row: ``n_items`` rounded up to a multiple of 16."""
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
        a32 = np.ascontiguousarray(a, dtype=np.float32)
        if exclude is not None and exclude.shape != (len(a), self.n_items):
            exclude = np.broadcast_to(np.asarray(exclude, dtype=bool), (len(a), self.n_items))
        m = min(self.n_items, 2 * k)
        if penalty is not None and penalty.shape != (len(a), self.padded_width):
            raise ConfigError(
                f"penalty has shape {penalty.shape}; expected ({len(a)}, {self.padded_width}) "
                "(build it with Ranker.penalty)."
            )
        if self.backend == "numpy":
            cand, valid, tied = self._candidates_numpy(a32, m, exclude, penalty)
        elif self.backend == "torch":
            cand, valid, tied = self._candidates_torch(a32, m, exclude)
        else:
            cand, valid = self._candidates_faiss(a32, m, exclude)
            tied = {}
        a64 = a.astype(np.float64)
        items, scores = self._finish(a64, cand, valid, k)
        # Rows whose boundary score is shared by more items than the candidates: re-rank all
        # of those items, so that exact ties resolve to the lowest indices. Modest ties are
        # handled as one batch with wider candidate sets; huge ones (a zero action) row by row.
        wide = {r: c for r, c in tied.items() if len(c) <= 8 * m}
        if wide:
            rows = np.fromiter(wide, dtype=np.int64)
            width = max(len(c) for c in wide.values())
            cand_w = np.zeros((len(rows), width), dtype=np.int64)
            valid_w = np.zeros((len(rows), width), dtype=bool)
            for j, c in enumerate(wide.values()):
                cand_w[j, : len(c)], valid_w[j, : len(c)] = c, True
            items[rows], scores[rows] = self._finish(a64[rows], cand_w, valid_w, k)
        for r, everyone in tied.items():
            if r not in wide:
                one = self._finish(
                    a64[r : r + 1], everyone[None], np.ones((1, len(everyone)), bool), k
                )
                items[r], scores[r] = one[0][0], one[1][0]
        return items, scores

    def _finish(
        self, a64: np.ndarray, cand: np.ndarray, valid: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of the candidates, then the best ``k`` per row (ties: lower index)."""
        exact = self._exact(a64, cand)
        all_valid = valid.all()
        if not all_valid:
            exact[~valid] = -np.inf
        rows = _ROWS[len(a64)]
        order = np.lexsort((cand, -exact), axis=-1)[:, :k]
        items, scores = cand[rows, order], exact[rows, order]
        if not all_valid:
            items[np.isneginf(scores)] = -1
        if items.shape[1] < k:  # fewer candidates than k (tiny catalogues)
            pad = k - items.shape[1]
            items = np.pad(items, ((0, 0), (0, pad)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        return items, scores

    def _candidates_numpy(
        self,
        a32: np.ndarray,
        m: int,
        exclude: np.ndarray | None,
        penalty: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        """The ``m`` best items per row in float32, via group maxima (see :func:`top_m`).

        Returns:
            ``(candidates, valid, tied)``: ``tied`` maps the rows where more items than the
            candidates share the boundary score to all items at or above it, so that exact
            ties are broken by the lower index whatever the partition picked.
        """
        n = self.n_items
        s = a32 @ self._padded_t
        if self.metric == "euclidean":
            s -= self._padded_half_sq
        if penalty is not None:  # -inf on excluded items and padding, 0 elsewhere
            np.add(s, penalty, out=s)
        else:
            if s.shape[1] > n:
                s[:, n:] = -np.inf
            if exclude is not None:
                np.copyto(s[:, :n], -np.inf, where=exclude)
        cand, values, n_at_least = top_m(s, m)
        valid = np.isfinite(values)
        tied = {
            int(r): np.flatnonzero(s[r, :n] >= _bound(values[r : r + 1])[0])
            for r in np.flatnonzero(n_at_least > valid.sum(axis=1))
        }
        if s.shape[1] > n:  # padding can be picked when fewer than m items are allowed
            cand = np.where(cand < n, cand, 0)
        return cand, valid, tied

    def _candidates_torch(
        self, a32: np.ndarray, m: int, exclude: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        """As :meth:`_candidates_numpy`, with the scores and top-k on a torch device."""
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
            top = torch.topk(s, m, dim=1)
            values = top.values
            valid_t = torch.isfinite(values)
            bound = torch.where(valid_t, values, torch.full_like(values, np.inf)).min(dim=1).values
            n_at_least = (s >= bound[:, None]).sum(dim=1)
            tied_rows = torch.nonzero(n_at_least > valid_t.sum(dim=1)).flatten().tolist()
            tied = {r: torch.nonzero(s[r] >= bound[r]).flatten().cpu().numpy() for r in tied_rows}
            cand, valid = top.indices.cpu().numpy(), valid_t.cpu().numpy()
        return cand.astype(np.int64), valid, tied

    def _candidates_faiss(
        self, a32: np.ndarray, m: int, exclude: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
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
        kk = min(self.n_items, m + n_excl)
        _, cand = self._backend_state.search(a32, kk)
        cand = cand.astype(np.int64)
        valid = cand >= 0
        if exclude is not None:
            valid &= ~np.take_along_axis(exclude, np.maximum(cand, 0), 1)
        # keep the first m valid candidates of each row (faiss returns them best first)
        rank = np.cumsum(valid, axis=1)
        keep = valid & (rank <= m)
        out = np.full((len(cand), m), 0, dtype=np.int64)
        ok = np.zeros((len(cand), m), dtype=bool)
        rows, cols = np.nonzero(keep)
        out[rows, rank[rows, cols] - 1] = cand[rows, cols]
        ok[rows, rank[rows, cols] - 1] = True
        return out, ok


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
