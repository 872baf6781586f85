"""What a built wheel holds: the version from recgym/__init__.py, typing markers, Zoo files."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import recgym

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_written_once():
    """setup.cfg reads the version from recgym/__init__.py instead of repeating it."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["version"] == "attr: recgym.__version__"
    setupcfg = pytest.importorskip("setuptools.config.setupcfg")
    config = setupcfg.read_configuration(ROOT / "setup.cfg")
    assert config["metadata"]["version"] == recgym.__version__


def test_wheel_ships_version_typing_markers_and_zoo_files(tmp_path):
    """Build a wheel from a copy of the sources (offline: no build isolation) and read it."""
    pytest.importorskip("setuptools", reason="building a wheel offline needs setuptools")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("recgym", "agents"):
        shutil.copytree(ROOT / package, src / package, ignore=ignore)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = (tmp_path / "dist").glob("recgym-*.whl")
    assert wheel.name.startswith(f"recgym-{recgym.__version__}-")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        fields = z.read(metadata).decode().splitlines()
    assert f"Version: {recgym.__version__}" in fields
    assert {"recgym/py.typed", "agents/py.typed"} <= names
    assert {f"agents/zoo/{algo}.yml" for algo in ("ddpg", "td3", "sac")} <= names
    assert "recgym/envs/render.py" in names and not any(n.startswith("tests/") for n in names)
