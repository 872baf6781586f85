"""Rendering: what the user watched lately and what was recommended, as text or a picture.

``render_mode="ansi"`` gives :func:`render_table`; ``render_mode="rgb_array"`` gives
:func:`render_frame`, an ``(H, W, 3)`` uint8 image for ``RecordVideo``, Stable-Baselines3 and the
RL Zoo. Environments call these only from ``render()``, never while stepping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recgym.envs.font import ADVANCE, text_mask, to_ascii

if TYPE_CHECKING:
    from recgym.data import Dataset
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


# ============================================================================ pictures
# An rgb_array frame: a banner (user, step, reward), the state (the last movies watched, with
# their ratings) and the slate (hits on a green band, with the rating the user gave). Text is
# drawn with the bitmap font of recgym.envs.font at twice its size: 12 x 20 pixels a character.
SCALE = 2
CHAR_W, LINE_H = ADVANCE * SCALE, 20
COLUMNS = 66  # characters a line
MARGIN = 4
FRAME_WIDTH = 2 * MARGIN + COLUMNS * CHAR_W  # 800 pixels
MAX_HISTORY_ROWS, MAX_SLATE_ROWS = 10, 20
# where each column starts, in characters; the rating bar fills the rest of the line
COL_TITLE, COL_YEAR, COL_HIT, COL_RATING, COL_BAR = 3, 47, 52, 56, 60
TITLE_CHARS = COL_YEAR - COL_TITLE - 1

BACKGROUND = (24, 26, 33)
TEXT = (225, 228, 235)
DIM = (135, 142, 158)
BANNER = (44, 70, 118)
HIT_BAND = (28, 92, 50)
HIT_TEXT = (160, 245, 170)
BAR = (232, 172, 44)
BAR_EMPTY = (58, 61, 72)


@dataclass(frozen=True)
class Snapshot:
    """What a frame shows of one environment (or one slot of a vector environment).

    Attributes:
        dataset: The dataset (titles, years, rating scale).
        user_id: Original id of the user.
        history: Items consumed so far, oldest first, and their ratings scaled to [-1, 1].
        last: The info dict of the last step (``slate``, ``hits``, ``hit_ratings``), or
            ``None`` right after a reset.
        steps: Steps taken in this episode.
        reward: The last step's reward (``None`` right after a reset).
        episode_return: Sum of the rewards of this episode.
        split: The split the user comes from.
        caption: A note on the last action (the discrete env's group).
    """

    dataset: Dataset
    user_id: int
    history: tuple[np.ndarray, np.ndarray]
    last: dict[str, Any] | None
    steps: int
    reward: float | None
    episode_return: float
    split: str = ""
    caption: str = ""


def frame_shape(frame_size: int, slate_size: int) -> tuple[int, int, int]:
    """The ``(height, width, 3)`` of every frame of an environment with these sizes.

    The height is a multiple of 16 so that video encoders take frames as they are.

    Examples:
        >>> frame_shape(10, 10)
        (528, 800, 3)
    """
    lines = 6 + min(frame_size, MAX_HISTORY_ROWS) + min(slate_size, MAX_SLATE_ROWS)
    height = -(-lines * LINE_H // 16) * 16
    return height, FRAME_WIDTH, 3


class _Canvas:
    """An image addressed in text lines and character columns."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.img = np.empty(shape, dtype=np.uint8)
        self.img[:] = BACKGROUND

    def band(self, line: int, color: tuple[int, int, int]) -> None:
        self.img[line * LINE_H : (line + 1) * LINE_H, :] = color

    def text(self, line: int, col: int, text: str, color: tuple[int, int, int]) -> None:
        text = text[: max(0, COLUMNS - col)]
        if not text:
            return
        mask = text_mask(text, SCALE)
        y, x = line * LINE_H + 1, MARGIN + col * CHAR_W
        h, w = mask.shape
        self.img[y : y + h, x : x + w][mask] = color

    def right(self, line: int, text: str, color: tuple[int, int, int]) -> None:
        self.text(line, COLUMNS - len(text), text, color)

    def bar(self, line: int, fraction: float) -> None:
        y0, y1 = line * LINE_H + 4, line * LINE_H + 14
        x0, x1 = MARGIN + COL_BAR * CHAR_W, FRAME_WIDTH - MARGIN - 2
        self.img[y0:y1, x0:x1] = BAR_EMPTY
        filled = int(round(min(max(fraction, 0.0), 1.0) * (x1 - x0)))
        self.img[y0:y1, x0 : x0 + filled] = BAR


def _title_year(table: pd.DataFrame, item: int) -> tuple[str, str]:
    row = table.iloc[int(item)]
    title = to_ascii(str(row["title"]))
    if len(title) > TITLE_CHARS:
        title = title[: TITLE_CHARS - 2] + ".."
    return title, "" if pd.isna(row["year"]) else str(int(row["year"]))


def render_frame(snap: Snapshot | None, frame_size: int, slate_size: int) -> np.ndarray:
    """Draw the state and the last slate as an ``(H, W, 3)`` uint8 picture.

    Args:
        snap: What to show; ``None`` before the first reset.
        frame_size: Movies in the state (sets the height with ``slate_size``).
        slate_size: Movies in a slate.

    Returns:
        A new array of shape :func:`frame_shape`, the same bytes for the same state.
    """
    canvas = _Canvas(frame_shape(frame_size, slate_size))
    canvas.band(0, BANNER)
    if snap is None:
        canvas.text(0, 0, "No episode yet: call reset().", TEXT)
        return canvas.img
    ds = snap.dataset
    lo, hi = ds.rating_range
    span = (hi - lo) or 1.0
    split = f" ({snap.split} split)" if snap.split else ""
    canvas.text(0, 0, f"User {snap.user_id}{split}", TEXT)
    reward = "-" if snap.reward is None else f"{snap.reward:+.2f}"
    canvas.right(0, f"step {snap.steps}  reward {reward}  return {snap.episode_return:+.2f}", TEXT)

    items, scaled = snap.history
    n = min(frame_size, MAX_HISTORY_ROWS, len(items))
    of = f" (of the {frame_size} in the state)" if frame_size > n else ""
    line = 2
    canvas.text(line, 0, f"STATE: last {n} watched, oldest first{of}", DIM)
    canvas.text(line, COL_YEAR, "year", DIM)
    canvas.text(line, COL_RATING, "rating", DIM)
    raw = (scaled[len(scaled) - n :].astype(np.float64) + 1) / 2 * (hi - lo) + lo
    for item, rating in zip(items[len(items) - n :], raw, strict=True):
        line += 1
        title, year = _title_year(ds.item_table, item)
        canvas.text(line, COL_TITLE, title, TEXT)
        canvas.text(line, COL_YEAR, year, DIM)
        canvas.text(line, COL_RATING, f"{rating:.1f}", TEXT)
        canvas.bar(line, (rating - lo) / span)

    line = 4 + min(frame_size, MAX_HISTORY_ROWS)
    caption = f" ({snap.caption})" if snap.caption else ""
    if snap.last is None:
        canvas.text(line, 0, f"SLATE{caption}: none yet; step() to recommend", DIM)
        return canvas.img
    slate, hits, ratings = snap.last["slate"], snap.last["hits"], snap.last["hit_ratings"]
    shown = min(len(slate), MAX_SLATE_ROWS)
    top = f"top {shown} of {len(slate)}" if shown < len(slate) else f"{len(slate)} movies"
    n_hits = int(np.sum(hits))
    canvas.text(line, 0, f"SLATE{caption}: {top}, {n_hits} hit{'' if n_hits == 1 else 's'}", DIM)
    canvas.text(line, COL_YEAR, "year", DIM)
    canvas.text(line, COL_RATING, "rating", DIM)
    for rank in range(shown):
        line += 1
        title, year = _title_year(ds.item_table, slate[rank])
        hit = bool(hits[rank])
        if hit:
            canvas.band(line, HIT_BAND)
            canvas.text(line, COL_HIT, "HIT", HIT_TEXT)
            canvas.text(line, COL_RATING, f"{float(ratings[rank]):.1f}", HIT_TEXT)
            canvas.bar(line, (float(ratings[rank]) - lo) / span)
        canvas.text(line, 0, f"{rank + 1:>2}", TEXT if hit else DIM)
        canvas.text(line, COL_TITLE, title, HIT_TEXT if hit else TEXT)
        canvas.text(line, COL_YEAR, year, TEXT if hit else DIM)
    return canvas.img
