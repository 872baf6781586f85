"""Shared fixtures.

Every test run gets its own cache folder; real data comes from ``$RECGYM_DATA_DIR`` (default:
``../shared/data`` beside the repository). Downloads are off (``RECGYM_OFFLINE=1``): a test that
needs data it does not find fails at once instead of going to the network, and must skip where
the data is absent (``real_dir``). Download tests turn them back on against a loopback server
(``allow_downloads``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_SESSION_CACHE = tempfile.mkdtemp(prefix="recgym-test-cache-")
os.environ["RECGYM_CACHE_DIR"] = _SESSION_CACHE
# the tests' networks are tiny: one torch thread is faster, and immune to a busy machine
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["RECGYM_MIRROR"] = "http://127.0.0.1:9/"  # never reach the internet
os.environ["RECGYM_OFFLINE"] = "1"  # nor try to: missing data fails fast (see the docstring)
if "RECGYM_DATA_DIR" not in os.environ and (ROOT.parent / "shared" / "data").is_dir():
    os.environ["RECGYM_DATA_DIR"] = str(ROOT.parent / "shared" / "data")


def real_data_dir() -> Path | None:
    """The folder holding ml-latest-small, or None."""
    for part in os.environ.get("RECGYM_DATA_DIR", "").split(os.pathsep):
        if part and (Path(part) / "ml-latest-small" / "ratings.csv").is_file():
            return Path(part)
    return None


@pytest.fixture(scope="session")
def real_dir() -> Path:
    d = real_data_dir()
    if d is None:
        pytest.skip("ml-latest-small not found: set RECGYM_DATA_DIR (CI provides it)")
    return d


@pytest.fixture(scope="session")
def small_real(real_dir):
    from recgym.data import load_movielens

    return load_movielens("ml-latest-small", data_dir=real_dir, download=False)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache folder for this test, and no datasets memoised in memory."""
    from recgym.data import clear_memory_cache

    cache = tmp_path / "cache"
    monkeypatch.setenv("RECGYM_CACHE_DIR", str(cache))
    clear_memory_cache()
    yield cache
    clear_memory_cache()


@pytest.fixture
def allow_downloads(monkeypatch):
    """Downloads on (RECGYM_OFFLINE unset), still only from the loopback mirror a test sets."""
    monkeypatch.delenv("RECGYM_OFFLINE", raising=False)
