"""Settings for every pytest session: tests/ and the doctests of recgym/ and agents/ alike.

Set before anything is collected, so they hold whichever paths pytest is given:

* ``RECGYM_CACHE_DIR``: a fresh temporary cache folder for the session (deleted at the end),
  so tests and doctests never read or fill the user's cache;
* ``RECGYM_OFFLINE=1`` and a loopback ``RECGYM_MIRROR``: nothing goes to the network; a test
  that needs data it does not find fails at once (download tests switch downloads back on
  against a loopback server);
* ``OMP_NUM_THREADS=1`` (unless set): one torch thread for the tests' tiny networks;
* ``RECGYM_DATA_DIR``: where real data is read, by default ``../shared/data`` beside the
  repository when it exists (tests that need it skip where it is absent).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
_SESSION_CACHE = tempfile.mkdtemp(prefix="recgym-test-cache-")
os.environ["RECGYM_CACHE_DIR"] = _SESSION_CACHE
os.environ["RECGYM_MIRROR"] = "http://127.0.0.1:9/"  # never reach the internet
os.environ["RECGYM_OFFLINE"] = "1"  # nor try to
# the tests' networks are tiny: one torch thread is faster, and immune to a busy machine
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "RECGYM_DATA_DIR" not in os.environ and (ROOT.parent / "shared" / "data").is_dir():
    os.environ["RECGYM_DATA_DIR"] = str(ROOT.parent / "shared" / "data")


def pytest_unconfigure(config: object) -> None:
    """Delete the session's cache folder."""
    shutil.rmtree(_SESSION_CACHE, ignore_errors=True)
