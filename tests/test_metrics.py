"""Metric functions on hand-built cases with known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from agents import metrics
from agents.metrics import MetricWarning


def test_hit_ndcg_mrr():
    slate = [10, 20, 30, 40]
    assert metrics.hit_rate(slate, {30}) == 1.0
    assert metrics.hit_rate(slate, {99}) == 0.0
    # one relevant item at rank 3: DCG = 1/log2(4) = 0.5, IDCG = 1
    assert metrics.ndcg(slate, {30}) == pytest.approx(0.5)
    # two relevant at ranks 1 and 4: DCG = 1 + 1/log2(5); IDCG = 1 + 1/log2(3)
    assert metrics.ndcg(slate, {10, 40}) == pytest.approx(
        (1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    )
    # more relevant items than the slate holds: IDCG over k positions
    ideal = sum(1 / math.log2(p + 1) for p in range(1, 5))
    assert metrics.ndcg(slate, set(range(100, 200)) | {10}) == pytest.approx(1 / ideal)
    assert metrics.ndcg([1, 2], {1, 2, 3}) == pytest.approx(1.0)
    assert metrics.reciprocal_rank(slate, {40, 20}) == 0.5
    assert metrics.reciprocal_rank(slate, {99}) == 0.0


def test_empty_relevant_set_warns_and_is_nan():
    for fn in (metrics.hit_rate, metrics.ndcg, metrics.reciprocal_rank):
        with pytest.warns(MetricWarning, match="no relevant"):
            assert math.isnan(fn([1, 2, 3], set()))
    with pytest.warns(MetricWarning):
        assert all(math.isnan(x) for x in metrics.mean_ci([]))


def test_mean_ci():
    m, lo, hi = metrics.mean_ci([0.1, 0.2, 0.3, 0.4])
    assert m == pytest.approx(0.25)
    half = 3.182446305284263 * np.std([0.1, 0.2, 0.3, 0.4], ddof=1) / 2  # t(0.975, 3)
    assert (lo, hi) == pytest.approx((0.25 - half, 0.25 + half))
    assert math.isnan(metrics.mean_ci([0.5])[1])
    assert metrics.mean_ci([1.0, float("nan"), 3.0])[0] == 2.0
    assert metrics.mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)  # no spread: the point itself


def test_mean_ci_is_the_student_t_interval():
    """The interval the quality benchmark reports over seeds (its half-width)."""
    values = [0.1, 0.3, 0.2]
    mean, low, high = metrics.mean_ci(values)
    half = (high - low) / 2
    sd = stats.tstd(values)
    assert mean == pytest.approx(0.2)
    assert half == pytest.approx(stats.t.ppf(0.975, 2) * sd / math.sqrt(3))
    with pytest.warns(MetricWarning):
        assert math.isnan(metrics.mean_ci([0.5])[1]) and math.isnan(metrics.mean_ci([])[0])


def test_coverage_diversity_novelty():
    assert metrics.coverage([1, 2, 2, 3], 10) == 0.3
    e = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # pairs (0,1): distance 1; (0,2): 2; (1,2): 1 -> mean 4/3
    assert metrics.intra_list_diversity(np.array([[0, 1, 2]]), e) == pytest.approx(4 / 3)
    counts = np.array([9, 0, 3])
    # item 0: -log2(10/11); item 1: -log2(1/11)
    want = (-math.log2(10 / 11) - math.log2(1 / 11)) / 2
    assert metrics.novelty(np.array([0, 1]), counts, 10) == pytest.approx(want)
