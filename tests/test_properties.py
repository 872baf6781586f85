"""Property tests: dataset invariants for arbitrary ratings; the decoder against brute force."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from recgym.data import Dataset
from recgym.errors import RecgymWarning
from recgym.ranking import Ranker

rows = st.lists(
    st.tuples(
        st.integers(1, 6),  # user: few, so users repeat
        st.integers(1, 12),  # movie: few, so duplicates happen
        st.sampled_from([0.5, 1.0, 2.5, 4.0, 5.0]),
        st.integers(0, 5),  # time: few values, so ties happen
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(rows, st.integers(0, 3))
def test_dataset_invariants(data, tie_seed):
    frame = pd.DataFrame(data, columns=["userId", "movieId", "rating", "timestamp"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecgymWarning)
        ds = Dataset.from_frame(frame, tie_seed=tie_seed)
    # one rating per (user, movie): the latest, the later row winning at equal times
    latest = (
        frame.reset_index()
        .sort_values(["timestamp", "index"])
        .groupby(["userId", "movieId"])
        .last()
    )
    got = ds.to_frame().set_index(["userId", "movieId"]).sort_index()
    pd.testing.assert_series_equal(
        got["rating"], latest["rating"].sort_index().astype(np.float32), check_names=False
    )
    assert ds.n_duplicates_dropped == len(frame) - len(latest)
    # CSR layout: users ascending, each user's interactions in time order
    assert ds.indptr[0] == 0 and ds.indptr[-1] == ds.n_ratings
    assert np.all(np.diff(ds.indptr) > 0)
    for u in range(ds.n_users):
        assert np.all(np.diff(ds.timestamps[ds.user_slice(u)]) >= 0)
    np.testing.assert_array_equal(ds.user_ids, np.sort(frame["userId"].unique()))
    np.testing.assert_array_equal(ds.item_ids, np.sort(frame["movieId"].unique()))


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 300),  # items
    st.integers(1, 6),  # dim
    st.integers(1, 4),  # batch
    st.integers(1, 12),  # k
    st.sampled_from(["dot", "cosine", "euclidean"]),
    st.integers(0, 2**31 - 1),
    st.booleans(),  # duplicated vectors (exact ties)
)
def test_topk_matches_brute_force(n, d, b, k, metric, seed, duplicates):
    rng = np.random.default_rng(seed)
    k = min(k, n)
    v = rng.normal(size=(n, d)).astype(np.float32)
    if duplicates:
        v[rng.integers(0, n, n // 2)] = v[0]
    a = rng.normal(size=(b, d))
    exclude = rng.random((b, n)) < 0.3
    ranker = Ranker(v, metric)
    items, scores = ranker.topk(a, k, exclude)
    full = ranker.scores(a)
    full[exclude] = -np.inf
    for r in range(b):
        allowed = np.flatnonzero(~exclude[r])
        want = allowed[np.lexsort((allowed, -full[r, allowed]))][:k]
        got = items[r][items[r] >= 0]
        np.testing.assert_allclose(scores[r, : len(got)], full[r, got], rtol=1e-12)
        np.testing.assert_array_equal(got, want)
