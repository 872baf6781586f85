"""Ties in time are broken by a seeded hash of (user, movie): reproducible, and not movieId."""

from __future__ import annotations

import numpy as np
from helpers import frame

from recgym.data import Dataset


def _order(ds: Dataset, user_id: int) -> list[int]:
    return ds.item_ids[ds.items[ds.user_slice(ds.user_index(user_id))]].tolist()


ROWS = [(1, m, 4.0, 100) for m in range(1, 13)] + [(1, 50, 3.0, 50), (1, 60, 2.0, 200)]


def test_time_order_first_then_ties():
    ds = Dataset.from_frame(frame(ROWS))
    order = _order(ds, 1)
    assert order[0] == 50 and order[-1] == 60
    assert sorted(order[1:-1]) == list(range(1, 13))
    assert order[1:-1] != list(range(1, 13))  # not the file's (= movieId) order


def test_same_seed_same_order_and_file_order_does_not_matter():
    shuffled = frame(ROWS).sample(frac=1.0, random_state=3)
    a = Dataset.from_frame(frame(ROWS), tie_seed=5)
    b = Dataset.from_frame(shuffled, tie_seed=5)
    assert _order(a, 1) == _order(b, 1)


def test_seed_changes_the_tie_order():
    orders = {tuple(_order(Dataset.from_frame(frame(ROWS), tie_seed=s), 1)) for s in range(6)}
    assert len(orders) > 1


def test_other_users_do_not_change_a_users_order():
    alone = Dataset.from_frame(frame(ROWS))
    others = [(2, m, 3.0, 100) for m in range(1, 40)] + [(0, 7, 1.0, 100)]
    crowd = Dataset.from_frame(frame(ROWS + others))
    assert _order(alone, 1) == _order(crowd, 1)


def test_users_not_grouped_in_file_are_grouped():
    rows = [(2, 1, 4.0, 10), (1, 2, 3.0, 5), (2, 3, 5.0, 1), (1, 4, 1.0, 7), (3, 5, 2.0, 3)]
    ds = Dataset.from_frame(frame(rows))
    assert ds.user_ids.tolist() == [1, 2, 3]
    assert _order(ds, 1) == [2, 4]
    assert _order(ds, 2) == [3, 1]
    np.testing.assert_array_equal(ds.indptr, [0, 2, 4, 5])
