"""A fresh clone has no ../shared/data: tests that need the real data skip, never download.

``.ci/run`` also runs the registry and CLI tests with ``RECGYM_DATA_DIR`` pointing at an empty
folder; this test keeps the same promise inside the normal suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_downloads_are_off_in_tests():
    assert os.environ["RECGYM_OFFLINE"] == "1"
    assert os.environ["RECGYM_MIRROR"].startswith("http://127.0.0.1:")


def test_missing_real_data_fails_fast_instead_of_downloading(fresh_cache, tmp_path, monkeypatch):
    import gymnasium as gym

    from recgym.errors import DatasetNotFoundError

    monkeypatch.setenv("RECGYM_DATA_DIR", str(tmp_path))
    import recgym.data.fetch as fetch

    monkeypatch.setattr(fetch, "download", lambda *a, **k: pytest.fail("tried to download"))
    with pytest.raises(DatasetNotFoundError, match="RECGYM_OFFLINE"):
        gym.make("MovieRecDiscrete-v0")


def test_registry_tests_skip_without_data(tmp_path):
    env = {**os.environ, "RECGYM_DATA_DIR": str(tmp_path), "RECGYM_CACHE_DIR": str(tmp_path)}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         "tests/test_env_registered.py", "-k", "MovieRec-v0 or MovieRecDiscrete-v0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 skipped" in done.stdout and "failed" not in done.stdout
    assert "MovieRecDiscrete-v0 needs ml-latest-small" in done.stdout
