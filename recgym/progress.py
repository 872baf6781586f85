"""Progress bars: what ``progress=True/False/None`` means everywhere in recgym and agents.

``True`` shows a bar, ``False`` hides it, ``None`` (the usual default) shows it only on a
terminal, so logs and CI output stay free of bar frames.
"""

from __future__ import annotations

import sys


def tqdm_disable(progress: bool | None) -> bool | None:
    """The ``disable=`` argument of ``tqdm`` for a ``progress`` argument.

    ``None`` stays ``None``: tqdm then shows the bar only when its output is a terminal.

    Examples:
        >>> tqdm_disable(True), tqdm_disable(False), tqdm_disable(None)
        (False, True, None)
    """
    return None if progress is None else not progress


def shows_bar(progress: bool | None) -> bool:
    """Whether a ``progress`` argument means a bar on standard error (where tqdm draws).

    For code that does something else where no bar is shown (plain log lines, say).

    Examples:
        >>> shows_bar(True), shows_bar(False)
        (True, False)
    """
    return sys.stderr.isatty() if progress is None else bool(progress)
