"""Where recgym looks for data and keeps its caches, and atomic file writes.

Environment variables:

* ``RECGYM_DATA_DIR``: folder(s) holding MovieLens folders or zips (several separated by
  ``os.pathsep``). Searched after an explicit ``data_dir`` argument.
* ``RECGYM_CACHE_DIR``: the cache folder (downloads, processed datasets, embeddings). Defaults to
  ``$XDG_CACHE_HOME/recgym``, else ``~/.cache/recgym``.
* ``RECGYM_MIRROR``: a base URL that replaces GroupLens' address for downloads (checksums are
  still verified).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from recgym.errors import CacheError

_UMASK = os.umask(0)
os.umask(_UMASK)


def cache_dir() -> Path:
    """Return the cache folder (not created).

    Returns:
        ``$RECGYM_CACHE_DIR``, else ``$XDG_CACHE_HOME/recgym``, else ``~/.cache/recgym``.
    """
    if os.environ.get("RECGYM_CACHE_DIR"):
        return Path(os.environ["RECGYM_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "recgym"


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


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` and move it onto ``path`` only on success.

    A failure or ``KeyboardInterrupt`` inside the block deletes the temporary file, so readers
    never see a partial ``path``.

    Args:
        path: The final file.
        mode: ``"wb"`` or ``"w"``.

    Yields:
        The open temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
