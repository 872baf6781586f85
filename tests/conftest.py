"""Shared fixtures.

The session's settings (a temporary cache folder, downloads off, ``$RECGYM_DATA_DIR``) are made
by the repository's top-level ``conftest.py``, for the doctests too. Real data comes from
``$RECGYM_DATA_DIR``; a test that needs it must skip where it is absent (``real_dir``).
Download tests turn downloads back on against a loopback server (``allow_downloads``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import real_data_dir


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
