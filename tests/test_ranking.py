"""The decoder: exact top-k with exclusions, identical across batch sizes and backends."""

from __future__ import annotations

import numpy as np
import pytest

from recgym.errors import ConfigError
from recgym.ranking import GROUP, METRICS, Ranker, top_candidates, topk_of_scores


def brute(ranker: Ranker, actions, k, exclude):
    s = ranker.scores(actions)
    s[exclude] = -np.inf
    return np.lexsort((np.broadcast_to(np.arange(s.shape[1]), s.shape), -s), axis=1)[:, :k]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(2000, 16)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True), rng


@pytest.mark.parametrize("metric", METRICS)
def test_matches_brute_force_and_batch_equals_single(data, metric):
    v, rng = data
    v = v * rng.uniform(0.5, 2.0, (len(v), 1)).astype(np.float32)  # metrics differ
    ranker = Ranker(v, metric)
    actions = rng.normal(size=(32, 16))
    exclude = rng.random((32, len(v))) < 0.05
    items, scores = ranker.topk(actions, 10, exclude)
    np.testing.assert_array_equal(items, brute(ranker, actions, 10, exclude))
    assert not exclude[np.arange(32)[:, None], items].any()
    assert np.all(np.diff(scores, axis=1) <= 0)
    singles = np.stack([ranker.topk(actions[i], 10, exclude[i])[0][0] for i in range(32)])
    np.testing.assert_array_equal(singles, items)


@pytest.mark.parametrize("metric", METRICS)
def test_penalty_gives_the_same_ranking_as_exclude(data, metric):
    v, rng = data
    ranker = Ranker(v[:1990], metric)  # 1,990 items: padding columns up to 2,016
    actions = rng.normal(size=(16, 16))
    exclude = rng.random((16, 1990)) < 0.3
    penalty = ranker.penalty(exclude)
    assert penalty.shape == (16, ranker.padded_width) == (16, 2016)
    assert np.isneginf(penalty[:, 1990:]).all()
    np.testing.assert_array_equal(np.isneginf(penalty[:, :1990]), exclude)
    want = ranker.topk(actions, 10, exclude)
    got = ranker.topk(actions, 10, exclude, penalty)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    with pytest.raises(ConfigError, match=r"penalty has shape \(16, 1990\); expected"):
        ranker.topk(actions, 10, exclude, penalty[:, :1990])


def test_duplicate_vectors_tie_exactly_like_brute_force(data):
    """Ties at the slate boundary are expanded and broken by the lower index."""
    v, rng = data
    dup = v[rng.integers(0, 150, size=2000)]  # 2,000 items, 150 distinct vectors
    ranker = Ranker(dup)
    actions = rng.normal(size=(32, 16))
    actions[0] = 0.0  # every item ties
    exclude = rng.random((32, 2000)) < 0.1
    s = ranker.scores(actions)
    s[exclude] = -np.inf
    boundary = -np.sort(-s, axis=1)[:, 19:20]  # each row's 20th best exact score
    assert (np.count_nonzero(s >= boundary, axis=1)[1:] > 20).sum() > 1  # not only row 0
    rows, items = ranker._candidates_numpy(
        actions.astype(np.float32), 20, exclude, ranker.penalty(exclude)
    )
    chosen = np.zeros_like(exclude)
    chosen[rows, items] = True
    assert chosen[s >= boundary].all()  # every tie at the boundary is a candidate
    items, _ = ranker.topk(actions, 10, exclude, ranker.penalty(exclude))
    np.testing.assert_array_equal(items, brute(ranker, actions, 10, exclude))
    singles = np.stack([ranker.topk(actions[i], 10, exclude[i])[0][0] for i in range(32)])
    np.testing.assert_array_equal(singles, items)


@pytest.mark.parametrize("backend", ["torch", "faiss"])
@pytest.mark.parametrize("metric", METRICS)
def test_backends_agree_with_numpy(data, backend, metric):
    pytest.importorskip(backend)
    v, rng = data
    actions = rng.normal(size=(8, 16))
    exclude = rng.random((8, len(v))) < 0.1
    want = Ranker(v, metric).topk(actions, 10, exclude)
    got = Ranker(v, metric, backend=backend).topk(actions, 10, exclude)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1])


def test_fewer_allowed_items_than_k_are_padded():
    ranker = Ranker(np.eye(5, dtype=np.float32))
    exclude = np.array([True, True, True, False, False])
    items, scores = ranker.topk(np.ones(5), 3, exclude)
    assert items.tolist() == [[3, 4, -1]] and np.isneginf(scores[0, 2])


def test_ties_break_by_lower_index():
    ranker = Ranker(np.ones((50, 4), dtype=np.float32))
    assert ranker.topk(np.ones(4), 5)[0].tolist() == [[0, 1, 2, 3, 4]]
    assert topk_of_scores(np.array([2.0, 5.0, 5.0, 1.0, 5.0]), 3).tolist() == [[1, 2, 4]]
    ex = np.array([False, True, False, False, False])
    assert topk_of_scores(np.array([2.0, 5.0, 5.0, 1.0, 5.0]), 3, ex).tolist() == [[2, 4, 0]]


@pytest.mark.parametrize("n", [GROUP * 100, 150])  # grouped path; short rows
def test_top_candidates_hold_the_largest_and_their_ties(data, n):
    _, rng = data
    s = rng.normal(size=(20, n)).astype(np.float32)
    s[:, ::7] = -np.inf  # excluded items
    boundary = np.sort(s[3])[-20]  # the 20th largest value of row 3...
    s[3, np.flatnonzero(s[3] < boundary)[:2]] = boundary  # ...now shared by two more items
    s[5, 20:] = -np.inf  # row 5 has 17 finite values, fewer than 20
    rows, items = top_candidates(s, 20)
    assert np.all(np.diff(rows) >= 0)
    chosen = np.zeros(s.shape, dtype=bool)
    chosen[rows, items] = True
    assert not np.isneginf(s[chosen]).any()
    at_least_20th = s >= np.sort(s, axis=1)[:, -20:-19]
    np.testing.assert_array_equal(chosen & at_least_20th, at_least_20th & np.isfinite(s))
    assert chosen[3].sum() >= 22
    np.testing.assert_array_equal(chosen[5], np.isfinite(s[5]))


def test_errors():
    with pytest.raises(ConfigError, match="Did you mean 'cosine'"):
        Ranker(np.eye(3), "cosin")
    with pytest.raises(ConfigError, match=r"metric='pearson'.*'correlation'\]"):
        Ranker(np.eye(3), "pearson")  # the message lists every choice
    with pytest.raises(ConfigError, match="k=4"):
        Ranker(np.eye(3)).topk(np.ones(3), 4)
    with pytest.raises(ConfigError, match="dimension 3"):
        Ranker(np.eye(3)).topk(np.ones(2), 1)
    with pytest.raises(ConfigError, match="finite"):
        Ranker(np.full((3, 2), np.nan))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("metric", METRICS)
def test_near_ties_rank_exactly_in_float64(data, backend, metric):
    """Items closer than float32 rounding still come out in their float64 order."""
    pytest.importorskip(backend)
    v, rng = data
    near = v[0] + rng.normal(scale=3e-7, size=(300, 16))  # 300 items, scores ~1e-7 apart
    vectors = np.concatenate([v[1:], near]).astype(np.float32)
    ranker = Ranker(vectors, metric, backend=backend)
    actions = v[0] * rng.uniform(1.0, 4.0, (24, 1)) + rng.normal(scale=0.01, size=(24, 16))
    exclude = rng.random((24, len(vectors))) < 0.05
    items, _ = ranker.topk(actions, 10, exclude)
    np.testing.assert_array_equal(items, brute(ranker, actions, 10, exclude))


def scipy_correlation(actions: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``scipy.spatial.distance.correlation`` of every (action, item) pair, pair by pair."""
    distance = pytest.importorskip("scipy.spatial.distance")
    v = vectors.astype(np.float64)
    return np.array([[distance.correlation(a, x) for x in v] for a in actions])


def ranked_by_distance(dist: np.ndarray, exclude: np.ndarray, k: int) -> np.ndarray:
    """Per row, the ``k`` allowed items of smallest distance, ties by lower index."""
    d = np.where(exclude, np.inf, dist)
    return np.lexsort((np.broadcast_to(np.arange(d.shape[1]), d.shape), d), axis=1)[:, :k]


@pytest.mark.parametrize("backend", ["numpy", "torch", "faiss"])
def test_correlation_matches_scipy_on_random_vectors(data, backend):
    """Score = 1 - scipy's correlation distance; ranking = smallest distance first."""
    pytest.importorskip(backend)
    v, rng = data
    v = (v[:600] * rng.uniform(0.2, 3.0, (600, 1)) + rng.normal(size=(600, 1))).astype(np.float32)
    actions = rng.normal(size=(12, 16)) + rng.normal(scale=2.0, size=(12, 1))  # offset means
    exclude = rng.random((12, 600)) < 0.1
    dist = scipy_correlation(actions, v)
    ranker = Ranker(v, "correlation", backend=backend)
    np.testing.assert_allclose(ranker.scores(actions), 1.0 - dist, rtol=0, atol=1e-12)
    items, scores = ranker.topk(actions, 10, exclude)
    np.testing.assert_array_equal(items, ranked_by_distance(dist, exclude, 10))
    np.testing.assert_allclose(scores, 1.0 - np.take_along_axis(dist, items, 1), atol=1e-12)
    # correlation ignores each vector's mean and scale: cosine on these vectors ranks otherwise
    assert not np.array_equal(items, Ranker(v, "cosine").topk(actions, 10, exclude)[0])
    shifted = actions * 3.0 + 5.0  # same correlation with every item
    np.testing.assert_array_equal(ranker.topk(shifted, 10, exclude)[0], items)


def test_correlation_of_constant_vectors_is_zero():
    """Undefined correlation (a constant action or item) scores 0 instead of NaN."""
    v = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 2.0], [3.0, 1.0, 0.0]], dtype=np.float32)
    ranker = Ranker(v, "correlation")
    scores = ranker.scores(np.array([[0.5, 0.5, 0.5], [1.0, 2.0, 4.0]]))
    np.testing.assert_allclose(scores[0], 0.0)
    assert scores[1, 1] == 0.0 and scores[1, 0] > 0.9 > -0.9 > scores[1, 2]
    items, _ = ranker.topk(np.zeros(3), 3)  # every item ties: lower index first
    assert items.tolist() == [[0, 1, 2]]


def test_correlation_matches_scipy_on_real_embeddings(real_dir):
    """The decoder of MovieRec(metric="correlation") against scipy on the real SVD vectors."""
    distance = pytest.importorskip("scipy.spatial.distance")
    from recgym.envs import MovieRecEnv

    env = MovieRecEnv(data_dir=real_dir, metric="correlation")
    emb = env.context.embeddings
    rng = np.random.default_rng(0)
    actions = np.concatenate(
        [rng.uniform(-1, 1, (8, emb.shape[1])), emb[rng.integers(0, len(emb), 8)]]
    ).astype(np.float32)
    dist = distance.cdist(actions.astype(np.float64), emb.astype(np.float64), "correlation")
    ranker = env.context.ranker
    np.testing.assert_allclose(ranker.scores(actions), 1.0 - dist, rtol=0, atol=1e-12)
    env.reset(seed=0)
    exclude = np.broadcast_to(env.blocked_mask(), dist.shape)
    want = ranked_by_distance(dist, exclude, 10)
    got = np.stack([env.decode(a)[0] for a in actions])
    # as good as scipy's slate, and the same slate (duplicate SVD vectors, e.g. an action
    # copied from an item, tie exactly in both and go to the lower index)
    np.testing.assert_allclose(
        np.take_along_axis(dist, got, 1), np.take_along_axis(dist, want, 1), atol=1e-12
    )
    np.testing.assert_array_equal(got, want)
