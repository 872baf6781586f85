"""Recommending for a user as they are now: their latest movies, everything rated excluded."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from helpers import scenario_dataset, scenario_env

from agents.recommend import recommend, user_state
from recgym.errors import ConfigError, UnknownUserError

DAY = 86_400
# user 1 rates two more movies on 1970-01-03, after the scenario's twelve on 1970-01-01
LATER = [(1, 13, 4.0, 2 * DAY + 10), (1, 14, 2.0, 2 * DAY + 20)]


@pytest.fixture(scope="module")
def env():
    return scenario_env(dataset=scenario_dataset(LATER))


class Toward:
    """A model whose action is the embedding of one movie (identity embeddings)."""

    def __init__(self, movie: int, n: int = 30) -> None:
        """Always act toward ``movie``."""
        self.action = np.eye(n, dtype=np.float32)[movie - 1]
        self.seen = None

    def predict(self, obs, deterministic=True):
        self.seen = obs
        return self.action, None


def test_state_is_the_users_latest_movies(env):
    state = user_state(env, 1)
    assert state.items[-2:].tolist() == [12, 13]  # movies 13 and 14: their last two
    eye = np.eye(30, dtype=np.float32)
    expected = np.concatenate([eye[12], eye[13], env.dataset.scale_ratings(np.array([4.0, 2.0]))])
    np.testing.assert_array_equal(state.observation, expected)
    assert state.rated.sum() == 14 and state.rated[:14].all()
    assert "now: their latest rating, 1970-01-03" == state.describe()
    # an episode of the environment starts from their *first* movies instead
    obs, _ = env.reset(options={"user_id": 1})
    assert not np.array_equal(obs, state.observation)


def test_as_of_cuts_the_log_at_the_end_of_that_day(env):
    state = user_state(env, 1, as_of=date(1970, 1, 2))
    assert state.items[-2:].tolist() == [10, 11] and state.rated.sum() == 12
    assert state.describe() == "as of 1970-01-02 (their latest rating by then: 1970-01-01)"
    with pytest.raises(ConfigError, match="User 1 has 0 ratings up to 1969-12-31"):
        user_state(env, 1, as_of=date(1969, 12, 31))


def test_recommendations_exclude_everything_rated(env):
    model = Toward(movie=13)  # points at a movie user 1 has rated: it must not come back
    items, scores = recommend(model, env, user_state(env, 1), k=3)
    assert model.seen is not None and set(items.tolist()).isdisjoint(range(14))
    assert items.tolist() == [14, 15, 16]  # all tied at 0: lowest indices first
    # as of 1970-01-02, movie 13 was not rated yet: it is the best match
    items, _ = recommend(Toward(movie=13), env, user_state(env, 1, date(1970, 1, 2)), k=3)
    assert items[0] == 12
    with pytest.raises(ConfigError, match="-k 17 must be between 1 and 16"):
        recommend(model, env, user_state(env, 1), k=17)


def test_unknown_user(env):
    with pytest.raises(UnknownUserError, match="User 99 is not in scenario"):
        user_state(env, 99)
