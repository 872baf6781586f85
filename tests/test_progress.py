"""progress=True/False/None: one meaning for every bar (recgym.progress)."""

from __future__ import annotations

import io

from tqdm.auto import tqdm

from recgym.data.loaders import _stages
from recgym.progress import shows_bar, tqdm_disable


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _shown(progress: bool | None, file: io.StringIO) -> bool:
    with tqdm(range(3), disable=tqdm_disable(progress), file=file) as bar:
        for _ in bar:
            pass
    return bool(file.getvalue())


def test_true_shows_false_hides_none_follows_the_terminal():
    assert _shown(True, io.StringIO())
    assert not _shown(False, io.StringIO())
    assert not _shown(None, io.StringIO())  # not a terminal: no bar
    assert _shown(None, Terminal())


def test_shows_bar_follows_standard_error_when_not_told(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert (shows_bar(None), shows_bar(True), shows_bar(False)) == (False, True, False)
    monkeypatch.setattr("sys.stderr", Terminal())
    assert (shows_bar(None), shows_bar(True), shows_bar(False)) == (True, True, False)


def test_dataset_preparation_bar_only_for_large_datasets_unless_asked():
    assert _stages("x", 10, None).disable is True  # small: never by default
    assert _stages("x", 10, True).disable is False  # asked for: shown
    assert _stages("x", 10_000_000, False).disable is True
