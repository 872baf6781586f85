"""The cache folder: where it is, `recgym data cache`, damaged files, concurrent builders."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from recgym.cli import main
from recgym.data import (
    cache_entries,
    clear_cache,
    clear_memory_cache,
    load_movielens,
    write_movielens,
)
from recgym.data.paths import cache_dir
from recgym.errors import RecgymWarning

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- where it is
def test_cache_folder_is_the_platforms(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.delenv("RECGYM_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    asked = []

    def user_cache_path(appname, appauthor=None, **kwargs):
        asked.append((appname, appauthor))
        return tmp_path / "Library" / "Caches" / appname  # as on macOS

    monkeypatch.setattr(platformdirs, "user_cache_path", user_cache_path)
    assert cache_dir() == tmp_path / "Library" / "Caches" / "recgym"
    assert asked == [("recgym", False)]


def test_cache_folder_overrides(monkeypatch, tmp_path):
    monkeypatch.delenv("RECGYM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "recgym"
    monkeypatch.setenv("RECGYM_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


# ------------------------------------------------------------------ recgym data cache
@pytest.fixture
def filled_cache(fresh_cache, tmp_path):
    """A cache holding two processed datasets, an embedding, a download and a partial file."""
    from recgym.embeddings import item_embeddings

    for name in ("ml-100k", "ml-1m"):
        write_movielens(tmp_path / "src", name, n_users=10, n_items=80, n_ratings=200)
        ds = load_movielens(name, data_dir=tmp_path / "src", download=False)
    item_embeddings(ds, "random", 4, rng=0)  # ml-1m's
    (fresh_cache / "ml-1m.zip").write_bytes(b"z" * 1000)
    (fresh_cache / "processed" / ".ml-1m-0123456789abcdef.npz.k2j4.part").write_bytes(b"p")
    return fresh_cache


def test_entries_name_every_file(filled_cache):
    found = {(e.name, e.kind, e.path.relative_to(filled_cache).parts[0]) for e in cache_entries()}
    assert found == {
        ("ml-100k", "processed", "processed"),
        ("ml-1m", "processed", "processed"),
        ("ml-1m", "embeddings", "embeddings"),
        ("ml-1m", "download", "ml-1m.zip"),
        ("ml-1m", "partial", "processed"),
    }
    assert all(e.size == e.path.stat().st_size for e in cache_entries())


def test_cli_lists_name_size_and_path(filled_cache, capsys):
    assert main(["data", "cache"]) == 0
    out = capsys.readouterr().out
    assert f"Cache folder: {filled_cache} (5 files," in out
    assert "\nml-1m  " in out and "\nml-100k  " in out
    assert re.search(r"\n  download +1\.0 kB  ml-1m\.zip\n", out)
    for e in cache_entries():
        assert str(e.path.relative_to(filled_cache)) in out
    assert max(map(len, out.splitlines()[1:])) <= 80  # all but the folder's own line


def test_cli_clears_one_dataset_and_keeps_downloads(filled_cache, capsys):
    assert main(["data", "cache", "clear", "ml-1m"]) == 0
    out = capsys.readouterr().out
    assert "Removed 3 files" in out and "Kept 1 downloaded zip" in out
    left = {(e.name, e.kind) for e in cache_entries()}
    assert left == {("ml-100k", "processed"), ("ml-1m", "download")}


def test_cli_clear_everything_needs_yes(filled_cache, capsys):
    before = cache_entries()
    assert main(["data", "cache", "clear"]) == 1
    err = capsys.readouterr().err
    assert "--yes" in err and "ml-100k, ml-1m" in err
    assert cache_entries() == before  # nothing deleted, and no prompt waited for input
    assert main(["data", "cache", "clear", "--yes", "--downloads"]) == 0
    assert cache_entries() == []


def test_cli_clear_unknown_name(filled_cache, capsys):
    assert main(["data", "cache", "clear", "ml-1"]) == 1
    assert "nothing is cached for 'ml-1'" in capsys.readouterr().err
    assert len(cache_entries()) == 5


def test_clearing_forgets_the_memory_copy_too(filled_cache, tmp_path, monkeypatch):
    from recgym.data import loaders

    load_movielens("ml-100k", data_dir=tmp_path / "src", download=False)
    clear_cache(["ml-100k"])
    built = []
    monkeypatch.setattr(loaders, "build_dataset", lambda *a, **k: built.append(1) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        load_movielens("ml-100k", data_dir=tmp_path / "src", download=False)
    assert built == [1]


# ---------------------------------------------------------------------- damaged files
def test_truncated_processed_cache_is_rebuilt(fresh_cache, tmp_path):
    write_movielens(tmp_path, "ml-100k", n_users=10, n_items=80, n_ratings=200)
    first = load_movielens("ml-100k", data_dir=tmp_path, download=False)
    (cached,) = (fresh_cache / "processed").glob("*.npz")
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])  # a full disk
    clear_memory_cache()
    with pytest.warns(RecgymWarning, match="corrupt.*rebuilding it from the source data"):
        again = load_movielens("ml-100k", data_dir=tmp_path, download=False)
    for attr in ("items", "ratings", "timestamps", "indptr"):
        np.testing.assert_array_equal(getattr(first, attr), getattr(again, attr))
    clear_memory_cache()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt file loads cleanly
        load_movielens("ml-100k", data_dir=tmp_path, download=False)


# -------------------------------------------------------------------- three at once
def test_three_processes_build_one_cache_at_once(fresh_cache, tmp_path):
    write_movielens(tmp_path / "src", "ml-1m", n_users=200, n_items=400, n_ratings=20_000)
    go = tmp_path / "go"
    code = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from recgym.data import load_movielens
        Path({str(tmp_path)!r}, f"ready-{{os.getpid()}}").touch()
        while not Path({str(go)!r}).exists():
            time.sleep(0.002)
        ds = load_movielens("ml-1m", data_dir={str(tmp_path / "src")!r}, download=False)
        print(ds.fingerprint, ds.n_ratings, int(ds.items.sum()))
        """
    )
    env = {**os.environ, "RECGYM_CACHE_DIR": str(fresh_cache), "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    deadline = time.time() + 60
    while len(list(tmp_path.glob("ready-*"))) < 3 and time.time() < deadline:
        time.sleep(0.01)  # all three have imported recgym and wait at the line
    go.touch()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert len(set(outs)) == 1 and outs[0].split()[1] == "20000"
    assert [e.kind for e in cache_entries(fresh_cache)] == ["processed"]  # one file, no .part
    clear_memory_cache()
    ds = load_movielens("ml-1m", data_dir=tmp_path / "src", download=False)
    assert f"{ds.fingerprint} {ds.n_ratings} {int(ds.items.sum())}\n" == outs[0]
