"""Load MovieLens (any variant) or your own ratings file into a :class:`~recgym.data.Dataset`.

Where MovieLens data is found, in order:

1. the ``data_dir`` argument,
2. each folder in ``$RECGYM_DATA_DIR``,
3. the user cache (``$RECGYM_CACHE_DIR``, else ``$XDG_CACHE_HOME/recgym``, else the
   platform's user cache folder, see :mod:`recgym.data.paths`),
4. a download from GroupLens (or ``$RECGYM_MIRROR``), checksum-verified, into the user cache
   (never with ``download=False`` or ``$RECGYM_OFFLINE`` set).

In each folder a dataset may be unpacked (``ml-latest-small/ratings.csv``) or still zipped
(``ml-latest-small.zip``); ``data_dir`` may also be the dataset folder itself. The processed
form is cached in ``<cache>/processed/``, keyed by the source files' size and modification time,
the tie seed and the format version, so a second load is close to instant. A damaged cache file
(cut short by a full disk or a partial copy) is detected, reported with a warning and rebuilt
from the source data. ``recgym data cache`` lists and clears the cache
(:mod:`recgym.data.cache`).
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from recgym.data.catalog import GROUPLENS_URL, MovieLensSpec, get_spec
from recgym.data.dataset import Dataset, build_dataset, load_dataset, save_dataset
from recgym.data.fetch import download, fetch_text
from recgym.data.paths import cache_dir, data_dirs, ensure_writable_dir, offline, safe_name
from recgym.data.readers import (
    Source,
    raw_from_table,
    read_movies,
    read_ratings,
    read_user_movies,
    read_user_table,
)
from recgym.errors import DataFormatError, DatasetNotFoundError, DownloadError, RecgymWarning
from recgym.memo import Memo
from recgym.progress import tqdm_disable

_MEMO: Memo[Dataset] = Memo(4)  # the datasets loaded last


def find_movielens(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the folder or zip holding a MovieLens variant, or ``None`` if none is on disk.

    Args:
        name: Dataset name.
        data_dir: Folder searched first.

    Returns:
        The first match in the search order of this module, or ``None``.
    """
    spec = get_spec(name)
    for d in data_dirs(data_dir):
        for candidate in _candidates(spec, d):
            if candidate.suffix == ".zip" and candidate.is_file():
                return candidate
            if candidate.is_dir() and (candidate / spec.ratings_file).is_file():
                return candidate
    return None


def _candidates(spec: MovieLensSpec, d: Path) -> list[Path]:
    found = [d / spec.folder, d / spec.zip_name]
    if d.name == spec.folder:  # data_dir may be the dataset folder itself
        found.append(d)
    return found


def download_movielens(
    name: str,
    *,
    dest_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> Path:
    """Download a MovieLens zip (no-op if it is already in ``dest_dir``).

    Args:
        name: Dataset name.
        dest_dir: Folder to download into (created if needed); default the user cache.
        progress: Show a progress bar (``None``: only on a terminal).

    Returns:
        Path of the zip.

    Raises:
        DownloadError: On network failure, or when ``$RECGYM_OFFLINE`` forbids downloads.
        ChecksumError: On a checksum mismatch.
    """
    spec = get_spec(name)
    dest = Path(dest_dir).expanduser() if dest_dir is not None else cache_dir()
    dest = dest / spec.zip_name
    if dest.is_file():
        return dest
    if offline():
        raise DownloadError(f"RECGYM_OFFLINE is set, so {spec.zip_name} was not downloaded.")
    base = os.environ.get("RECGYM_MIRROR") or GROUPLENS_URL
    url = base.rstrip("/") + "/" + spec.zip_name
    md5 = None
    if spec.sha256 is None:  # GroupLens publishes an .md5 file beside these zips
        match = re.search(r"\b([0-9a-fA-F]{32})\b", fetch_text(url + ".md5"))
        if not match:
            raise DownloadError(f"{url}.md5 holds no MD5 digest; cannot verify {spec.zip_name}.")
        md5 = match.group(1)
    return download(url, dest, sha256=spec.sha256, md5=md5, progress=progress)


def load_movielens(
    name: str = "ml-latest-small",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    *,
    cache: bool = True,
    tie_seed: int = 0,
    progress: bool | None = None,
) -> Dataset:
    """Load a MovieLens variant, read in its native format, into a :class:`Dataset`.

    Args:
        name: ``"ml-latest-small"``, ``"ml-100k"``, ``"ml-1m"``, ``"ml-10m"``, ``"ml-20m"``,
            ``"ml-25m"`` or ``"ml-32m"``.
        data_dir: A folder holding the dataset (unpacked or zipped), or the dataset folder.
        download: Download from GroupLens when no copy is found.
        cache: Read and write the processed form in the cache folder.
        tie_seed: Seed that orders a user's ratings sharing one timestamp (see
            :mod:`recgym.data.dataset`).
        progress: Show progress bars (``None``: only on a terminal).

    Returns:
        The dataset.

    Raises:
        UnknownDatasetError: For an unknown name (the closest known one is suggested).
        DatasetNotFoundError: If no copy exists and it cannot be downloaded; the message lists
            where recgym looked.
        DataFormatError: If the files are malformed or the archive is corrupt.

    Examples:
        >>> ds = load_movielens("ml-latest-small")  # doctest: +SKIP
        >>> ds.n_ratings, ds.n_users, ds.n_items  # doctest: +SKIP
        (100836, 610, 9742)
    """
    spec = get_spec(name)
    path = find_movielens(name, data_dir)
    if path is None:
        looked = [str(p) for d in data_dirs(data_dir) for p in _candidates(spec, d)]
        how = (
            f"Download {spec.zip_name} from {GROUPLENS_URL} and put it (or its unpacked "
            f"folder) in one of those folders, or pass data_dir= (--data-dir on the command line), "
            "or set RECGYM_DATA_DIR."
        )
        if not download:
            raise DatasetNotFoundError(
                f"{name} not found; looked in {looked}. download=False, so nothing was "
                f"fetched. {how}",
                dataset=name,
                looked=looked,
                reason="downloads were turned off",
            )
        try:
            path = download_movielens(name, progress=progress)
        except DownloadError as exc:
            if exc.__class__ is not DownloadError:  # checksum mismatch: say so plainly
                raise
            reason = f"the download failed: {str(exc).rstrip('.')}"
            raise DatasetNotFoundError(
                f"{name} not found (looked in {looked}) and {reason}. {how}",
                dataset=name,
                looked=looked,
                reason=reason,
            ) from exc
    source = Source(path)
    names = [spec.ratings_file, spec.movies_file]
    fingerprint = _fingerprint(spec.name, source.stat_fingerprint(names), tie_seed)

    def build() -> Dataset:
        with _stages(f"Preparing {name}", spec.n_ratings, progress) as bar:
            raw = read_ratings(spec, source)
            bar.update()
            movies = read_movies(spec, source)
            bar.update()
            ds = build_dataset(
                raw,
                movies,
                name=name,
                rating_range=spec.rating_range,
                tie_seed=tie_seed,
                fingerprint=fingerprint,
            )
            bar.update()
        return ds

    return _cached(f"{name}-{fingerprint}", build, cache)


def load_ratings(
    path: str | os.PathLike[str],
    *,
    user_col: str = "userId",
    item_col: str = "movieId",
    rating_col: str = "rating",
    timestamp_col: str | None = "timestamp",
    movies_path: str | os.PathLike[str] | None = None,
    sep: str | None = None,
    rating_range: tuple[float, float] | None = None,
    name: str | None = None,
    tie_seed: int = 0,
    cache: bool = True,
) -> Dataset:
    """Load your own ratings file (CSV/TSV or Parquet) into a :class:`Dataset`.

    Ids must be integers. Duplicate (user, item) pairs keep their latest rating, with a
    warning.

    Args:
        path: The ratings file.
        user_col: Column holding user ids.
        item_col: Column holding item ids.
        rating_col: Column holding ratings.
        timestamp_col: Column holding unix timestamps; ``None`` if there is none, in which case
            each user's ratings are taken to be in file order.
        movies_path: Optional item file in the ``movies.csv`` layout (``movieId, title,
            genres``; the ids must match ``item_col``).
        sep: Field separator of a text file (default: tab for ``.tsv``, else comma).
        rating_range: The rating scale (default: the observed min and max).
        name: Dataset name (default: the file name).
        tie_seed: Seed that orders a user's ratings sharing one timestamp.
        cache: Read and write the processed form in the cache folder.

    Returns:
        The dataset.

    Raises:
        DataFormatError: On a missing file, missing or non-numeric columns, NaN ratings, an empty
            file, or ratings outside ``rating_range``.

    Examples:
        >>> import pandas as pd, tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> pd.DataFrame({"user": [7] * 3, "item": [1, 2, 3], "stars": [5, 3, 4]}).to_csv(
        ...     d / "mine.csv", index=False)
        >>> ds = load_ratings(d / "mine.csv", user_col="user", item_col="item",
        ...                   rating_col="stars", timestamp_col=None, cache=False)
        >>> ds.n_users, ds.n_items, ds.items.tolist()
        (1, 3, [0, 1, 2])
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"Ratings file {str(path)!r} does not exist.")
    columns = {"user": user_col, "item": item_col, "rating": rating_col}
    columns["timestamp"] = timestamp_col
    movies_file = Path(movies_path) if movies_path is not None else None
    if movies_file is not None and not movies_file.is_file():
        raise DataFormatError(f"Movies file {str(movies_file)!r} does not exist.")
    stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in [path]]
    if movies_file is not None:
        stats.append((str(movies_file.resolve()), movies_file.stat().st_size, 0))
    key_parts = (stats, sorted((k, str(v)) for k, v in columns.items()), sep, rating_range)
    fingerprint = _fingerprint(path.name, key_parts, tie_seed)
    ds_name = name or path.stem

    def build() -> Dataset:
        raw = raw_from_table(read_user_table(path, columns=columns, sep=sep))
        movies = read_user_movies(movies_file) if movies_file is not None else None
        return build_dataset(
            raw,
            movies,
            name=ds_name,
            rating_range=rating_range,
            tie_seed=tie_seed,
            fingerprint=fingerprint,
        )

    return _cached(f"{safe_name(ds_name)}-{fingerprint}", build, cache)


def _fingerprint(name: str, parts: object, tie_seed: int) -> str:
    return hashlib.sha1(f"{name}|{parts!r}|{tie_seed}".encode()).hexdigest()[:16]


def _cached(key: str, build: Callable[[], Dataset], cache: bool) -> Dataset:
    """Return the dataset for ``key`` from memory, the disk cache, or ``build()``."""
    return _MEMO.get_or_build(key, lambda: _read_or_build(key, build, cache))


def _read_or_build(key: str, build: Callable[[], Dataset], cache: bool) -> Dataset:
    """The dataset for ``key`` from the disk cache, else ``build()`` (and save it there)."""
    file = cache_dir() / "processed" / f"{key}.npz"
    if cache and file.is_file():
        try:
            return load_dataset(file)
        except ValueError as exc:
            warnings.warn(
                f"The processed cache {file} is corrupt ({exc}); rebuilding it from the "
                "source data.",
                RecgymWarning,
                stacklevel=6,  # the caller of load_movielens / load_ratings
            )
    if cache:
        ensure_writable_dir(file.parent, "cache")
    ds = build()
    if cache:
        save_dataset(ds, file)
    return ds


def clear_memory_cache() -> None:
    """Forget datasets held in memory (the disk cache is kept)."""
    _MEMO.clear()


def _stages(desc: str, n_ratings: int, progress: bool | None) -> tqdm:
    """A 3-step progress bar (read ratings, read movies, index).

    With ``progress=None`` it is shown for large datasets only (a million ratings or more),
    and only on a terminal.
    """
    quick = progress is None and n_ratings < 1_000_000
    disable = True if quick else tqdm_disable(progress)
    return tqdm(total=3, desc=desc, unit="step", disable=disable, leave=False)
