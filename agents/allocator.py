"""Let training reuse freed memory instead of asking the kernel for fresh pages each update.

Every update of the anchored recipe builds several ``(batch, n_items)`` float tensors (256 x
9,742 floats, 10 MB each, on ml-latest-small) and frees them again. glibc's ``malloc`` serves
blocks that large with ``mmap`` and trims the top of its heap when they are freed, so each
update touches fresh pages that the kernel must fault in and zero: the main job
(``recgym train --dataset ml-latest-small``) took 39.6 million minor page faults and 133 s of
system time in a 7 min 40 s run. :func:`keep_freed_memory` raises glibc's mmap threshold to
32 MiB (its maximum) and its trim threshold to 1 GiB, so the blocks are reused: with it (and
the leaner AWR update of :mod:`agents.anchored`) the same job took 4 min 07 s, 0.14 million
page faults and 3 s of system time on the quiet 2-core CPU, with the same results.
``benchmarks/recipe_speed.py`` times an update with and without it in fresh processes
(26.7 against 31.1 ms over 150 updates: a short run gains less than the long job did).

The setting is process-wide and stays (glibc has no way to read the previous values back);
the resident memory it keeps is the peak the run reached anyway. It does nothing on other
C libraries or systems, when the user set ``MALLOC_MMAP_THRESHOLD_`` or
``MALLOC_TRIM_THRESHOLD_`` themselves, or with ``RECGYM_KEEP_FREED_MEMORY=0`` (glibc's own
behaviour, which ``benchmarks/recipe_speed.py`` compares against).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 1 << 30
OPT_OUT = "RECGYM_KEEP_FREED_MEMORY"  # "0": leave glibc's thresholds alone
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
_DONE = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process (see the module docstring).

    Returns:
        Whether the thresholds are set (``False`` off glibc, or where the user set them).
    """
    global _DONE
    if _DONE:
        return True
    if (
        not sys.platform.startswith("linux")
        or os.environ.get(OPT_OUT, "1") == "0"
        or any(name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"))
    ):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _DONE = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _DONE
