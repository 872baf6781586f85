"""Text rendering of a slate: what the user watched lately, and what was recommended."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from recgym.envs.movie_rec import MovieRecEnv


def _row_text(table: pd.DataFrame, item: int, width: int = 42) -> tuple[str, str, str]:
    row = table.iloc[int(item)]
    title = str(row["title"])
    title = title if len(title) <= width else title[: width - 1] + "~"
    year = "" if pd.isna(row["year"]) else str(int(row["year"]))
    return title, year, str(row["genres"]).replace("|", ", ")


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def render_table(env: MovieRecEnv, last: dict[str, Any] | None, n_history: int = 5) -> str:
    """The user's last ``n_history`` movies, then the last slate with hits and ratings."""
    ds = env.dataset
    table = ds.item_table
    items, scaled = env.history()
    lo, hi = ds.rating_range
    raw = (scaled.astype(np.float64) + 1) / 2 * (hi - lo) + lo
    hist_rows = []
    for item, rating in zip(items[-n_history:], raw[-n_history:], strict=True):
        title, year, genres = _row_text(table, item)
        hist_rows.append([title, year, genres, f"{rating:.1f}"])
    parts = [
        f"User {env.user_id}: last {len(hist_rows)} watched (oldest first)",
        format_table(["title", "year", "genres", "rating"], hist_rows),
    ]
    if last is not None:
        rows = []
        for rank, (item, hit, rating) in enumerate(
            zip(last["slate"], last["hits"], last["hit_ratings"], strict=True), 1
        ):
            title, year, genres = _row_text(table, item)
            rows.append(
                [
                    str(rank),
                    title,
                    year,
                    genres,
                    "hit" if hit else "",
                    "" if not hit else f"{rating:.1f}",
                ]
            )
        parts += [
            "",
            "Recommended",
            format_table(["#", "title", "year", "genres", "hit", "rating"], rows),
        ]
    return "\n".join(parts)
