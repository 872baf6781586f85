"""The real ml-latest-small (from $RECGYM_DATA_DIR): published counts and known movies."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest

from recgym.data import load_movielens


def test_published_counts(small_real):
    assert small_real.n_ratings == 100_836
    assert small_real.n_users == 610
    assert small_real.n_items == 9_742
    assert small_real.user_lengths.min() >= 20
    assert small_real.rating_range == (0.5, 5.0)


@pytest.mark.parametrize(
    ("movie_id", "title", "year", "genres"),
    [
        (1, "Toy Story", 1995, "Adventure|Animation|Children|Comedy|Fantasy"),
        (2571, "Matrix, The", 1999, "Action|Sci-Fi|Thriller"),
        (356, "Forrest Gump", 1994, "Comedy|Drama|Romance|War"),
        (114335, "La cravate", 1957, ""),  # listed with "(no genres listed)"
    ],
)
def test_known_movies(small_real, movie_id, title, year, genres):
    row = small_real.item_table.iloc[small_real.item_index(movie_id)]
    assert (row["movieId"], row["title"], row["year"], row["genres"]) == (
        movie_id,
        title,
        year,
        genres,
    )


def test_user_one_in_time_order(small_real):
    sl = small_real.user_slice(small_real.user_index(1))
    ts = small_real.timestamps[sl]
    assert len(ts) == 232
    assert np.all(np.diff(ts) >= 0)


def test_tie_share_matches_the_documented_23_percent(small_real):
    users = small_real.interaction_users
    key = users.astype(np.int64) * 2**32 + small_real.timestamps
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    assert 0.225 < (counts[inverse] > 1).mean() < 0.235


def test_ties_are_not_in_movie_id_order(small_real):
    """Within a shared second, items must not come out sorted by movieId (the file's order)."""
    users = small_real.interaction_users
    same = (users[1:] == users[:-1]) & (small_real.timestamps[1:] == small_real.timestamps[:-1])
    ids = small_real.item_ids[small_real.items]
    ascending = (ids[1:] > ids[:-1])[same].mean()
    assert 0.4 < ascending < 0.6  # a fair shuffle, not the file's ascending movieId order


def test_loads_from_the_zip_too(real_dir, tmp_path, fresh_cache, small_real):
    archive = tmp_path / "ml-latest-small.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in (real_dir / "ml-latest-small").iterdir():
            zf.write(f, f"ml-latest-small/{f.name}")
    ds = load_movielens("ml-latest-small", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(ds.items, small_real.items)
    np.testing.assert_array_equal(ds.ratings, small_real.ratings)


def test_found_through_the_environment_variable(real_dir, tmp_path, fresh_cache, monkeypatch):
    copy = tmp_path / "elsewhere"
    shutil.copytree(real_dir / "ml-latest-small", copy / "ml-latest-small")
    monkeypatch.setenv("RECGYM_DATA_DIR", str(copy))
    ds = load_movielens("ml-latest-small", download=False)
    assert ds.n_ratings == 100_836
