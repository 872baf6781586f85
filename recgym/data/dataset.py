"""The canonical in-memory form of a ratings dataset, and how raw ratings become one.

A :class:`Dataset` stores every user's interactions sorted by time in CSR style::

    items[indptr[u]:indptr[u + 1]]       # item indices of user u, oldest first (int32)
    ratings[indptr[u]:indptr[u + 1]]     # their ratings (float32)
    timestamps[indptr[u]:indptr[u + 1]]  # unix seconds (int64)

Users and items are re-indexed ``0..n-1`` in ascending order of their original ids
(``user_ids[u]``, ``item_ids[i]`` map back). The catalogue is every movie listed in the movies
file plus every rated one.

**Ties in time.** Many ratings share a second with another rating of the same user (23% in
ml-latest-small, 76% in ml-100k). Their order within the second is not known, and the files list
them by movieId, which no user produced. recgym orders such ties by a seeded hash of
``(userId, movieId)`` (a shuffle that does not depend on file order, on movieId order, or on
other users' data), so the order is reproducible from ``tie_seed`` and carries no leak.

**Duplicates.** When the same (user, movie) pair is rated more than once, only the latest rating
is kept (the later row in the file if both share a timestamp), with a :class:`RecgymWarning`
giving the count. Official MovieLens files have none.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recgym.data.readers import RawRatings
from recgym.errors import DataFormatError, RecgymWarning, UnknownUserError
from recgym.files import atomic_write

FORMAT_VERSION = 1
_CHUNK_ROWS = 1 << 17


class ItemText(NamedTuple):
    """An item as text (:meth:`Dataset.item_text`)."""

    title: str
    year: str
    genres: str


@dataclass(eq=False, repr=False)
class Dataset:
    """Ratings of users over a catalogue of items, indexed and sorted by time (CSR style).

    Attributes:
        name: Dataset name (``"ml-latest-small"``, a file name, ...).
        user_ids: Original id of each user index, ascending (int64, ``(n_users,)``).
        item_ids: Original id (movieId) of each item index, ascending (int64, ``(n_items,)``).
        indptr: Offsets of each user's interactions (int64, ``(n_users + 1,)``).
        items: Item index of each interaction, per user oldest first (int32).
        ratings: Rating of each interaction (float32).
        timestamps: Unix time of each interaction (int64).
        item_table: One row per item index: ``movieId``, ``title``, ``year`` (nullable),
            ``genres`` (``|``-separated, ``""`` if none).
        rating_range: Lowest and highest possible rating, used to scale ratings to [-1, 1].
        fingerprint: Identifies the source data and tie seed; keys downstream caches.
        tie_seed: Seed of the tie-breaking hash.
    """

    name: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    indptr: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    item_table: pd.DataFrame
    rating_range: tuple[float, float]
    fingerprint: str
    tie_seed: int = 0
    n_duplicates_dropped: int = field(default=0)

    def __post_init__(self) -> None:
        """Freeze the arrays: datasets are shared between environments."""
        for arr in (
            self.user_ids,
            self.item_ids,
            self.indptr,
            self.items,
            self.ratings,
            self.timestamps,
        ):
            arr.flags.writeable = False

    @cached_property
    def content_digest(self) -> str:
        """A digest of the interactions themselves, whatever files they were read from.

        SHA-1 of the users' and items' original ids, the per-user offsets, and every
        interaction's item, rating and time in order, with the rating scale: equal for equal
        data even when :attr:`fingerprint` (which follows the source files' sizes and
        modification times, so that a changed file is read again) differs, as after copying
        or downloading the same files again. Caches of models fitted on the data (SASRec's item
        table, minutes of fitting) are keyed by it. Computed once per dataset, on first use
        (about half a second per 20 million ratings on a 2-core CPU).
        """
        digest = hashlib.sha1(usedforsecurity=False)
        for arr in (self.user_ids, self.item_ids, self.indptr, self.items, self.ratings,
                    self.timestamps):  # fmt: skip
            digest.update(np.ascontiguousarray(arr).data)  # no copy
        digest.update(repr(tuple(float(r) for r in self.rating_range)).encode())
        return digest.hexdigest()[:16]

    # ----------------------------------------------------------------- sizes
    @property
    def n_users(self) -> int:
        """Number of users."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of items in the catalogue (listed or rated)."""
        return len(self.item_ids)

    @property
    def n_ratings(self) -> int:
        """Number of ratings."""
        return len(self.items)

    @cached_property
    def user_lengths(self) -> np.ndarray:
        """Number of interactions of each user (int64, ``(n_users,)``)."""
        return np.diff(self.indptr)

    @cached_property
    def interaction_users(self) -> np.ndarray:
        """User index of every interaction (int32, ``(n_ratings,)``)."""
        return np.repeat(np.arange(self.n_users, dtype=np.int32), self.user_lengths)

    # ------------------------------------------------------------ id mapping
    def user_index(self, user_id: int) -> int:
        """Return the index of an original user id.

        Raises:
            UnknownUserError: If the dataset has no such user.
        """
        pos = int(np.searchsorted(self.user_ids, user_id))
        if pos >= self.n_users or self.user_ids[pos] != user_id:
            raise UnknownUserError(
                f"User {user_id!r} is not in {self.name} (user ids run from "
                f"{self.user_ids[0]} to {self.user_ids[-1]}, {self.n_users} users)."
            )
        return pos

    def item_index(self, movie_ids: int | np.ndarray) -> np.ndarray | int:
        """Return the item indices of original movie ids.

        Args:
            movie_ids: One id or an array of ids.

        Returns:
            An int (for one id) or an int64 array.

        Raises:
            KeyError: If an id is not in the catalogue.
        """
        ids = np.asarray(movie_ids, dtype=np.int64)
        pos = np.searchsorted(self.item_ids, ids)
        bad = (pos >= self.n_items) | (self.item_ids[np.minimum(pos, self.n_items - 1)] != ids)
        if np.any(bad):
            raise KeyError(f"movieId {ids[bad].ravel()[:5].tolist()} not in {self.name}.")
        return int(pos) if np.ndim(movie_ids) == 0 else pos

    def user_slice(self, u: int) -> slice:
        """The slice of user index ``u``'s interactions in the flat arrays."""
        return slice(int(self.indptr[u]), int(self.indptr[u + 1]))

    # --------------------------------------------------------------- ratings
    def scale_ratings(self, ratings: np.ndarray | float) -> np.ndarray:
        """Map ratings linearly from :attr:`rating_range` to [-1, 1] (float32).

        Examples:
            >>> ds = Dataset.from_frame(pd.DataFrame(
            ...     {"userId": [1, 1], "movieId": [1, 2], "rating": [0.5, 5.0],
            ...      "timestamp": [0, 1]}), rating_range=(0.5, 5.0))
            >>> ds.scale_ratings(np.array([0.5, 2.75, 5.0])).tolist()
            [-1.0, 0.0, 1.0]
        """
        lo, hi = self.rating_range
        mid, half = (lo + hi) / 2.0, (hi - lo) / 2.0
        if half == 0:
            return np.ones_like(np.asarray(ratings, dtype=np.float32))
        return ((np.asarray(ratings, dtype=np.float32) - mid) / half).astype(np.float32)

    def unscale_ratings(self, scaled: np.ndarray | float) -> np.ndarray:
        """Map ratings from [-1, 1] back to :attr:`rating_range` (float64), as people rate.

        The inverse of :meth:`scale_ratings`: the environment's observations hold scaled
        ratings; tables and pictures show them on the dataset's own scale.

        Examples:
            >>> ds = Dataset.from_frame(pd.DataFrame(
            ...     {"userId": [1, 1], "movieId": [1, 2], "rating": [0.5, 5.0],
            ...      "timestamp": [0, 1]}), rating_range=(0.5, 5.0))
            >>> ds.unscale_ratings(np.array([-1.0, 0.0, 1.0])).tolist()
            [0.5, 2.75, 5.0]
        """
        lo, hi = self.rating_range
        return (np.asarray(scaled, dtype=np.float64) + 1) / 2 * (hi - lo) + lo

    # ------------------------------------------------------------------ items
    def item_text(self, item: int) -> ItemText:
        """Title, year and genres of item index ``item``, as text to show (tables, pictures).

        Args:
            item: Item index (not the movieId).

        Returns:
            ``(title, year, genres)``: the year is ``""`` when the title gives none, the genres
            are joined by ``", "``.

        Examples:
            >>> ds = Dataset.from_frame(
            ...     pd.DataFrame({"userId": [1, 1], "movieId": [10, 20], "rating": [4.0, 3.0],
            ...                   "timestamp": [0, 1]}),
            ...     movies=pd.DataFrame({"movieId": [10, 20],
            ...                          "title": ["Heat (1995)", "Untitled"],
            ...                          "genres": ["Action|Crime", "Drama"]}))
            >>> ds.item_text(0)
            ItemText(title='Heat', year='1995', genres='Action, Crime')
            >>> ds.item_text(1).year
            ''
        """
        row = self.item_table.iloc[int(item)]
        year = "" if pd.isna(row["year"]) else str(int(row["year"]))
        return ItemText(str(row["title"]), year, str(row["genres"]).replace("|", ", "))

    @cached_property
    def genres(self) -> list[str]:
        """Sorted list of the genre names used in the item table."""
        names: set[str] = set()
        for g in self.item_table["genres"].unique():
            names.update(x for x in str(g).split("|") if x)
        return sorted(names)

    @cached_property
    def genre_matrix(self) -> sp.csr_matrix:
        """Multi-hot genre matrix (``n_items x len(genres)``, float32 CSR)."""
        col = {g: j for j, g in enumerate(self.genres)}
        rows, cols = [], []
        for i, g in enumerate(self.item_table["genres"].tolist()):
            for x in str(g).split("|"):
                if x:
                    rows.append(i)
                    cols.append(col[x])
        data = np.ones(len(rows), dtype=np.float32)
        return sp.csr_matrix((data, (rows, cols)), shape=(self.n_items, len(self.genres)))

    def item_popularity(self, interaction_mask: np.ndarray | None = None) -> np.ndarray:
        """Number of ratings of each item (int64), optionally over a subset of interactions."""
        items = self.items if interaction_mask is None else self.items[interaction_mask]
        return np.bincount(items, minlength=self.n_items)

    # ---------------------------------------------------------------- export
    def to_frame(self) -> pd.DataFrame:
        """All ratings as a frame (``userId, movieId, rating, timestamp``), users' time order."""
        return pd.DataFrame(
            {
                "userId": self.user_ids[self.interaction_users],
                "movieId": self.item_ids[self.items],
                "rating": self.ratings,
                "timestamp": self.timestamps,
            }
        )

    def describe(self) -> dict[str, object]:
        """Summary numbers: sizes, density, interactions per user, rating range, time span."""
        lengths = self.user_lengths
        return {
            "name": self.name,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_rated_items": int(np.count_nonzero(self.item_popularity())),
            "n_ratings": self.n_ratings,
            "density": self.n_ratings / max(1, self.n_users * self.n_items),
            "ratings_per_user_min": int(lengths.min()) if len(lengths) else 0,
            "ratings_per_user_median": float(np.median(lengths)) if len(lengths) else 0.0,
            "ratings_per_user_max": int(lengths.max()) if len(lengths) else 0,
            "rating_range": self.rating_range,
            "mean_rating": float(self.ratings.mean()) if self.n_ratings else float("nan"),
            "first_timestamp": int(self.timestamps.min()) if self.n_ratings else None,
            "last_timestamp": int(self.timestamps.max()) if self.n_ratings else None,
            "n_genres": len(self.genres),
        }

    def __repr__(self) -> str:
        """Short description with the sizes."""
        return (
            f"Dataset({self.name!r}, n_users={self.n_users}, n_items={self.n_items}, "
            f"n_ratings={self.n_ratings})"
        )

    # ---------------------------------------------------------- construction
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        movies: pd.DataFrame | None = None,
        *,
        name: str = "frame",
        rating_range: tuple[float, float] | None = None,
        tie_seed: int = 0,
    ) -> Dataset:
        """Build a dataset from a frame with ``userId, movieId, rating, timestamp`` columns.

        Meant for small hand-built datasets (tests, examples); files go through
        :func:`recgym.data.load_ratings`.

        Args:
            frame: The ratings.
            movies: Optional ``movieId, title, genres`` frame (titles may carry the year).
            name: Dataset name.
            rating_range: Rating scale; defaults to the observed min and max.
            tie_seed: Seed of the tie-breaking hash.

        Returns:
            The dataset.
        """
        from recgym.data.readers import finish_movies

        missing = [c for c in ("userId", "movieId", "rating", "timestamp") if c not in frame]
        if missing:
            raise DataFormatError(f"frame lacks column(s) {missing}; it has {list(frame)}.")
        raw = RawRatings(
            frame["userId"].to_numpy(np.int64),
            frame["movieId"].to_numpy(np.int64),
            frame["rating"].to_numpy(np.float32),
            frame["timestamp"].to_numpy(np.int64),
        )
        content = hashlib.sha1(usedforsecurity=False)
        for arr in (raw.user, raw.item, raw.rating, raw.timestamp):
            content.update(np.ascontiguousarray(arr).tobytes())
        if movies is not None:
            movies = finish_movies(movies)
            content.update(pd.util.hash_pandas_object(movies).to_numpy().tobytes())
        return build_dataset(
            raw,
            movies,
            name=name,
            rating_range=rating_range,
            tie_seed=tie_seed,
            fingerprint=content.hexdigest()[:16],
        )


# =========================================================================== building
def tie_hash(user_ids: np.ndarray, item_ids: np.ndarray, seed: int) -> np.ndarray:
    """Seeded 32-bit hash of ``(user id, item id)`` pairs, used to order ties in time.

    ``x = user * K1 + item * K2 + seed`` (mod 2^32) followed by MurmurHash3's finaliser. For a
    fixed user both steps are bijective in ``item`` (odd multiplier, invertible mixer), so two
    distinct items of one user never share a hash: the order of tied ratings is a pure function
    of the seed and the pairs, unrelated to file order or movieId order.

    Args:
        user_ids: Original user ids.
        item_ids: Original item ids.
        seed: Tie seed.

    Returns:
        uint32 hashes.

    Examples:
        >>> h = tie_hash(np.array([1, 1, 1]), np.array([10, 11, 12]), seed=0)
        >>> len(set(h.tolist()))
        3
    """
    x = user_ids.astype(np.uint32) * np.uint32(0x9E3779B1)
    x += item_ids.astype(np.uint32) * np.uint32(0x85EBCA77)
    x += np.uint32((seed * 0x27D4EB2F + 0x165667B1) & 0xFFFFFFFF)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    x ^= x >> np.uint32(16)
    return x


def _group_users(user: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Factorise user ids and group rows by user.

    Returns:
        ``(user_ids, indptr, row_order)``: sorted unique ids, CSR offsets, and the row
        permutation that groups rows by user index (``None`` when rows already are).
    """
    n = len(user)
    starts = np.flatnonzero(user[1:] != user[:-1]) + 1
    starts = np.concatenate([[0], starts])
    run_ids = user[starts]
    if len(np.unique(run_ids)) == len(run_ids):  # each user's rows are contiguous
        lengths = np.diff(np.append(starts, n))
        order = np.argsort(run_ids, kind="stable")
        indptr = np.concatenate([[0], np.cumsum(lengths[order])]).astype(np.int64)
        if np.all(order[:-1] < order[1:]):
            return run_ids[order], indptr, None
        # Runs out of id order: concatenate them in id order.
        row_order = np.repeat(starts[order] - indptr[:-1], lengths[order]) + np.arange(n)
        return run_ids[order], indptr, row_order
    codes, uniques = pd.factorize(user, sort=True)
    row_order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(uniques))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return np.asarray(uniques, dtype=np.int64), indptr, row_order


def _chunks(indptr: np.ndarray, rows: int = _CHUNK_ROWS) -> list[tuple[int, int]]:
    """Split the flat arrays into ``[a, b)`` ranges of about ``rows`` rows on user boundaries."""
    n = int(indptr[-1])
    marks = np.searchsorted(indptr, np.arange(0, n, rows), side="left")
    bounds = np.unique(np.concatenate([[0], indptr[marks], [n]]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def _local_users(indptr: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))


def _duplicates_in_file_order(indptr: np.ndarray, item: np.ndarray) -> bool | None:
    """Check for duplicate pairs in O(n) when each user's rows are sorted by item id.

    MovieLens files list each user's ratings by movieId, so duplicates would be neighbours.

    Returns:
        ``True``/``False`` when the rows are sorted that way, ``None`` when they are not (the
        caller then checks by sorting).
    """
    step = np.diff(item)
    step[indptr[1:-1] - 1] = 1  # user boundaries do not count
    if np.all(step > 0):
        return False
    if np.all(step >= 0):
        return True
    return None


def _sort_chunks(
    indptr: np.ndarray,
    raw: RawRatings,
    codes_of: Callable[[np.ndarray], np.ndarray],
    seed: int,
    check_duplicates: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Order each user's rows by (timestamp, tie hash) and encode items, chunk by chunk.

    Rows must already be grouped by user (``indptr``). Each chunk of about 131k rows, aligned
    to user boundaries, is sorted on one packed int64 key (local user, timestamp, top bits of the
    tie hash). Working chunk by chunk keeps the arrays in cache, which is several times faster
    than one global sort, and chunks run on a thread pool (NumPy's sorts release the GIL). Rows
    whose packed keys collide are then ordered by the full hash. With ``check_duplicates`` each
    chunk is also checked for duplicate (user, item) pairs.

    Returns:
        ``(items, ratings, timestamps, has_duplicates)`` in (user, time, tie hash) order.
    """
    n = len(raw.user)
    items = np.empty(n, dtype=np.int32)
    ratings = np.empty(n, dtype=np.float32)
    timestamps = np.empty(n, dtype=np.int64)
    t0 = int(raw.timestamp.min())
    ts_bits = max(1, int(raw.timestamp.max()) - t0).bit_length()
    lengths = np.diff(indptr)

    def sort_chunk(bounds: tuple[int, int]) -> bool:
        a, b = bounds
        first_user = int(np.searchsorted(indptr, a, side="right")) - 1
        last_user = int(np.searchsorted(indptr, b, side="left"))
        lu = np.repeat(
            np.arange(last_user - first_user, dtype=np.int64), lengths[first_user:last_user]
        )
        lu_bits = max(1, int(lu[-1]).bit_length())
        t = raw.timestamp[a:b] - t0
        h = tie_hash(raw.user[a:b], raw.item[a:b], seed)
        hash_bits = min(32, 63 - lu_bits - ts_bits)
        if hash_bits >= 8:
            key = (lu << (ts_bits + hash_bits)) | (t << hash_bits)
            key |= (h >> np.uint32(32 - hash_bits)).astype(np.int64)
            local = np.argsort(key, kind="stable")
            if hash_bits < 32:
                sk = key[local]
                clash = np.flatnonzero(sk[1:] == sk[:-1])
                if len(clash):
                    local = _resolve_clashes(local, sk, h, clash)
        else:  # very wide timestamps: fall back to a three-key sort
            local = np.lexsort((np.arange(b - a), h, t, lu))
        codes = codes_of(raw.item[a:b])
        dup = False
        if check_duplicates:
            pairs = np.sort((lu << 32) | codes)
            dup = bool(np.any(pairs[1:] == pairs[:-1]))
        items[a:b] = codes[local]
        ratings[a:b] = raw.rating[a:b][local]
        timestamps[a:b] = raw.timestamp[a:b][local]
        return dup

    chunks = _chunks(indptr)
    if len(chunks) > 2 and (os.cpu_count() or 1) > 1:
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            dups = list(pool.map(sort_chunk, chunks))
    else:
        dups = [sort_chunk(c) for c in chunks]
    return items, ratings, timestamps, any(dups)


def _resolve_clashes(
    local: np.ndarray, sorted_key: np.ndarray, h: np.ndarray, clash: np.ndarray
) -> np.ndarray:
    """Reorder runs of equal packed keys by the full hash (stable for identical hashes)."""
    local = local.copy()
    member = np.zeros(len(sorted_key), dtype=bool)
    member[clash] = True
    member[clash + 1] = True
    rows = np.flatnonzero(member)
    group = np.cumsum(np.concatenate([[True], sorted_key[rows[1:]] != sorted_key[rows[:-1]]]))
    sub = np.lexsort((np.arange(len(rows)), h[local[rows]], group))
    local[rows] = local[rows][sub]
    return local


def build_dataset(
    raw: RawRatings,
    movies: pd.DataFrame | None,
    *,
    name: str,
    rating_range: tuple[float, float] | None = None,
    tie_seed: int = 0,
    fingerprint: str = "",
) -> Dataset:
    """Index, sort and validate raw ratings into a :class:`Dataset`.

    Args:
        raw: Ratings in file order.
        movies: Item table from the movies file (``movieId, title, year, genres``), or ``None``.
        name: Dataset name.
        rating_range: The rating scale. Ratings outside it are an error. ``None`` uses the
            observed minimum and maximum.
        tie_seed: Seed of the hash that orders ratings sharing a timestamp.
        fingerprint: Identifier of the source files (the tie seed is mixed in).

    Returns:
        The dataset.

    Raises:
        DataFormatError: On no ratings, NaN ratings or ratings outside ``rating_range``.
    """
    n = len(raw.user)
    if n == 0:
        raise DataFormatError(f"{name} holds no ratings.")
    bad = ~np.isfinite(raw.rating)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFormatError(
            f"{name}: {int(bad.sum())} rating(s) are NaN or infinite (first at data row "
            f"{row + 1}, user {raw.user[row]}, movie {raw.item[row]}). Drop those rows."
        )
    lo, hi = float(raw.rating.min()), float(raw.rating.max())
    if rating_range is None:
        rating_range = (lo, hi)
    elif lo < rating_range[0] or hi > rating_range[1]:
        value = lo if lo < rating_range[0] else hi
        raise DataFormatError(
            f"{name}: rating {value} is outside the scale {rating_range}. Pass the right "
            "rating_range, or fix the file."
        )

    user_ids, indptr, row_order = _group_users(raw.user)
    if row_order is not None:
        raw = RawRatings(*(a[row_order] for a in (raw.user, raw.item, raw.rating, raw.timestamp)))

    listed = movies["movieId"].to_numpy(np.int64) if movies is not None else np.empty(0, np.int64)
    item_ids = np.union1d(listed, _unique_ids(raw.item))
    codes_of = _encoder(item_ids)

    known = _duplicates_in_file_order(indptr, raw.item)
    items, ratings, timestamps, has_dup = _sort_chunks(
        indptr, raw, codes_of, tie_seed, check_duplicates=known is None
    )
    has_dup = has_dup or bool(known)
    del raw
    n_dup = 0
    if has_dup:
        items, ratings, timestamps, indptr, n_dup = _drop_duplicates(
            items, ratings, timestamps, indptr
        )
    if n_dup:
        warnings.warn(
            f"{name}: {n_dup} duplicate (user, movie) rating(s) dropped; the latest rating of "
            "each pair is kept.",
            RecgymWarning,
            stacklevel=3,
        )
    table = _item_table(item_ids, movies)
    fp = hashlib.sha1(f"{fingerprint}|{tie_seed}|v{FORMAT_VERSION}".encode()).hexdigest()[:16]
    return Dataset(
        name=name,
        user_ids=user_ids,
        item_ids=item_ids,
        indptr=indptr,
        items=items,
        ratings=ratings,
        timestamps=timestamps,
        item_table=table,
        rating_range=(float(rating_range[0]), float(rating_range[1])),
        fingerprint=fp,
        tie_seed=tie_seed,
        n_duplicates_dropped=n_dup,
    )


def _unique_ids(ids: np.ndarray) -> np.ndarray:
    if len(ids) and ids.min() >= 0 and ids.max() < (1 << 26):
        return np.flatnonzero(np.bincount(ids)).astype(np.int64)
    return np.asarray(pd.unique(ids), dtype=np.int64)


def _encoder(sorted_ids: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Return a function mapping ids to their positions in ``sorted_ids`` (all present), int32.

    A lookup table when ids are small non-negative integers (MovieLens), else a binary search.
    """
    if len(sorted_ids) and sorted_ids[0] >= 0 and sorted_ids[-1] < (1 << 26):
        lut = np.full(int(sorted_ids[-1]) + 1, -1, dtype=np.int32)
        lut[sorted_ids] = np.arange(len(sorted_ids), dtype=np.int32)
        return lut.__getitem__
    return lambda ids: np.searchsorted(sorted_ids, ids).astype(np.int32)


def _drop_duplicates(
    items: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray, indptr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Keep only the latest rating of each (user, item) pair; rows are in (user, time) order.

    Detection sorts each chunk's packed (local user, item) keys by value (fast SIMD sort); only a
    chunk that holds duplicates pays for an argsort. Nothing is copied when there are none.
    """
    n = len(items)
    users = _local_users(indptr)
    keep: np.ndarray | None = None
    for a, b in _chunks(indptr, _CHUNK_ROWS * 4):
        key = ((users[a:b] - users[a]) << 32) | items[a:b].astype(np.int64)
        sk = np.sort(key)
        if not np.any(sk[1:] == sk[:-1]):
            continue
        if keep is None:
            keep = np.ones(n, dtype=bool)
        order = np.argsort(key, kind="stable")  # stable: each pair's rows stay in time order
        sk = key[order]
        dup = np.flatnonzero(sk[1:] == sk[:-1])
        keep[a + order[dup]] = False  # every occurrence but the latest
    if keep is None:
        return items, ratings, timestamps, indptr, 0
    counts = np.add.reduceat(keep.astype(np.int64), indptr[:-1])
    counts = np.where(np.diff(indptr) > 0, counts, 0)
    new_indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return items[keep], ratings[keep], timestamps[keep], new_indptr, int(n - keep.sum())


def _item_table(item_ids: np.ndarray, movies: pd.DataFrame | None) -> pd.DataFrame:
    base = pd.DataFrame({"movieId": item_ids})
    if movies is None:
        movies = pd.DataFrame(columns=["movieId", "title", "year", "genres"])
    table = base.merge(movies, on="movieId", how="left")
    unlisted = table["title"].isna()
    table["title"] = table["title"].astype(object)
    table.loc[unlisted, "title"] = [f"Item {i}" for i in table.loc[unlisted, "movieId"]]
    table["title"] = table["title"].astype(str)
    table["year"] = pd.array(table["year"], dtype="Int64")
    table["genres"] = table["genres"].fillna("").astype(str)
    return table[["movieId", "title", "year", "genres"]]


# ============================================================================ cache
def save_dataset(ds: Dataset, path: Path) -> None:
    """Write a dataset to an ``.npz`` file atomically (no pickles inside).

    Args:
        ds: The dataset.
        path: Destination file.
    """
    table = ds.item_table
    meta = {
        "version": FORMAT_VERSION,
        "name": ds.name,
        "rating_range": list(ds.rating_range),
        "fingerprint": ds.fingerprint,
        "tie_seed": ds.tie_seed,
        "n_duplicates_dropped": ds.n_duplicates_dropped,
    }
    arrays = {
        "user_ids": ds.user_ids,
        "item_ids": ds.item_ids,
        "indptr": ds.indptr,
        "items": ds.items,
        "ratings": ds.ratings,
        "timestamps": ds.timestamps,
        "titles": np.frombuffer("\n".join(table["title"]).encode(), dtype=np.uint8),
        "genres": np.frombuffer("\n".join(table["genres"]).encode(), dtype=np.uint8),
        "years": table["year"].fillna(-1).to_numpy(np.int32),
        "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
    }
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)


def load_dataset(path: Path) -> Dataset:
    """Read a dataset written by :func:`save_dataset`.

    Raises:
        ValueError: If the file is corrupt, incomplete (cut short by a full disk or a partial
            copy) or of another format version.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            if meta.get("version") != FORMAT_VERSION:
                raise ValueError(f"cache format {meta.get('version')} != {FORMAT_VERSION}")
            arrays = {
                k: z[k]
                for k in ("user_ids", "item_ids", "indptr", "items", "ratings", "timestamps")
            }
            titles = z["titles"].tobytes().decode().split("\n")
            genres = z["genres"].tobytes().decode().split("\n")
            years = z["years"]
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"unreadable dataset cache {path}: {exc}") from exc
    n_items = len(arrays["item_ids"])
    if (
        len(titles) != n_items
        or len(years) != n_items
        or arrays["indptr"][-1] != len(arrays["items"])
    ):
        raise ValueError(f"inconsistent dataset cache {path}")
    table = pd.DataFrame(
        {
            "movieId": arrays["item_ids"],
            "title": titles,
            "year": pd.array(np.where(years < 0, 0, years), dtype="Int64"),
            "genres": genres,
        }
    )
    table.loc[years < 0, "year"] = pd.NA
    return Dataset(
        name=meta["name"],
        item_table=table,
        rating_range=tuple(meta["rating_range"]),
        fingerprint=meta["fingerprint"],
        tie_seed=meta["tie_seed"],
        n_duplicates_dropped=meta["n_duplicates_dropped"],
        **arrays,
    )
