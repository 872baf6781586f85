"""What the cache folder holds, and how to clear it (``recgym data cache``).

The cache folder (:func:`recgym.data.paths.cache_dir`) holds three kinds of files, each named
after its dataset:

* ``download``: MovieLens zips fetched from GroupLens (``ml-20m.zip``),
* ``processed``: datasets in recgym's ready-to-load form (``processed/ml-20m-<key>.npz``; 323 MB
  for ml-20m),
* ``embeddings``: fitted item embeddings (``embeddings/ml-20m-svd-32-<key>.npy``),

plus ``partial`` files: the temporary files of a write that a killed process left behind.
Everything in it can be deleted at any time; it is rebuilt (or downloaded again) when needed.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from recgym.data.catalog import MOVIELENS
from recgym.data.paths import cache_dir

KINDS = ("download", "processed", "embeddings", "partial")
UNNAMED = "(unnamed)"

_PROCESSED = re.compile(r"^(?P<name>.+)-[0-9a-f]{16}\.npz$")
_EMBEDDING = re.compile(r"^(?P<name>.+)-[a-z_]+-\d+-[0-9a-f]{16}\.npy$")
_PARTIAL = re.compile(r"^\.(?P<file>.+)\.[^.]+\.part$")  # atomic_write's temporary files
_ZIPS = {spec.zip_name: name for name, spec in MOVIELENS.items()}


@dataclass(frozen=True)
class CacheEntry:
    """One file in the cache folder.

    Attributes:
        name: The dataset it belongs to (``"ml-20m"``, a custom dataset's name, or
            ``"(unnamed)"`` for files written before names were part of the file name).
        kind: ``"download"``, ``"processed"``, ``"embeddings"`` or ``"partial"``.
        size: Size in bytes.
        path: The file.
    """

    name: str
    kind: str
    size: int
    path: Path


def _name_of(folder: str, file: str) -> str | None:
    """The dataset a cache file belongs to, or ``None`` if the file is not recgym's."""
    if folder == "":
        return _ZIPS.get(file, file[:-4]) if file.endswith(".zip") else None
    pattern = _PROCESSED if folder == "processed" else _EMBEDDING
    suffix = ".npz" if folder == "processed" else ".npy"
    if not file.endswith(suffix):
        return None
    match = pattern.match(file)
    return match.group("name") if match else UNNAMED


def cache_entries(root: str | os.PathLike[str] | None = None) -> list[CacheEntry]:
    """List recgym's files in the cache folder, sorted by dataset name, kind and path.

    Args:
        root: The cache folder (default :func:`~recgym.data.paths.cache_dir`).

    Returns:
        One entry per file; an empty list when the folder does not exist.

    Examples:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "processed").mkdir()
        >>> _ = (root / "processed" / "ml-1m-0123456789abcdef.npz").write_bytes(b"x" * 10)
        >>> [(e.name, e.kind, e.size) for e in cache_entries(root)]
        [('ml-1m', 'processed', 10)]
    """
    base = Path(root) if root is not None else cache_dir()
    entries: list[CacheEntry] = []
    for folder in ("", "processed", "embeddings"):
        d = base / folder
        if not d.is_dir():
            continue
        for path in d.iterdir():
            kind = "download" if folder == "" else folder
            file = path.name
            partial = _PARTIAL.match(file)
            if partial:
                kind, file = "partial", partial.group("file")
            name = _name_of(folder, file)
            if name is None:
                continue
            with contextlib.suppress(FileNotFoundError):  # another process may delete it
                if path.is_file():
                    entries.append(CacheEntry(name, kind, path.stat().st_size, path))
    return sorted(entries, key=lambda e: (e.name, KINDS.index(e.kind), str(e.path)))


def clear_cache(
    names: Iterable[str] | None = None,
    *,
    downloads: bool = False,
    root: str | os.PathLike[str] | None = None,
) -> list[CacheEntry]:
    """Delete cached files: processed datasets, embeddings and partial files.

    Downloaded zips are kept unless ``downloads`` is true (fetching ml-32m again takes a while).
    Datasets held in this process's memory are forgotten too.

    Args:
        names: Datasets to clear (as :func:`cache_entries` names them); ``None`` clears all.
        downloads: Delete the downloaded zips too.
        root: The cache folder (default :func:`~recgym.data.paths.cache_dir`).

    Returns:
        The entries deleted.
    """
    from recgym.data.loaders import clear_memory_cache

    wanted = None if names is None else set(names)
    removed = []
    for entry in cache_entries(root):
        if wanted is not None and entry.name not in wanted:
            continue
        if entry.kind == "download" and not downloads:
            continue
        with contextlib.suppress(FileNotFoundError):
            entry.path.unlink()
            removed.append(entry)
    clear_memory_cache()
    return removed


def human_size(n: int) -> str:
    """A byte count for people (decimal units).

    Examples:
        >>> human_size(999), human_size(323_456_789), human_size(2_500_000_000)
        ('999 B', '323.5 MB', '2.5 GB')
    """
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
