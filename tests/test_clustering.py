"""k-means over item vectors (``MovieRecDiscrete-v0``'s clusters)."""

import warnings

import numpy as np
import pytest

from recgym.clustering import kmeans


def test_kmeans_separates_obvious_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 0.05, (30, 2)) for c in ([0, 0], [5, 5], [0, 5])])
    labels = kmeans(x, 3, rng=1)
    assert all(len(set(labels[i * 30 : (i + 1) * 30])) == 1 for i in range(3))
    assert len(set(labels)) == 3


def test_kmeans_fills_every_cluster_even_with_duplicate_points():
    """No cluster is left empty (an empty one has a NaN centre: a RuntimeWarning, an error here)."""
    x = np.zeros((6, 2))
    x[5] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = kmeans(x, 4, rng=0)
    assert labels.dtype == np.int64 and sorted(set(labels.tolist())) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("vectors", "k", "match"),
    [
        (np.zeros((5, 2)), 6, r"k=6 must be an integer in \[1, 5\]"),
        (np.zeros((5, 2)), 0, r"k=0 must be"),
        (np.zeros((5, 2)), 2.0, r"k=2.0 must be an integer"),
        (np.zeros(5), 2, r"shape \(5,\); kmeans needs an \(n, d\) matrix"),
    ],
)
def test_kmeans_bad_input_names_the_value(vectors, k, match):
    with pytest.raises(ValueError, match=match):
        kmeans(vectors, k)
