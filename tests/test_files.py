"""atomic_write: all or nothing, with the file mode of a plain open(), umask left alone."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from recgym.files import atomic_write


def test_writes_whole_files_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with atomic_write(target) as fh:
        fh.write(b"abc")
    assert target.read_bytes() == b"abc"
    with pytest.raises(RuntimeError, match="midway"), atomic_write(target) as fh:
        fh.write(b"partial")
        raise RuntimeError("midway")
    assert target.read_bytes() == b"abc"  # the old file, untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]  # no .part left


def test_bad_mode_is_refused_before_any_file_is_made(tmp_path):
    with pytest.raises(ValueError, match=r"mode='a'; use 'wb' \(bytes\) or 'w' \(text\)"):
        with atomic_write(tmp_path / "x", "a"):
            pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="file modes and umask are POSIX")
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_file_mode_follows_the_umask_without_touching_it(tmp_path, umask):
    """In a fresh process (umask is process-wide) with os.umask forbidden after it is set."""
    code = (
        "import os, sys, pathlib\n"
        f"os.umask({umask})\n"
        "def forbidden(*args):\n"
        "    raise AssertionError('os.umask called')\n"
        "os.umask = forbidden\n"
        "import recgym.data.paths, recgym.data.loaders\n"
        "from recgym.files import atomic_write\n"
        "d = pathlib.Path(sys.argv[1])\n"
        "with atomic_write(d / 'atomic.txt', 'w') as fh:\n"
        "    fh.write('x')\n"
        "(d / 'plain.txt').write_text('x')\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    atomic = stat.S_IMODE((tmp_path / "atomic.txt").stat().st_mode)
    plain = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert atomic == plain == 0o666 & ~umask
