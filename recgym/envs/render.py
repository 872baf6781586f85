"""Rendering: what the user watched lately and what was recommended, as text or a picture.

``render_mode="ansi"`` gives :func:`render_table`; ``render_mode="rgb_array"`` gives
:func:`render_frame`, an ``(H, W, 3)`` uint8 image for ``RecordVideo``, Stable-Baselines3 and the
RL Zoo. Both draw a :class:`Snapshot`, which environments build only in ``render()``, never
while stepping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from recgym.envs.font import ADVANCE, text_mask, to_ascii
from recgym.text_table import format_table

if TYPE_CHECKING:
    from recgym.data import Dataset


@dataclass(frozen=True)
class Snapshot:
    """What a table or a frame shows of one environment (or one slot of a vector environment).

    Both :class:`~recgym.envs.MovieRecEnv` and the vector environments build one in
    ``render()``; rendering reads nothing else.

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


# ============================================================================== text
TABLE_WIDTH = 100  # characters; titles and genres are shortened (with "…") to fit
HISTORY_ROWS = 5  # the user's latest movies shown above the slate
NO_EPISODE = "No episode yet: call reset()."


def render_table(snap: Snapshot | None) -> str:
    """The user's last :data:`HISTORY_ROWS` movies, then the last slate with hits and ratings."""
    if snap is None:
        return NO_EPISODE
    ds = snap.dataset
    items, scaled = snap.history
    items, raw = items[-HISTORY_ROWS:], ds.unscale_ratings(scaled[-HISTORY_ROWS:])
    hist_rows = [
        [*ds.item_text(item), f"{rating:.1f}"] for item, rating in zip(items, raw, strict=True)
    ]
    parts = [
        format_table(
            f"User {snap.user_id}: last {len(hist_rows)} watched (oldest first)",
            ["title", "year", "genres", "rating"],
            hist_rows,
            width=TABLE_WIDTH,
            shrink=[0, 2],
            right=[3],
        )
    ]
    if snap.last is not None:
        slate, hits, ratings = snap.last["slate"], snap.last["hits"], snap.last["hit_ratings"]
        rows = []
        for rank, (item, hit, rating) in enumerate(zip(slate, hits, ratings, strict=True), 1):
            title, year, genres = ds.item_text(item)
            rating_text = f"{rating:.1f}" if hit else ""
            rows.append([str(rank), title, year, genres, "hit" if hit else "", rating_text])
        parts += [
            "",
            format_table(
                "Recommended",
                ["#", "title", "year", "genres", "hit", "rating"],
                rows,
                width=TABLE_WIDTH,
                shrink=[1, 3],
                right=[0, 5],
            ),
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


def _frame_title(title: str) -> str:
    """The title in the bitmap font's ASCII, shortened (with "..") to its column."""
    title = to_ascii(title)
    return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 2] + ".."


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
        canvas.text(0, 0, NO_EPISODE, TEXT)
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
    raw = ds.unscale_ratings(scaled[len(scaled) - n :])
    for item, rating in zip(items[len(items) - n :], raw, strict=True):
        line += 1
        title, year, _ = ds.item_text(item)
        canvas.text(line, COL_TITLE, _frame_title(title), TEXT)
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
        title, year, _ = ds.item_text(slate[rank])
        hit = bool(hits[rank])
        if hit:
            canvas.band(line, HIT_BAND)
            canvas.text(line, COL_HIT, "HIT", HIT_TEXT)
            canvas.text(line, COL_RATING, f"{float(ratings[rank]):.1f}", HIT_TEXT)
            canvas.bar(line, (float(ratings[rank]) - lo) / span)
        canvas.text(line, 0, f"{rank + 1:>2}", TEXT if hit else DIM)
        canvas.text(line, COL_TITLE, _frame_title(title), HIT_TEXT if hit else TEXT)
        canvas.text(line, COL_YEAR, year, TEXT if hit else DIM)
    return canvas.img
