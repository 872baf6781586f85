"""Where recgym looks for data and keeps its caches.

Environment variables:

* ``RECGYM_DATA_DIR``: folder(s) holding MovieLens folders or zips (several separated by
  ``os.pathsep``). Searched after an explicit ``data_dir`` argument.
* ``RECGYM_CACHE_DIR``: the cache folder (downloads, processed datasets, embeddings). Defaults to
  ``$XDG_CACHE_HOME/recgym`` when ``XDG_CACHE_HOME`` is set (on any system), else the platform's
  user cache folder (``platformdirs``): ``~/.cache/recgym`` on Linux,
  ``~/Library/Caches/recgym`` on macOS, ``%LOCALAPPDATA%/recgym/Cache`` on Windows.
* ``RECGYM_MIRROR``: a base URL that replaces GroupLens' address for downloads (checksums are
  still verified).
* ``RECGYM_OFFLINE``: ``1`` (or ``true``, ``yes``) forbids downloads: a dataset that is not on
  disk raises :class:`~recgym.errors.DatasetNotFoundError` at once (the test suite sets it).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from recgym.errors import CacheError

__all__ = [
    "cache_dir",
    "data_dirs",
    "ensure_writable_dir",
    "offline",
    "safe_name",
]


def cache_dir() -> Path:
    """Return the cache folder (not created).

    Returns:
        ``$RECGYM_CACHE_DIR``, else ``$XDG_CACHE_HOME/recgym``, else the platform's user cache
        folder for ``recgym`` (``platformdirs.user_cache_path``).
    """
    if os.environ.get("RECGYM_CACHE_DIR"):
        return Path(os.environ["RECGYM_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "recgym"
    from platformdirs import user_cache_path

    return user_cache_path("recgym", appauthor=False)


def offline() -> bool:
    """Whether ``$RECGYM_OFFLINE`` forbids downloads (``1``, ``true`` or ``yes``)."""
    return os.environ.get("RECGYM_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def safe_name(name: str) -> str:
    """A dataset name made safe for a file name (other characters become ``_``, 60 at most).

    Examples:
        >>> safe_name("my ratings/2024")
        'my_ratings_2024'
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60]


def data_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Return the folders searched for datasets, in order.

    Args:
        data_dir: An explicit folder, searched first.

    Returns:
        ``data_dir``, then each folder of ``$RECGYM_DATA_DIR``, then :func:`cache_dir`.
    """
    dirs: list[Path] = []
    if data_dir is not None:
        dirs.append(Path(data_dir).expanduser())
    for part in os.environ.get("RECGYM_DATA_DIR", "").split(os.pathsep):
        if part.strip():
            dirs.append(Path(part.strip()).expanduser())
    dirs.append(cache_dir())
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def ensure_writable_dir(path: Path, purpose: str) -> Path:
    """Create ``path`` if needed and check that files can be written into it.

    Args:
        path: The folder.
        purpose: What the folder is for, used in the error message.

    Returns:
        ``path``.

    Raises:
        CacheError: If the folder cannot be created or written; the message says how to pick
            another one.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise CacheError(
            f"Cannot write the {purpose} folder {str(path)!r} ({exc.strerror or exc}). "
            "Set RECGYM_CACHE_DIR to a writable folder, or pass cache=False to skip caching."
        ) from exc
    return path
