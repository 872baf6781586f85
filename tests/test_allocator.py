"""agents.allocator: glibc's thresholds are raised once, unless the user opted out."""

from __future__ import annotations

import platform
import sys

import pytest

from agents import allocator

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(allocator, "_DONE", False)
    for name in (allocator.OPT_OUT, "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    "name, value",
    [(allocator.OPT_OUT, "0"), ("MALLOC_TRIM_THRESHOLD_", "131072"),
     ("MALLOC_MMAP_THRESHOLD_", "131072")],
)  # fmt: skip
def test_the_users_settings_win(fresh, name, value):
    fresh.setenv(name, value)
    assert allocator.keep_freed_memory() is False
    assert allocator._DONE is False


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_thresholds_are_set_on_glibc(fresh):
    assert allocator.keep_freed_memory() is True
    assert allocator._DONE is True
    assert allocator.keep_freed_memory() is True  # once per process, then a no-op
