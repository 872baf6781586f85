"""User and temporal splits: disjoint, reproducible, leak-free windows."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import frame

from recgym.data import Dataset, split_users, synthetic_dataset, temporal_split
from recgym.errors import ConfigError


@pytest.fixture(scope="module")
def ds():
    return synthetic_dataset(n_users=100, n_items=300, n_ratings=4000, rng=2)


def test_user_split_partitions_users(ds):
    s = split_users(ds, (0.7, 0.2, 0.1), rng=4)
    sets = s.user_sets
    assert [len(sets[k]) for k in ("train", "val", "test")] == [70, 20, 10]
    together = np.concatenate([sets["train"], sets["val"], sets["test"]])
    np.testing.assert_array_equal(np.sort(together), np.arange(ds.n_users))
    np.testing.assert_array_equal(s.train_mask, np.isin(ds.interaction_users, sets["train"]))


def test_user_split_is_reproducible_and_seeded(ds):
    a, b, c = split_users(ds, rng=1), split_users(ds, rng=1), split_users(ds, rng=2)
    np.testing.assert_array_equal(a.user_sets["test"], b.user_sets["test"])
    assert not np.array_equal(a.user_sets["test"], c.user_sets["test"])


def test_user_split_episodes_replay_whole_users(ds):
    s = split_users(ds, rng=0)
    ep = s.episodes(ds, "test", frame_size=10)
    np.testing.assert_array_equal(ep.users, s.user_sets["test"])
    np.testing.assert_array_equal(ep.future_start, ds.indptr[ep.users] + 10)
    np.testing.assert_array_equal(ep.end, ds.indptr[ep.users + 1])


def test_bad_fractions():
    ds = synthetic_dataset(n_users=10, n_items=100, n_ratings=200)
    with pytest.raises(ConfigError, match="summing to 1"):
        split_users(ds, (0.5, 0.1, 0.1))
    with pytest.raises(ConfigError, match="too few"):
        split_users(ds, (0.02, 0.49, 0.49))


def _tiny() -> Dataset:
    # user 1: 4 before t=100, 2 in [100, 200), 1 after; user 2: 2 before, 3 after 200.
    rows = [(1, m, 4.0, t) for m, t in [(1, 10), (2, 20), (3, 30), (4, 40), (5, 110), (6, 120)]]
    rows += [(1, 7, 2.0, 300)]
    rows += [(2, m, 3.0, t) for m, t in [(1, 50), (2, 60), (3, 210), (4, 220), (5, 230)]]
    return Dataset.from_frame(frame(rows))


def test_temporal_windows():
    ds = _tiny()
    s = temporal_split(ds, cutoffs=(100, 200))
    np.testing.assert_array_equal(s.train_mask, ds.timestamps < 100)
    train = s.episodes(ds, "train", frame_size=2)
    # user 1 replays items 3, 4 after a 2-item seed; user 2 has no future before t=100
    assert train.users.tolist() == [0] and train.n_skipped == 1
    assert ds.items[train.future_start[0] : train.end[0]].tolist() == [2, 3]
    val = s.episodes(ds, "val", frame_size=2)
    assert val.users.tolist() == [0]
    assert ds.items[val.future_start[0] : val.end[0]].tolist() == [4, 5]
    test = s.episodes(ds, "test", frame_size=2)
    assert test.users.tolist() == [0, 1]
    assert ds.items[test.future_start[0] : test.end[0]].tolist() == [6]
    assert ds.items[test.future_start[1] : test.end[1]].tolist() == [2, 3, 4]
    # a longer frame needs a longer history: user 2 has only 2 interactions before t=200
    assert s.episodes(ds, "test", frame_size=3).users.tolist() == [0]


def test_temporal_default_cutoffs_are_quantiles(ds):
    s = temporal_split(ds)
    assert s.cutoffs == tuple(int(x) for x in np.quantile(ds.timestamps, [0.8, 0.9]))
    with pytest.raises(ConfigError):
        temporal_split(ds, cutoffs=(5, 1))
