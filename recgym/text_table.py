"""Plain-text tables that fit the terminal (80 columns when the output is piped).

The command line prints its tables with :func:`format_table`: text columns (titles, genres)
are shortened with an ellipsis first, then the rightmost columns are left out, with a note
saying which. Files written next to the tables keep every column at full precision.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

GAP = "  "


def terminal_width() -> int:
    """Columns of the terminal; ``$COLUMNS`` if set; 80 when there is no terminal."""
    return shutil.get_terminal_size((80, 24)).columns


def table_width(widths: Sequence[int]) -> int:
    """Characters of a row with these column widths."""
    return sum(widths) + len(GAP) * max(len(widths) - 1, 0)


def format_table(
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = None,
    shrink: Sequence[int] = (),
    right: Sequence[int] = (),
    note: str = "",
) -> str:
    """A title, a header, a rule and the rows, at most ``width`` characters wide.

    Args:
        title: First line (wrapped at ``width``).
        header: Column names.
        rows: Cells, one list per row (strings).
        width: Maximum line length (default: :func:`terminal_width`).
        shrink: Indices of text columns that may be shortened (with "…") to fit.
        right: Indices of columns aligned right (numbers).
        note: A last line (for example where the full table is).

    Returns:
        The table; when columns had to be left out, a last line names them.

    Example:
        >>> print(format_table("T", ["name", "n"], [["a long name", "1"]], width=10, shrink=[0]))
        T
        name     n
        -------  -
        a long…  1
    """
    width = terminal_width() if width is None else width
    header = list(header)
    rows = [list(r) for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    # 1. shorten the text columns, widest first, down to their header (at least 6 characters)
    floor = {i: max(len(header[i]), 6) for i in shrink}
    while table_width(widths) > width:
        candidates = [i for i in shrink if widths[i] > floor[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
    # 2. leave out the rightmost columns (never the first)
    keep = len(header)
    while keep > 1 and table_width(widths[:keep]) > width:
        keep -= 1
    left_out = header[keep:]
    lines = _wrap(title, width)
    lines.append(_row(header[:keep], widths[:keep], right))
    lines.append(GAP.join("-" * w for w in widths[:keep]))
    lines += [_row(r[:keep], widths[:keep], right) for r in rows]
    if left_out:
        lines += _wrap(f"(left out to fit {width} columns: {', '.join(left_out)})", width)
    if note:
        lines += _wrap(note, width)
    return "\n".join(lines)


def _row(cells: Sequence[str], widths: Sequence[int], right: Sequence[int]) -> str:
    out = []
    for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
        text = cell if len(cell) <= w else cell[: max(w - 1, 0)] + "…"
        out.append(text.rjust(w) if i in right else text.ljust(w))
    return GAP.join(out).rstrip()


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=max(width, 20)) or [""]
