"""Small builders shared by tests."""

from __future__ import annotations

import pandas as pd


def frame(rows: list[tuple]) -> pd.DataFrame:
    """A ratings frame from ``(userId, movieId, rating, timestamp)`` tuples."""
    return pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])


def movies(ids: list[int], genres: list[str] | None = None) -> pd.DataFrame:
    """A movies frame with titles ``"Movie <id> (2000)"``."""
    return pd.DataFrame(
        {
            "movieId": ids,
            "title": [f"Movie {i} (2000)" for i in ids],
            "genres": genres or ["Drama"] * len(ids),
        }
    )
