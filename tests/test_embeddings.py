"""Item embeddings: unit norm, reproducible, cached, and fitted on train data only."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from recgym.data import Dataset, split_users, synthetic_dataset
from recgym.embeddings import item_embeddings, load_embeddings_file
from recgym.errors import ConfigError, DataFormatError, RecgymWarning


@pytest.fixture(scope="module")
def ds():
    return synthetic_dataset(n_users=120, n_items=400, n_ratings=5000, rng=3)


@pytest.mark.parametrize("method", ["svd", "implicit", "sppmi", "genres", "random"])
def test_unit_norm_and_deterministic(ds, method):
    s = split_users(ds, rng=0)
    a = item_embeddings(ds, method, 12, split=s, rng=1, cache=False)
    b = item_embeddings(ds, method, 12, split=s, rng=1, cache=False)
    assert a.shape == (ds.n_items, 12) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, b)


def _with_ratings(ds: Dataset, users: np.ndarray, new_rating) -> Dataset:
    df = ds.to_frame()
    hit = df["userId"].isin(ds.user_ids[users])
    df.loc[hit, "rating"] = new_rating(df.loc[hit, "rating"])
    return Dataset.from_frame(
        df,
        ds.item_table.assign(title=ds.item_table["title"] + " (2000)"),
        rating_range=ds.rating_range,
    )


@pytest.mark.parametrize("method", ["svd", "implicit", "sppmi"])
def test_test_users_cannot_change_any_embedding(ds, method):
    s = split_users(ds, rng=0)
    base = item_embeddings(ds, method, 16, split=s, cache=False)
    # (not 5.5 - r: that flips the sign of centred rows and leaves any SVD unchanged)
    scramble = lambda r: np.random.default_rng(0).permutation(r.to_numpy())  # noqa: E731
    flipped = _with_ratings(ds, s.user_sets["test"], scramble)
    assert not np.array_equal(flipped.ratings, ds.ratings)
    s2 = split_users(flipped, rng=0)
    np.testing.assert_array_equal(s.user_sets["test"], s2.user_sets["test"])
    np.testing.assert_array_equal(base, item_embeddings(flipped, method, 16, split=s2, cache=False))
    # ...while a change to train users does change them (the check can fail). The implicit
    # method ignores rating values: drop some train interactions instead.
    if method == "svd":
        moved = _with_ratings(ds, s.user_sets["train"][:30], scramble)
    else:
        df = ds.to_frame()
        gone = df["userId"].isin(ds.user_ids[s.user_sets["train"][:30]]) & (df.index % 3 == 0)
        moved = Dataset.from_frame(df[~gone], ds.item_table, rating_range=ds.rating_range)
    assert not np.array_equal(
        base, item_embeddings(moved, method, 16, split=split_users(moved, rng=0), cache=False)
    )


def test_cold_items_get_a_genre_fallback_not_zeros():
    rows = [(u, m, 4.0 + (u + m) % 2, u * 10 + m) for u in range(1, 12) for m in range(1, 9)]
    ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    genres = ["Comedy", "Comedy", "Drama", "Drama", "Comedy", "Horror", "Drama", "Horror"]
    movies = pd.DataFrame(
        {
            "movieId": list(range(1, 11)),
            "title": [f"M{i} (2000)" for i in range(1, 11)],
            "genres": genres + ["Comedy", ""],  # 9 and 10 are never rated
        }
    )
    ds = Dataset.from_frame(ratings, movies)
    emb = item_embeddings(ds, "svd", 3, cache=False)
    cold = ds.item_index(np.array([9, 10]))
    np.testing.assert_allclose(np.linalg.norm(emb[cold], axis=1), 1.0, atol=1e-5)
    assert not np.allclose(emb[cold[0]], emb[cold[1]])
    comedy = ds.item_index(np.array([1, 2, 5]))
    centroid = emb[comedy].mean(0) / np.linalg.norm(emb[comedy].mean(0))
    assert emb[cold[0]] @ centroid > 0.99  # close to the comedies' centre (noise 0.05)


def test_svd_dim_too_large(ds):
    with pytest.raises(ConfigError, match="smaller embedding_dim"):
        item_embeddings(ds, "svd", 500, cache=False)


def test_unknown_method_and_bad_dim(ds):
    with pytest.raises(ConfigError, match="Did you mean 'svd'"):
        item_embeddings(ds, "svdd", 8)
    with pytest.raises(ConfigError, match="embedding_dim=0 must be an integer >= 1"):
        item_embeddings(ds, "svd", 0)


def test_cache_hit_and_corrupt_cache(ds, fresh_cache):
    s = split_users(ds, rng=0)
    a = item_embeddings(ds, "svd", 8, split=s)
    (f,) = (fresh_cache / "embeddings").glob("*-svd-8-*.npy")
    np.testing.assert_array_equal(a, np.load(f))
    f.write_bytes(b"garbage")
    with pytest.warns(RecgymWarning, match="corrupt"):
        b = item_embeddings(ds, "svd", 8, split=s)
    np.testing.assert_array_equal(a, b)
    assert len(list((fresh_cache / "embeddings").glob("*.npy"))) == 1


def test_from_file_formats(ds, tmp_path):
    vec = np.random.default_rng(0).normal(size=(ds.n_items, 6))
    np.save(tmp_path / "e.npy", vec)
    a = load_embeddings_file(tmp_path / "e.npy", ds, 6)
    np.testing.assert_allclose(a, vec / np.linalg.norm(vec, axis=1, keepdims=True), rtol=1e-5)
    np.savez(tmp_path / "e.npz", ids=ds.item_ids, vectors=vec)
    np.testing.assert_array_equal(load_embeddings_file(tmp_path / "e.npz", ds), a)
    # RecNN's layout: {movieId: vector}, here with one movie missing and one unknown
    table = {int(m): vec[i] for i, m in enumerate(ds.item_ids) if i != 0}
    table[10**9] = np.ones(6)
    with open(tmp_path / "e.pkl", "wb") as fh:
        pickle.dump(table, fh)
    with pytest.warns(RecgymWarning, match="1 vector"):
        c = load_embeddings_file(tmp_path / "e.pkl", ds, 6)
    np.testing.assert_array_equal(c[1:], a[1:])
    assert np.isclose(np.linalg.norm(c[0]), 1.0)  # the missing one got the fallback
    with pytest.raises(ConfigError, match="embedding_dim=6"):
        load_embeddings_file(tmp_path / "e.npy", ds, 8)
    np.save(tmp_path / "bad.npy", vec[:5])
    with pytest.raises(DataFormatError, match="one row per item"):
        load_embeddings_file(tmp_path / "bad.npy", ds)
    e = item_embeddings(ds, "from_file", 6, path=tmp_path / "e.npz", cache=False)
    np.testing.assert_array_equal(e, a)


def test_item_whose_ratings_all_equal_user_means_is_not_zero():
    # Movie 3 is rated only by users whose every rating is 4.0: centred, its column is all 0.
    rows = [(1, 3, 4.0, 1), (1, 4, 4.0, 2), (2, 3, 4.0, 1), (2, 5, 4.0, 2)]
    rows += [(u, m, float(1 + (u * m) % 5), u + m) for u in range(3, 12) for m in (1, 2, 4, 5, 6)]
    ds = Dataset.from_frame(
        pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    )
    emb = item_embeddings(ds, "svd", 2, cache=False)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_sppmi_places_movies_watched_in_a_row_together():
    # 40 movies on a ring; every user watches all of them in ring order from a random start,
    # so who-watched-what is the same for everyone and only the order carries information
    rng = np.random.default_rng(0)
    n, users = 40, 80
    rows = [
        (u, int((start + j) % n) + 1, 4.0, 100 * j)
        for u, start in enumerate(rng.integers(0, n, size=users), start=1)
        for j in range(n)
    ]
    ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    movies = pd.DataFrame(
        {"movieId": range(1, n + 1), "title": [f"M{i} (2000)" for i in range(1, n + 1)],
         "genres": ["Drama"] * n}
    )  # fmt: skip
    ring = Dataset.from_frame(ratings, movies)
    emb = item_embeddings(ring, "sppmi", 6, cache=False)
    sim = emb @ emb.T
    np.fill_diagonal(sim, -np.inf)
    nearest = sim.argmax(axis=1)
    gap = np.abs(nearest - np.arange(n))
    ring_gap = np.minimum(gap, n - gap)
    np.testing.assert_array_less(ring_gap, 4)  # within the window of 3 steps
