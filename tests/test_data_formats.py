"""Every native MovieLens format, written by the synthetic generator, reads back exactly."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from recgym.data import MOVIELENS, generate, load_movielens, write_movielens


@pytest.fixture(scope="module")
def data():
    return {
        half: generate(n_users=25, n_items=120, n_ratings=900, rng=7, half_stars=half)
        for half in (True, False)
    }


@pytest.mark.parametrize("zipped", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize("name", sorted(MOVIELENS))
def test_native_format_round_trip(name, zipped, data, tmp_path, fresh_cache):
    half = MOVIELENS[name].rating_range[0] == 0.5
    src = data[half]
    write_movielens(tmp_path, name, data=src, zipped=zipped)

    ds = load_movielens(name, data_dir=tmp_path, download=False)

    r = src.ratings
    assert ds.n_ratings == len(r)
    assert ds.n_users == r["userId"].nunique()
    assert ds.n_items == len(src.movies)
    assert ds.rating_range == MOVIELENS[name].rating_range
    # Same ratings, as multisets of (user, movie, rating, timestamp).
    got = ds.to_frame().sort_values(["userId", "movieId"], ignore_index=True)
    want = r.sort_values(["userId", "movieId"], ignore_index=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    # Per user, oldest first.
    for u in range(ds.n_users):
        assert np.all(np.diff(ds.timestamps[ds.user_slice(u)]) >= 0)
    # Titles with commas, quotes and accents survive each format's quoting and encoding.
    table = ds.item_table.set_index("movieId")
    for mid, title in zip(src.movies["movieId"], src.movies["title"], strict=True):
        assert table.loc[mid, "title"] == title.rsplit(" (", 1)[0]
        assert table.loc[mid, "year"] == int(title[-5:-1])
    listed = src.movies.set_index("movieId")["genres"].replace("(no genres listed)", "")
    assert (table["genres"] == listed.loc[table.index]).all()


def test_dtypes_and_csr_layout(data, tmp_path, fresh_cache):
    write_movielens(tmp_path, "ml-latest-small", data=data[True])
    ds = load_movielens("ml-latest-small", data_dir=tmp_path, download=False)
    assert ds.items.dtype == np.int32
    assert ds.ratings.dtype == np.float32
    assert ds.timestamps.dtype == np.int64
    assert ds.indptr[0] == 0 and ds.indptr[-1] == ds.n_ratings
    assert np.all(np.diff(ds.user_ids) > 0) and np.all(np.diff(ds.item_ids) > 0)
    # maps both ways
    some = ds.item_ids[[0, 5, 17]]
    assert ds.item_index(some).tolist() == [0, 5, 17]
    assert ds.user_index(int(ds.user_ids[3])) == 3
    with pytest.raises(ValueError, match="read-only"):
        ds.items[0] = 1


def test_data_dir_may_be_the_dataset_folder(data, tmp_path, fresh_cache):
    folder = write_movielens(tmp_path, "ml-1m", data=data[False])
    ds = load_movielens("ml-1m", data_dir=folder, download=False)
    assert ds.n_ratings == len(data[False].ratings)


def test_second_load_comes_from_cache(data, tmp_path, fresh_cache, monkeypatch):
    from recgym.data import clear_memory_cache, loaders

    write_movielens(tmp_path, "ml-100k", data=data[False])
    first = load_movielens("ml-100k", data_dir=tmp_path, download=False)
    assert len(list((fresh_cache / "processed").glob("ml-100k-*.npz"))) == 1

    clear_memory_cache()

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the processed cache was not used")

    monkeypatch.setattr(loaders, "build_dataset", no_rebuild)
    second = load_movielens("ml-100k", data_dir=tmp_path, download=False)
    for attr in ("items", "ratings", "timestamps", "indptr", "user_ids", "item_ids"):
        np.testing.assert_array_equal(getattr(first, attr), getattr(second, attr))
    pd.testing.assert_frame_equal(first.item_table, second.item_table)
    assert second.fingerprint == first.fingerprint

    # Touching the source changes its fingerprint: the dataset is rebuilt, not served stale.
    clear_memory_cache()
    source = tmp_path / "ml-100k" / "u.data"
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="cache was not used"):
        load_movielens("ml-100k", data_dir=tmp_path, download=False)
    # ... but not its content digest, which keys the caches of fitted models; new ratings do
    monkeypatch.undo()
    clear_memory_cache()
    touched = load_movielens("ml-100k", data_dir=tmp_path, download=False)
    assert touched.fingerprint != first.fingerprint
    assert touched.content_digest == first.content_digest
    lines = source.read_text().splitlines()
    user, item, rating, stamp = lines[0].split("\t")
    lines[0] = "\t".join([user, item, "1" if rating != "1" else "2", stamp])
    source.write_text("\n".join(lines) + "\n")
    clear_memory_cache()
    changed = load_movielens("ml-100k", data_dir=tmp_path, download=False)
    assert changed.content_digest != first.content_digest
