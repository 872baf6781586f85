"""Each kind of bad input gets a recgym error that names the problem and the fix."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import frame

from recgym.data import Dataset, generate, load_movielens, load_ratings, write_movielens
from recgym.errors import (
    CacheError,
    DataFormatError,
    RecgymError,
    RecgymWarning,
    UnknownDatasetError,
)


def test_unknown_dataset_suggests_the_closest():
    with pytest.raises(UnknownDatasetError, match="Did you mean 'ml-100k'"):
        load_movielens("ml-100", download=False)


def _csv(path, text):
    path.write_text(text)
    return path


def test_missing_ratings_file(tmp_path):
    with pytest.raises(DataFormatError, match="does not exist"):
        load_ratings(tmp_path / "nope.csv")


def test_missing_movies_file_in_a_dataset_folder(tmp_path, fresh_cache):
    write_movielens(tmp_path, "ml-latest-small", n_users=3, n_items=60, n_ratings=60)
    (tmp_path / "ml-latest-small" / "movies.csv").unlink()
    with pytest.raises(DataFormatError, match=r"movies\.csv is missing.*complete copy"):
        load_movielens("ml-latest-small", data_dir=tmp_path, download=False)


def test_missing_columns_lists_what_the_file_has(tmp_path):
    f = _csv(tmp_path / "r.csv", "user,item,score,time\n1,2,3,4\n")
    with pytest.raises(DataFormatError) as err:
        load_ratings(f, cache=False)
    msg = str(err.value)
    assert "userId" in msg and "['user', 'item', 'score', 'time']" in msg and "user_col=" in msg


def test_column_mapping_fixes_it(tmp_path):
    f = _csv(tmp_path / "r.csv", "user,item,score,time\n1,2,3,4\n1,3,5,6\n")
    ds = load_ratings(
        f, user_col="user", item_col="item", rating_col="score", timestamp_col="time", cache=False
    )
    assert ds.n_ratings == 2 and ds.rating_range == (3.0, 5.0)


def test_non_numeric_rating(tmp_path):
    f = _csv(tmp_path / "r.csv", "userId,movieId,rating,timestamp\n1,2,four,4\n")
    with pytest.raises(DataFormatError, match="not a number.*four"):
        load_ratings(f, cache=False)


def test_nan_rating(tmp_path):
    f = _csv(tmp_path / "r.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,3,,5\n")
    with pytest.raises(DataFormatError, match="missing value.*row 2"):
        load_ratings(f, cache=False)
    with pytest.raises(DataFormatError, match="NaN"):
        Dataset.from_frame(frame([(1, 2, 3.0, 4), (1, 3, float("nan"), 5)]))


def test_empty_file_and_header_only(tmp_path):
    with pytest.raises(DataFormatError, match="empty"):
        load_ratings(_csv(tmp_path / "e.csv", ""), cache=False)
    with pytest.raises(DataFormatError, match="no ratings"):
        load_ratings(_csv(tmp_path / "h.csv", "userId,movieId,rating,timestamp\n"), cache=False)


def test_rating_outside_the_scale(tmp_path):
    f = _csv(tmp_path / "r.csv", "userId,movieId,rating,timestamp\n1,2,7,4\n")
    with pytest.raises(DataFormatError, match=r"rating 7.0 is outside the scale \(1.0, 5.0\)"):
        load_ratings(f, rating_range=(1.0, 5.0), cache=False)


def test_duplicates_keep_the_latest_rating_with_a_warning(tmp_path):
    f = _csv(
        tmp_path / "r.csv",
        "userId,movieId,rating,timestamp\n1,5,1,10\n1,6,2,11\n1,5,4,30\n1,5,3,20\n2,5,5,1\n",
    )
    with pytest.warns(RecgymWarning, match="2 duplicate"):
        ds = load_ratings(f, cache=False)
    assert ds.n_ratings == 3 and ds.n_duplicates_dropped == 2
    sl = ds.user_slice(0)
    assert ds.item_ids[ds.items[sl]].tolist() == [6, 5]
    assert ds.ratings[sl].tolist() == [2.0, 4.0]  # the rating at t=30 is kept


def test_duplicates_at_the_same_second_keep_the_later_row():
    rows = [(1, 5, 1.0, 10), (1, 9, 2.0, 10), (1, 5, 4.0, 10)]
    with pytest.warns(RecgymWarning, match="1 duplicate"):
        ds = Dataset.from_frame(frame(rows))
    assert sorted(zip(ds.item_ids[ds.items].tolist(), ds.ratings.tolist(), strict=True)) == [
        (5, 4.0),
        (9, 2.0),
    ]


def test_parquet_with_mapping(tmp_path):
    df = frame([(1, 2, 3.0, 4), (1, 3, 5.0, 5)]).rename(columns={"userId": "u"})
    df.to_parquet(tmp_path / "r.parquet")
    with pytest.raises(DataFormatError, match="no column"):
        load_ratings(tmp_path / "r.parquet", cache=False)
    ds = load_ratings(tmp_path / "r.parquet", user_col="u", cache=False)
    assert ds.n_ratings == 2


def test_truncated_zip(tmp_path, fresh_cache):
    z = write_movielens(tmp_path, "ml-1m", n_users=3, n_items=60, n_ratings=60, zipped=True)
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    with pytest.raises(DataFormatError, match="truncated"):
        load_movielens("ml-1m", data_dir=tmp_path, download=False)


def test_unwritable_cache_dir(tmp_path, monkeypatch):
    from recgym.data import clear_memory_cache

    clear_memory_cache()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("RECGYM_CACHE_DIR", str(blocker / "cache"))
    write_movielens(tmp_path, "ml-100k", n_users=3, n_items=60, n_ratings=60)
    with pytest.raises(CacheError, match="RECGYM_CACHE_DIR"):
        load_movielens("ml-100k", data_dir=tmp_path, download=False)
    ds = load_movielens("ml-100k", data_dir=tmp_path, download=False, cache=False)
    assert ds.n_ratings == 60


def test_corrupt_cache_is_rebuilt(tmp_path, fresh_cache):
    from recgym.data import clear_memory_cache

    write_movielens(tmp_path, "ml-100k", n_users=3, n_items=60, n_ratings=60)
    first = load_movielens("ml-100k", data_dir=tmp_path, download=False)
    (cached,) = (fresh_cache / "processed").glob("*.npz")
    cached.write_bytes(b"not a zip at all")
    clear_memory_cache()
    with pytest.warns(RecgymWarning, match="corrupt") as record:
        again = load_movielens("ml-100k", data_dir=tmp_path, download=False)
    assert record[0].filename == __file__  # the warning points at the caller's line
    np.testing.assert_array_equal(first.items, again.items)
    clear_memory_cache()
    load_movielens("ml-100k", data_dir=tmp_path, download=False)  # the rebuilt cache loads


def test_every_error_is_a_recgym_error():
    for cls in (CacheError, DataFormatError, UnknownDatasetError):
        assert issubclass(cls, RecgymError)


def test_generator_rejects_impossible_sizes():
    from recgym.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 20"):
        generate(n_users=10, n_items=100, n_ratings=100)
