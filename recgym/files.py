"""Writing files so that a reader never sees half of one: :func:`atomic_write`.

Every cache file of recgym (processed datasets, embeddings, downloads) and every file of an
agents run folder is written through it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# O_BINARY exists (and matters) on Windows only; O_NOFOLLOW refuses a planted symlink.
_CREATE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
)


def _create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    """Create ``folder/.NAME.RANDOM.part`` exclusively; return its descriptor and path.

    The file is created with mode ``0o666`` less the process umask, applied by the operating
    system as for any new file (``tempfile.mkstemp`` would make it ``0o600``). Nothing here
    reads or changes the umask, so no other thread ever sees it altered.
    """
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(4)}.part"
        try:
            return os.open(tmp, _CREATE_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"Could not create a temporary file for {name!r} in {folder}.")


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` and move it onto ``path`` only on success.

    A failure or ``KeyboardInterrupt`` inside the block deletes the temporary file, so readers
    never see a partial ``path``. The file gets the mode a plain ``open(path, "w")`` would give
    it (``0o666`` less the umask). Temporary files are named ``.NAME.RANDOM.part``
    (``recgym data cache`` lists the ones a killed process left behind).

    Args:
        path: The final file; its folder is created if needed.
        mode: ``"wb"`` or ``"w"``.

    Yields:
        The open temporary file.

    Raises:
        ValueError: For another ``mode``.

    Examples:
        >>> import pathlib, tempfile
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_write(target, "w") as fh:
        ...     _ = fh.write("done")
        >>> target.read_text()
        'done'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode={mode!r}; use 'wb' (bytes) or 'w' (text).")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path.parent, path.name)
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
