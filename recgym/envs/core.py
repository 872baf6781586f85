"""The replay mechanics of ``MovieRec``: ``n`` episodes stepped together as arrays.

:class:`ReplayCore` holds the state of ``n`` replayed users in arrays (one row per slot) and
applies slates to many rows at once: hit detection, rewards, consumption, the shown-item mask
and observations are each a few array operations per step, whatever ``n`` is. Only rare rows
take a Python loop (several hits, several next items within one second, releasing shown items).

:class:`~recgym.envs.MovieRecEnv` is this core with one slot, and
:class:`~recgym.envs.MovieRecVectorEnv` the same core with ``num_envs`` slots, so the two follow
one code path and produce identical trajectories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recgym.data import Dataset
from recgym.envs.context import EnvContext
from recgym.errors import ConfigError


@dataclass
class StepBatch:
    """What a step produced for ``rows`` (arrays aligned with ``rows``).

    Attributes:
        rows: The slots stepped.
        user_ids: ``(R,)`` original ids of their users.
        slates: ``(R, k)`` item indices shown.
        rewards: ``(R,)`` rewards.
        terminated: ``(R,)`` the user left (patience).
        truncated: ``(R,)`` the log ended.
        hits: ``(R, k)`` which slate items the user consumed.
        hit_ratings: ``(R, k)`` raw ratings of hits, 0 elsewhere (float32).
        contributions: ``(R, k)`` what each slate position adds to the reward before the
            position weights (``rewards == contributions @ weights``): a hit's scaled (and
            discounted) rating, ``unrated_reward`` elsewhere; the simulator's predictions
            with ``reward="simulator"``.
        next_items: Per row, the tuple of the user's actual next items (same second).
        consumed: Per row, the tuple of items consumed this step, log order.
        n_left: ``(R,)`` future items left after the step.
    """

    rows: np.ndarray
    user_ids: np.ndarray
    slates: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    hits: np.ndarray
    hit_ratings: np.ndarray
    contributions: np.ndarray
    next_items: list[tuple[int, ...]]
    consumed: list[tuple[int, ...]]
    n_left: np.ndarray


class ReplayCore:
    """State and mechanics of ``n`` replayed episodes (see the module docstring).

    Args:
        ctx: The shared data.
        n: Number of slots.
        frame_size: Consumed items in the observation.
        slate_size: Items per slate.
        unrated_reward: Contribution of a slate item the user never rated.
        allow_repeats: Do not block items already shown.
        patience: Slates without a hit before the user leaves (``None``: never).
        hit_discount: A hit's contribution is multiplied by ``hit_discount ** n``, ``n`` the
            user's remaining future items logged in an earlier second than it (1.0: none).
        history_size: ``None`` (default): observations are the frame of ``MovieRec-v0``;
            an integer: the sequence observation of ``MovieRecSeq-v0`` over the last
            ``history_size`` consumed items (:meth:`observe`).
    """

    def __init__(
        self,
        ctx: EnvContext,
        n: int,
        *,
        frame_size: int,
        slate_size: int,
        unrated_reward: float,
        allow_repeats: bool,
        patience: int | None,
        hit_discount: float = 1.0,
        history_size: int | None = None,
    ) -> None:
        """Allocate the per-slot arrays (no episode is started)."""
        ds = ctx.dataset
        self.ctx, self.n = ctx, n
        self.frame_size, self.slate_size = frame_size, slate_size
        self.history_size = history_size
        self.unrated_reward, self.allow_repeats, self.patience = (
            unrated_reward,
            allow_repeats,
            patience,
        )
        self.hit_discount = float(hit_discount)
        w = 1.0 / np.log2(np.arange(slate_size) + 2.0)
        self.weights = w / w.sum()
        longest = int(ds.user_lengths[ctx.episodes.users].max())
        n_items = ds.n_items
        # per item: blocked = consumed, or shown and not released; the decoder reads it, the
        # numpy decoder in additive form (penalty: -inf where blocked, 0 elsewhere; always
        # changed together with blocked, through _block and _unblock)
        self.blocked = np.zeros((n, n_items), dtype=bool)
        ranker = ctx.ranker
        self.penalty = ranker.penalty(self.blocked) if ranker.backend == "numpy" else None
        self.consumed = np.zeros((n, n_items), dtype=bool)
        self.shown_at = np.zeros((n, n_items), dtype=np.int64)  # step shown (0: never)
        self.future_pos = np.full((n, n_items), -1, dtype=np.int32)  # item -> position in F
        # per future position / history entry
        self.remaining = np.zeros((n, longest), dtype=bool)
        self.hist_items = np.zeros((n, longest), dtype=np.int32)
        self.hist_ratings = np.zeros((n, longest), dtype=np.float32)  # scaled to [-1, 1]
        # per slot
        self.episode = np.full(n, -1, dtype=np.int64)
        self.user = np.zeros(n, dtype=np.int64)
        self.start = np.zeros(n, dtype=np.int64)  # flat index of the user's first interaction
        self.fs = np.zeros(n, dtype=np.int64)  # flat index where the future starts
        self.end = np.zeros(n, dtype=np.int64)
        self.hlen = np.zeros(n, dtype=np.int64)
        self.nxt = np.zeros(n, dtype=np.int64)  # first remaining future position
        self.n_left = np.zeros(n, dtype=np.int64)
        self.n_blocked = np.zeros(n, dtype=np.int64)
        self.misses = np.zeros(n, dtype=np.int64)
        self.steps = np.zeros(n, dtype=np.int64)
        self.running = np.zeros(n, dtype=bool)
        sim = ctx.simulator
        rank = sim.item_factors.shape[1] if sim is not None else 0
        self.user_bias = np.zeros(n)
        self.user_factors = np.zeros((n, rank))

    # --------------------------------------------------------------------- reset
    def reset_slot(self, i: int, episode: int, future_start: int | None = None) -> None:
        """Start ``episode`` in slot ``i``.

        Args:
            i: The slot.
            episode: Index of the episode in the split.
            future_start: Flat index at which the replayed future starts instead of the
                episode's own (``None``), for a state later in the same log: everything the user
                did before it is their history. Must lie in ``[episode start, episode end)``
                with at least ``frame_size`` interactions before it.
        """
        ctx, ds = self.ctx, self.ctx.dataset
        if self.episode[i] >= 0:  # forget the previous episode's future
            self.future_pos[i, ds.items[self.fs[i] : self.end[i]]] = -1
        ep = ctx.episodes
        u = int(ep.users[episode])
        start, fs, end = int(ds.indptr[u]), int(ep.future_start[episode]), int(ep.end[episode])
        if future_start is not None:
            if not fs <= future_start < end:
                raise ConfigError(
                    f"future_start={future_start} is outside episode {episode}'s window "
                    f"[{fs}, {end})."
                )
            fs = int(future_start)
        n_hist, n_future = fs - start, end - fs
        self._unblock(i, slice(0, ds.n_items))
        self.consumed[i] = False
        self.shown_at[i] = 0
        self.remaining[i] = False
        self.remaining[i, :n_future] = True
        self.future_pos[i, ds.items[fs:end]] = np.arange(n_future, dtype=np.int32)
        history = ds.items[start:fs]
        self.hist_items[i, :n_hist] = history
        self.hist_ratings[i, :n_hist] = ctx.scaled_ratings[start:fs]
        self.consumed[i, history] = True
        self._block(i, history)
        self.episode[i], self.user[i] = episode, u
        self.start[i], self.fs[i], self.end[i] = start, fs, end
        self.hlen[i], self.nxt[i], self.n_left[i] = n_hist, 0, n_future
        self.n_blocked[i] = n_hist  # a user's items are distinct
        self.misses[i] = self.steps[i] = 0
        self.running[i] = True
        if ctx.simulator is not None:
            sl = ds.user_slice(u)
            folded = ctx.simulator.fold_in(ds.items[sl], ds.ratings[sl])
            self.user_bias[i], self.user_factors[i] = folded.bias, folded.factors

    # --------------------------------------------------------------- observation
    def observe(self, rows: np.ndarray) -> np.ndarray:
        """Observations of ``rows``: last ``frame_size`` embeddings, then their ratings.

        With ``history_size`` set, the sequence observation instead (:meth:`observe_sequence`).
        """
        if self.history_size is not None:
            return self.observe_sequence(rows)
        f = self.frame_size
        if len(rows) == 1:  # one slot: slices, not fancy indexing
            i, h = int(rows[0]), int(self.hlen[rows[0]])
            emb = self.ctx.embeddings[self.hist_items[i, h - f : h]]
            return np.concatenate([emb.ravel(), self.hist_ratings[i, h - f : h]])[None]
        idx = self.hlen[rows, None] - f + np.arange(f)
        r = rows[:, None]
        emb = self.ctx.embeddings[self.hist_items[r, idx]]
        d = emb.shape[2]
        obs = np.empty((len(rows), f * (d + 1)), dtype=np.float32)
        obs[:, : f * d] = emb.reshape(len(rows), f * d)
        obs[:, f * d :] = self.hist_ratings[r, idx]
        return obs

    def observe_sequence(self, rows: np.ndarray) -> np.ndarray:
        """Sequence observations of ``rows`` (``MovieRecSeq-v0``'s layout), right-aligned.

        With ``H = history_size`` and ``d`` the embedding dimension, a row is ``H * d``
        embedding values (``H`` slots, oldest first, flattened), then ``H`` scaled ratings,
        then ``H`` mask values (1 for a consumed item, 0 for padding). The most recent item
        is in the last slot; a history shorter than ``H`` leaves zeros (mask 0) in front.
        """
        size = self.history_size
        emb = self.ctx.embeddings
        d = emb.shape[1]
        n_rows = len(rows)
        if n_rows == 1:  # one slot: slices into a zeroed row, no fancy indexing
            out = np.zeros((1, size * (d + 2)), dtype=np.float32)
            i, h = int(rows[0]), int(self.hlen[rows[0]])
            m = min(h, size)  # real items; the first size - m slots are padding
            o = out[0]
            out_emb = o[(size - m) * d : size * d].reshape(m, d)  # a view into out
            np.take(emb, self.hist_items[i, h - m : h], axis=0, out=out_emb, mode="clip")
            o[size * d + size - m : size * (d + 1)] = self.hist_ratings[i, h - m : h]
            o[size * (d + 1) + size - m :] = 1.0
            return out
        idx = self.hlen[rows, None] - size + np.arange(size)  # (R, H); < 0 is padding
        real = idx >= 0
        padded = not real.all()
        if padded:
            np.maximum(idx, 0, out=idx)
        r = rows[:, None]
        out = np.empty((n_rows, size * (d + 2)), dtype=np.float32)
        out_emb = out[:, : size * d].reshape(n_rows, size, d)  # a view into out
        # take into the view: twice as fast as fancy indexing and a copy (the indices are
        # valid item indices, so "clip" only skips the bounds check)
        np.take(emb, self.hist_items[r, idx], axis=0, out=out_emb, mode="clip")
        out[:, size * d : size * (d + 1)] = self.hist_ratings[r, idx]
        out[:, size * (d + 1) :] = real
        if padded:
            out_emb[~real] = 0.0
            out[:, size * d : size * (d + 1)][~real] = 0.0
        return out

    # ---------------------------------------------------------------------- step
    def step(self, rows: np.ndarray, slates: np.ndarray) -> StepBatch:
        """Show ``slates[j]`` to slot ``rows[j]``: reward, transition, episode end."""
        if len(rows) == 1 and self.ctx.simulator is None:
            return self._step_one(int(rows[0]), slates)
        ctx, ds = self.ctx, self.ctx.dataset
        k, n_rows = self.slate_size, len(rows)
        pos = self.future_pos[rows[:, None], slates]
        hits = pos >= 0
        n_hits = hits.sum(axis=1)
        any_hit = n_hits > 0
        fs = self.fs[rows]
        next_items = self._next_items(rows, fs)
        hit_ratings = np.zeros(slates.shape, dtype=np.float32)
        rewards = np.empty(n_rows)
        rewards.fill(self.unrated_reward)
        contributions = np.full(slates.shape, self.unrated_reward)
        hr, hc = np.nonzero(hits)
        if len(hr):
            hit_flat = fs[hr] + pos[hr, hc]
            hit_ratings[hr, hc] = ds.ratings[hit_flat]
        if ctx.simulator is not None:
            sim = ctx.simulator
            pred = sim.mu + self.user_bias[rows, None] + sim.item_bias[slates]
            pred += (sim.item_factors[slates] * self.user_factors[rows][:, None, :]).sum(-1)
            contrib = ds.scale_ratings(np.clip(pred, *ds.rating_range)).astype(np.float64)
            rewards = (contrib * self.weights).sum(axis=1)
            contributions = contrib
        elif len(hr):
            # Rows without a hit score exactly unrated_reward; the others by a row-wise
            # multiply-and-sum (not BLAS), so a row's reward never depends on the batch.
            h = np.flatnonzero(any_hit)
            contributions[hr, hc] = ctx.scaled_ratings[hit_flat] * self._discounts(
                rows[hr], hit_flat
            )
            rewards[h] = (contributions[h] * self.weights).sum(axis=1)

        consumed = self._consume(rows, fs, pos, hr, hc, any_hit)
        if not self.allow_repeats:
            sr, sc = np.nonzero(~hits)
            slot, item = rows[sr], slates[sr, sc]
            self._block(slot, item)
            self.shown_at[slot, item] = (self.steps[slot] + 1) * k + sc
            self.n_blocked[rows] += k - n_hits
        for row in rows[ds.n_items - self.n_blocked[rows] < k].tolist():
            self._release(row)

        steps = self.steps[rows] + 1
        self.steps[rows] = steps
        misses = np.where(any_hit, 0, self.misses[rows] + 1)
        self.misses[rows] = misses
        n_left = self.n_left[rows]
        if self.patience is None:
            terminated = np.zeros(n_rows, dtype=bool)
        else:
            terminated = misses >= self.patience
        truncated = ~terminated & (n_left == 0)
        self.running[rows] = ~(terminated | truncated)
        return StepBatch(
            rows=rows,
            user_ids=ds.user_ids[self.user[rows]],
            slates=slates,
            rewards=rewards,
            terminated=terminated,
            truncated=truncated,
            hits=hits,
            hit_ratings=hit_ratings,
            contributions=contributions,
            next_items=next_items,
            consumed=consumed,
            n_left=n_left,
        )

    def _step_one(self, row: int, slates: np.ndarray) -> StepBatch:
        """:meth:`step` for one slot, in Python scalars (a single env's every step).

        The same rules as the batched path, written out for one row: with one row, per-call
        overheads of array operations dominate, and scalars are about 5x faster. The vector-env
        tests compare the two paths step by step.
        """
        ctx, ds = self.ctx, self.ctx.dataset
        items, scaled = ds.items, ctx.scaled_ratings
        k = self.slate_size
        slate = slates[0]
        fs, nxt = int(self.fs[row]), int(self.nxt[row])
        future_pos, remaining = self.future_pos[row], self.remaining[row]
        positions = future_pos[slate].tolist()
        hit_ranks = [j for j, p in enumerate(positions) if p >= 0]
        hits = np.zeros((1, k), dtype=bool)
        hit_ratings = np.zeros((1, k), dtype=np.float32)
        reward = self.unrated_reward
        contrib = np.full((1, k), self.unrated_reward)
        first = fs + nxt
        stop = int(ctx.group_end[first])
        if stop == first + 1:
            next_items = [(int(items[first]),)]
        else:
            window = [p for p in range(nxt, stop - fs) if remaining[p]]
            next_items = [tuple(items[fs + np.array(window)].tolist())]
        if hit_ranks:
            hits[0, hit_ranks] = True
            hit_flat = fs + np.array([positions[j] for j in hit_ranks])
            hit_ratings[0, hit_ranks] = ds.ratings[hit_flat]
            contrib[0, hit_ranks] = scaled[hit_flat] * self._discounts(
                np.full(len(hit_ranks), row), hit_flat
            )
            reward = (contrib * self.weights).sum(axis=1)[0]  # as the batched path sums
            consumed_pos = sorted(positions[j] for j in hit_ranks)
        else:
            consumed_pos = [nxt]
        # consume, in log order
        h = int(self.hlen[row])
        for p in consumed_pos:
            item = int(items[fs + p])
            remaining[p] = False
            future_pos[item] = -1
            self.hist_items[row, h] = item
            self.hist_ratings[row, h] = scaled[fs + p]
            h += 1
            self.consumed[row, item] = True
            if not self.blocked[row, item]:
                self._block(row, item)
                self.n_blocked[row] += 1
        consumed = tuple(int(items[fs + p]) for p in consumed_pos)
        self.hlen[row] = h
        n_left = int(self.n_left[row]) - len(consumed_pos)
        self.n_left[row] = n_left
        while n_left and not remaining[nxt]:
            nxt += 1
        self.nxt[row] = nxt
        steps = int(self.steps[row]) + 1
        if not self.allow_repeats:
            miss_ranks = [j for j, p in enumerate(positions) if p < 0]
            shown = slate[miss_ranks]
            self._block(row, shown)
            self.shown_at[row, shown] = steps * k + np.array(miss_ranks, dtype=np.int64)
            self.n_blocked[row] += len(miss_ranks)
        if ds.n_items - int(self.n_blocked[row]) < k:
            self._release(row)
        self.steps[row] = steps
        misses = 0 if hit_ranks else int(self.misses[row]) + 1
        self.misses[row] = misses
        terminated = self.patience is not None and misses >= self.patience
        truncated = not terminated and n_left == 0
        self.running[row] = not (terminated or truncated)
        return StepBatch(
            rows=np.array([row]),
            user_ids=ds.user_ids[self.user[row : row + 1]],
            slates=slates,
            rewards=np.array([reward], dtype=np.float64),
            terminated=np.array([terminated]),
            truncated=np.array([truncated]),
            hits=hits,
            hit_ratings=hit_ratings,
            contributions=contrib,
            next_items=next_items,
            consumed=[consumed],
            n_left=np.array([n_left]),
        )

    def _discounts(self, slots: np.ndarray, hit_flat: np.ndarray) -> np.ndarray | float:
        """``hit_discount ** n`` per hit: ``n`` remaining future items of earlier seconds."""
        if self.hit_discount == 1.0:
            return 1.0
        start = self.nxt[slots]
        stop = self.ctx.group_start[hit_flat] - self.fs[slots]  # the hit's second begins here
        ahead = [
            np.count_nonzero(self.remaining[s, a:b])
            for s, a, b in zip(slots.tolist(), start.tolist(), stop.tolist(), strict=True)
        ]
        return self.hit_discount ** np.asarray(ahead, dtype=np.float64)

    def _next_items(self, rows: np.ndarray, fs: np.ndarray) -> list[tuple[int, ...]]:
        """Per row, the remaining future items logged at the next timestamp."""
        items = self.ctx.dataset.items
        first = fs + self.nxt[rows]
        out = [(i,) for i in items[first].tolist()]
        stop = self.ctx.group_end[first]
        for j in np.flatnonzero(stop - first > 1).tolist():
            row, f = int(rows[j]), int(fs[j])
            window = np.arange(int(first[j]) - f, int(stop[j]) - f)
            out[j] = tuple(items[f + window[self.remaining[row, window]]].tolist())
        return out

    def _consume(
        self,
        rows: np.ndarray,
        fs: np.ndarray,
        pos: np.ndarray,
        hr: np.ndarray,
        hc: np.ndarray,
        any_hit: np.ndarray,
    ) -> list[tuple[int, ...]]:
        """Consume each row's hits, or its next logged item when it has none, in log order.

        All rows at once: the (row, position) pairs to consume are gathered, ordered by row
        then position, and appended to each row's history.
        """
        ds, scaled = self.ctx.dataset, self.ctx.scaled_ratings
        miss = np.flatnonzero(~any_hit)
        j = np.concatenate([miss, hr])
        p = np.concatenate([self.nxt[rows[miss]], pos[hr, hc]]).astype(np.int64)
        if len(hr):  # order by row, then log position
            order = np.lexsort((p, j))
            j, p = j[order], p[order]
        slot = rows[j]
        flat = fs[j] + p
        item = ds.items[flat]
        count = np.bincount(j, minlength=len(rows))
        starts = np.cumsum(count) - count
        at = self.hlen[slot] + (np.arange(len(j)) - starts[j])
        self.remaining[slot, p] = False
        self.future_pos[slot, item] = -1
        self.hist_items[slot, at] = item
        self.hist_ratings[slot, at] = scaled[flat]
        self.hlen[rows] += count
        self.n_left[rows] -= count
        self.consumed[slot, item] = True
        self.n_blocked[rows] += np.bincount(
            j, weights=~self.blocked[slot, item], minlength=len(rows)
        ).astype(np.int64)
        self._block(slot, item)
        # advance each row's next pointer past consumed positions
        nxt = self.nxt[rows]
        last = self.remaining.shape[1] - 1
        live = self.n_left[rows] > 0
        while True:
            behind = live & ~self.remaining[rows, np.minimum(nxt, last)]
            if not behind.any():
                break
            nxt += behind
        self.nxt[rows] = nxt
        items = item.tolist()
        if len(hr) == 0:  # one item per row, in row order
            return [(x,) for x in items]
        out, start = [], 0
        for c in count.tolist():
            out.append(tuple(items[start : start + c]))
            start += c
        return out

    def _block(self, rows: int | np.ndarray, items: int | np.ndarray) -> None:
        """Block ``items`` of ``rows`` (scalars or aligned arrays) in both forms."""
        self.blocked[rows, items] = True
        if self.penalty is not None:
            self.penalty[rows, items] = -np.inf

    def _unblock(self, rows: int | np.ndarray, items: int | np.ndarray | slice) -> None:
        """Allow ``items`` of ``rows`` again, in both forms (the padding stays blocked)."""
        self.blocked[rows, items] = False
        if self.penalty is not None:
            self.penalty[rows, items] = 0.0

    def _release(self, row: int) -> None:
        """Unblock the least recently shown items of ``row`` until a slate fits again."""
        k = self.slate_size
        n_items = self.ctx.dataset.n_items
        shown = np.flatnonzero(self.blocked[row] & ~self.consumed[row])
        need = k - (n_items - int(self.n_blocked[row]))
        oldest = shown[np.argsort(self.shown_at[row, shown], kind="stable")[:need]]
        self._unblock(row, oldest)
        self.shown_at[row, oldest] = 0
        self.n_blocked[row] -= len(oldest)

    # -------------------------------------------------------------------- views
    def history(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Consumed items of ``row`` (oldest first) and their scaled ratings (copies)."""
        h = int(self.hlen[row])
        return self.hist_items[row, :h].astype(np.int64), self.hist_ratings[row, :h].copy()

    def future(self, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Remaining future of ``row``: items, raw ratings, timestamps, in log order."""
        ds = self.ctx.dataset
        f = int(self.end[row] - self.fs[row])
        flat = self.fs[row] + np.flatnonzero(self.remaining[row, :f])
        return ds.items[flat].astype(np.int64), ds.ratings[flat], ds.timestamps[flat]


def step_info(batch: StepBatch, j: int, dataset: Dataset) -> dict:
    """The info dict of row ``j`` of a step, as a single environment returns it."""
    slate = batch.slates[j]
    nxt = batch.next_items[j]
    return {
        "user_id": int(batch.user_ids[j]),
        "slate": slate,
        "slate_movie_ids": dataset.item_ids[slate],
        "hits": batch.hits[j],
        "hit_ratings": batch.hit_ratings[j],
        "next_items": nxt,
        "next_movie_ids": tuple(dataset.item_ids[list(nxt)].tolist()),
        "consumed": batch.consumed[j],
        "n_future_left": int(batch.n_left[j]),
    }


def reset_info(core: ReplayCore, i: int) -> dict:
    """The info dict ``reset`` returns for slot ``i``."""
    return {
        "user_id": int(core.ctx.dataset.user_ids[core.user[i]]),
        "episode": int(core.episode[i]),
        "n_history": int(core.hlen[i]),
        "n_future": int(core.end[i] - core.fs[i]),
    }


def choose_episode(ctx: EnvContext, rng: np.random.Generator, options: dict | None) -> int:
    """The episode a reset starts: ``options["user_id"]``, ``options["episode"]`` or random.

    Raises:
        UnknownUserError: For a user without an episode in the split.
        ConfigError: For an episode index out of range.
    """
    options = options or {}
    n = len(ctx.episodes)
    if "user_id" in options:
        return ctx.episode_of_user(options["user_id"])
    if "episode" in options:
        episode = options["episode"]
        if not isinstance(episode, (int, np.integer)) or not 0 <= episode < n:
            raise ConfigError(
                f"options['episode']={episode!r} is out of range; the split has {n} episodes."
            )
        return int(episode)
    return int(rng.integers(n))


def check_slate(slate: np.ndarray, slate_size: int, blocked: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``slate`` holds ``slate_size`` distinct unblocked items."""
    n = len(blocked)
    if slate.shape != (slate_size,):
        raise ValueError(f"slate has shape {slate.shape}; expected ({slate_size},).")
    if slate.min() < 0 or slate.max() >= n or len(np.unique(slate)) != slate_size:
        raise ValueError(f"slate must hold {slate_size} distinct item indices in [0, {n}).")
    if blocked[slate].any():
        raise ValueError(
            f"slate items {slate[blocked[slate]].tolist()} are blocked (already consumed or "
            "shown); rank with env.blocked_mask() excluded."
        )
