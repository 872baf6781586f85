"""The synthetic generator: MovieLens-like shape, reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recgym.data import generate
from recgym.data.synthetic import HALF_STAR_FREQ, HALF_STAR_LEVELS


def test_shape_and_realism():
    d = generate(n_users=300, n_items=1500, n_ratings=30_000, rng=0)
    r = d.ratings
    per_user = r.groupby("userId").size()
    assert len(r) == 30_000 and per_user.min() >= 20 and per_user.max() > 200
    assert not r.duplicated(["userId", "movieId"]).any()
    freq = r["rating"].value_counts(normalize=True).reindex(HALF_STAR_LEVELS, fill_value=0)
    np.testing.assert_allclose(freq.to_numpy(), HALF_STAR_FREQ / HALF_STAR_FREQ.sum(), atol=0.005)
    pop = r["movieId"].value_counts()
    assert pop.iloc[: len(pop) // 10].sum() / len(r) > 0.3  # popularity skew
    tied = r.groupby(["userId", "timestamp"])["movieId"].transform("size") > 1
    assert 0.15 < tied.mean() < 0.5
    assert r.equals(r.sort_values(["userId", "movieId"], ignore_index=True))  # file order


def test_reproducible():
    a = generate(n_users=30, n_items=200, n_ratings=1000, rng=5)
    b = generate(n_users=30, n_items=200, n_ratings=1000, rng=5)
    c = generate(n_users=30, n_items=200, n_ratings=1000, rng=6)
    pd.testing.assert_frame_equal(a.ratings, b.ratings)
    assert not a.ratings.equals(c.ratings)
