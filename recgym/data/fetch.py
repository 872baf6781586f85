"""Checksum-verified, resumable-safe downloads with a progress bar.

A download streams into a temporary file beside the destination, hashing as it goes, and is
renamed onto the destination only when the byte count and checksum match. Any failure, including
``Ctrl-C``, deletes the temporary file: no partial archive is ever left where a loader would
find it.

Only transient failures are retried (a dropped connection, a timeout, HTTP 5xx/408/429). An
answer that will not change within seconds fails at once: a host name that does not resolve
(offline, or a wrong mirror), an unreachable network, a TLS certificate that does not verify,
or an HTTP client error such as 404.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from tqdm.auto import tqdm

from recgym.data.paths import ensure_writable_dir
from recgym.errors import ChecksumError, DownloadError
from recgym.files import atomic_write
from recgym.progress import tqdm_disable

CHUNK = 1 << 16


def fetch_text(url: str, timeout: float = 30.0) -> str:
    """Fetch a small text resource (an ``.md5`` file).

    Args:
        url: The address.
        timeout: Seconds before giving up on the connection.

    Returns:
        The body, decoded as UTF-8.

    Raises:
        DownloadError: On any network error.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode("utf-8", "replace")
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise DownloadError(
            f"Could not fetch {url}: {permanent_failure(exc, url) or exc}."
        ) from exc


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    md5: str | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
    progress: bool | None = None,
) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying its checksum.

    Args:
        url: The address to fetch.
        dest: Destination file. Its folder is created.
        sha256: Expected SHA-256 hex digest (preferred).
        md5: Expected MD5 hex digest, used when no SHA-256 is known.
        retries: Attempts after the first on transient network errors (see the module
            docstring; a checksum mismatch or a host that does not resolve is not retried).
        backoff: Seconds to wait before the first retry; doubled after each.
        timeout: Socket timeout in seconds.
        progress: Show a progress bar; ``None`` shows it only on a terminal.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        DownloadError: When every attempt failed (connection refused, dropped mid-file, ...),
            or at once on a permanent failure (unknown host, HTTP 404, ...).
        ChecksumError: When the file arrived whole but its digest differs from the expected one.
        CacheError: When ``dest``'s folder cannot be written.
    """
    dest = Path(dest)
    ensure_writable_dir(dest.parent, "download")
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            _download_once(url, dest, sha256=sha256, md5=md5, timeout=timeout, progress=progress)
            return dest
        except ChecksumError:
            raise
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            last_error = exc
            permanent = permanent_failure(exc, url)
            if permanent:
                raise DownloadError(f"Could not download {url}: {permanent}.") from exc
    raise DownloadError(
        f"Could not download {url} after {retries + 1} attempts: {last_error}."
    ) from last_error


def permanent_failure(exc: BaseException, url: str = "") -> str | None:
    """Say why a network error will not go away by retrying, or return ``None`` if it may.

    Args:
        exc: The error raised by ``urllib``.
        url: The address, named in the explanation.

    Returns:
        A short explanation for a permanent failure, else ``None`` (worth retrying).

    Examples:
        >>> import socket, urllib.error
        >>> err = urllib.error.URLError(socket.gaierror(-2, "unknown name"))
        >>> print(permanent_failure(err, "https://h.example/x.zip"))
        the host name 'h.example' does not resolve (unknown name): offline, or a wrong address
        >>> permanent_failure(urllib.error.URLError(ConnectionResetError(104, "reset"))) is None
        True
    """
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code in (408, 425, 429) or exc.code >= 500:
            return None
        return f"the server answered HTTP {exc.code} {exc.reason}"
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, socket.gaierror):
        host = urlsplit(url).hostname or "?"
        detail = reason.strerror or str(reason)
        return f"the host name {host!r} does not resolve ({detail}): offline, or a wrong address"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"the server's TLS certificate does not verify ({reason.verify_message})"
    if isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"the network is unreachable ({reason.strerror}): offline?"
    return None


def _download_once(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    md5: str | None,
    timeout: float,
    progress: bool | None,
) -> None:
    digest = hashlib.sha256() if sha256 else hashlib.md5() if md5 else None
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        total = resp.headers.get("Content-Length")
        total = int(total) if total is not None else None
        received = 0
        with (
            atomic_write(dest) as out,
            tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"Downloading {dest.name}",
                disable=tqdm_disable(progress),
                leave=False,
            ) as bar,
        ):
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                received += len(chunk)
                if digest is not None:
                    digest.update(chunk)
                bar.update(len(chunk))
            if total is not None and received != total:
                raise DownloadError(
                    f"Connection dropped: got {received} of {total} bytes from {url}."
                )
            expected = sha256 or md5
            if digest is not None and digest.hexdigest() != expected.lower():
                raise ChecksumError(
                    f"Checksum mismatch for {url}: expected {digest.name} {expected}, "
                    f"got {digest.hexdigest()}. The file was deleted; if this persists, the "
                    "server may be serving a different release: download it yourself and "
                    "check it."
                )
