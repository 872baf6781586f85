"""MovieRec's replay semantics on a hand-built scenario where every answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from helpers import SCENARIO_RATINGS, act, frame, movies, scenario_dataset, scenario_env

from recgym.data import Dataset

W = 1.0 / np.log2(np.arange(3) + 2.0)
W = W / W.sum()


def scale(r: float) -> float:
    return (r - 2.75) / 2.25


def ids(env, items) -> list[int]:
    return env.dataset.item_ids[np.asarray(items, dtype=np.int64)].tolist()


@pytest.fixture
def env():
    e = scenario_env()
    e.reset(options={"user_id": int(e.episode_user_ids[0])})
    return e


def test_reset_seeds_the_state_with_the_first_frame(env):
    obs, info = env.reset(options={"user_id": int(env.episode_user_ids[0])})
    assert info["n_history"] == 2 and info["n_future"] == 10
    eye = np.eye(30, dtype=np.float32)
    np.testing.assert_array_equal(obs[:60], np.concatenate([eye[0], eye[1]]))
    np.testing.assert_allclose(obs[60:], [scale(4.0), scale(3.0)])


def test_hit_reward_and_transition(env):
    obs, reward, terminated, truncated, info = env.step(act(5, 20, 21))
    assert ids(env, info["slate"]) == [5, 20, 21]
    assert info["hits"].tolist() == [True, False, False]
    np.testing.assert_array_equal(info["hit_ratings"][:1], [2.0])
    assert (info["hit_ratings"][1:] == 0).all()
    assert reward == pytest.approx(W[0] * scale(2.0))
    assert ids(env, info["consumed"]) == [5]
    assert ids(env, info["next_items"]) == [3]  # the next logged item, before this step
    eye = np.eye(30, dtype=np.float32)
    np.testing.assert_array_equal(obs[:60], np.concatenate([eye[1], eye[4]]))  # [2, 5]
    np.testing.assert_allclose(obs[60:], [scale(3.0), scale(2.0)])
    assert (terminated, truncated, info["n_future_left"]) == (False, False, 9)


def test_no_hit_consumes_the_next_logged_item(env):
    env.step(act(5, 20, 21))
    obs, reward, *_, info = env.step(act(22, 23, 24))
    assert reward == 0.0 and not info["hits"].any()
    assert ids(env, info["consumed"]) == [3]
    eye = np.eye(30, dtype=np.float32)
    np.testing.assert_array_equal(obs[:60], np.concatenate([eye[4], eye[2]]))  # [5, 3]


def test_several_hits_are_consumed_in_log_order(env):
    _, reward, *_, info = env.step(act(9, 7, 20))
    assert info["hits"].tolist() == [True, True, False]
    assert ids(env, info["consumed"]) == [7, 9]
    assert reward == pytest.approx(W[0] * scale(3.0) + W[1] * scale(0.5))
    hist, _ = env.history()
    assert ids(env, hist) == [1, 2, 7, 9]


def env_with_user(user: int, **kwargs):
    """A scenario env of whichever split holds ``user``, reset to that user."""
    for split in ("train", "val", "test"):
        e = scenario_env(split=split, **kwargs)
        if user in e.episode_user_ids:
            e.reset(options={"user_id": user})
            return e
    raise AssertionError(f"user {user} in no split")


def test_hit_discount_weighs_hits_by_how_far_ahead_they_come():
    e = scenario_env(hit_discount=0.5)
    e.reset(options={"user_id": int(e.episode_user_ids[0])})
    # movie 3 is next (0 ahead), movie 6 has 3, 4, 5 ahead of it, then 3 is consumed and
    # movie 6 has 4, 5 ahead
    _, reward, *_, info = e.step(act(3, 6, 20))
    assert reward == pytest.approx(W[0] * scale(5.0) + W[1] * scale(4.5) * 0.5**3)
    _, reward, *_ = e.step(act(9, 21, 22))  # 4, 5, 7, 8 ahead (6 was consumed)
    assert reward == pytest.approx(W[0] * scale(3.0) * 0.5**4)
    plain = scenario_env()
    plain.reset(options={"user_id": int(plain.episode_user_ids[0])})
    assert plain.step(act(3, 6, 20))[1] == pytest.approx(W[0] * scale(5.0) + W[1] * scale(4.5))


def test_hit_discount_counts_items_of_the_next_second_as_next():
    log = [(1, 1), (2, 2), (3, 5), (4, 5), (5, 9)]
    rows = [(u, m, 4.0, t) for u in range(1, 13) for m, t in log]
    ds = Dataset.from_frame(frame(rows), movies(list(range(1, 31))), rating_range=(0.5, 5.0))
    e = scenario_env(dataset=ds, hit_discount=0.5)
    # movies 3 and 4 share the next second: both count as next; movie 5 has both ahead
    e.reset(seed=0)
    assert e.step(act(4, 5, 20))[1] == pytest.approx((W[0] + W[1] * 0.5**2) * scale(4.0))


def test_top_rated_hits_score_one_and_bottom_rated_minus_one():
    rows = [(99, m, 5.0, m) for m in range(1, 6)] + [(98, m, 0.5, m) for m in range(1, 6)]
    ds = scenario_dataset(rows)
    assert env_with_user(99, dataset=ds).step(act(3, 4, 5))[1] == pytest.approx(1.0)
    assert env_with_user(98, dataset=ds).step(act(3, 4, 5))[1] == pytest.approx(-1.0)
    # a slate of hits rated 5, 5, 4.5 scores just below 1
    assert 0.9 < env_with_user(1).step(act(3, 8, 6))[1] < 1.0


def test_unrated_reward(env):
    e = scenario_env(unrated_reward=-0.1)
    e.reset(seed=0)
    assert e.step(act(20, 21, 22))[1] == pytest.approx(-0.1)


def test_shown_items_are_not_shown_again(env):
    env.step(act(20, 21, 22))
    _, _, _, _, info = env.step(act(20, 21, 22, 23, 24, 25))
    assert ids(env, info["slate"]) == [23, 24, 25]


def test_allow_repeats_turns_the_mask_off():
    e = scenario_env(allow_repeats=True)
    e.reset(seed=0)
    first = e.step(act(20, 21, 22))[4]["slate"]
    second = e.step(act(20, 21, 22))[4]["slate"]
    np.testing.assert_array_equal(first, second)


def test_a_static_policy_cannot_show_one_unrated_slate_forever():
    """The failure the shown-item mask exists for: with it, a constant action keeps moving."""
    e = scenario_env()
    e.reset(seed=0)
    action = act(20, 21, 22)
    action[:12] = -1.0  # the user's movies rank last: every slate is a miss
    shown = []
    for _ in range(5):
        _, reward, *_, info = e.step(action)
        assert reward == 0.0
        shown += ids(e, info["slate"])
    assert len(shown) == len(set(shown))  # 15 distinct items in 5 steps
    repeats = scenario_env(allow_repeats=True)  # without the mask: the same slate forever
    repeats.reset(seed=0)
    slates = {tuple(ids(repeats, repeats.step(action)[4]["slate"])) for _ in range(5)}
    assert slates == {(20, 21, 22)}


def test_least_recently_shown_are_released_when_the_catalogue_runs_out():
    # 12-item catalogue; each user rates movies 1..6: history {1, 2}, future [3, 4, 5, 6].
    rows = [(u, m, 3.0, 10 * m) for u in range(1, 13) for m in range(1, 7)]
    ds = Dataset.from_frame(frame(rows), movies(list(range(1, 13))), rating_range=(0.5, 5.0))
    e = scenario_env(dataset=ds, embedding=np.eye(12, dtype=np.float32))
    e.reset(seed=0)
    action = act(12, 11, 10, n=12)
    action[2:6] = -1.0  # the future items rank last
    slates = [ids(e, e.step(action)[4]["slate"]) for _ in range(3)]
    assert slates[0] == [12, 11, 10]  # misses; movie 3 is consumed
    assert slates[1] == [7, 8, 9]  # misses; movie 4 consumed: only 5 and 6 are left...
    assert slates[2] == [12, 5, 6]  # ...so the oldest shown (12, rank 1 of step 1) is back


def test_log_exhausted_truncates():
    e = scenario_env(allow_repeats=True)  # the same unrated slate every step: one item per step
    e.reset(seed=0)
    steps = 0
    for steps in range(1, 21):  # noqa: B007 - the count is the assertion
        _, _, terminated, truncated, info = e.step(act(20, 21, 22))
        if truncated:
            break
    assert truncated and not terminated and info["n_future_left"] == 0
    assert steps == 10  # 10 future items
    with pytest.raises(ResetNeeded, match="ended"):
        e.step(act(1))


def test_patience_terminates():
    e = scenario_env(patience=2)
    e.reset(seed=0)
    assert e.step(act(20, 21, 22))[2:4] == (False, False)
    _, _, terminated, truncated, _ = e.step(act(23, 24, 25))
    assert terminated and not truncated
    e.reset(seed=0)
    e.step(act(20, 21, 22))
    e.step(act(5, 21, 22))  # a hit resets the count
    assert e.step(act(23, 24, 25))[2] is False


def test_next_items_hold_every_item_of_the_next_second():
    rows = [
        (u, m, 4.0, t)
        for u in range(1, 13)
        for m, t in [(1, 1), (2, 2), (3, 5), (4, 5), (5, 5), (6, 9)]
    ]
    ds = Dataset.from_frame(frame(rows), movies(list(range(1, 31))))
    e = scenario_env(dataset=ds)
    e.reset(seed=0)
    info = e.step(act(20, 21, 22))[4]
    assert sorted(ids(e, info["next_items"])) == [3, 4, 5]
    assert len(ids(e, info["consumed"])) == 1
    info = e.step(act(20, 21, 22))[4]
    assert len(info["next_items"]) == 2  # the rest of that second


def test_reset_by_user_and_errors(env):
    from recgym.errors import ConfigError, UnknownUserError

    uid = int(env.episode_user_ids[3])
    assert env.reset(options={"user_id": uid})[1]["user_id"] == uid
    with pytest.raises(UnknownUserError, match="not in scenario"):
        env.reset(options={"user_id": 12345})
    test_user = int(scenario_env(split="test").episode_user_ids[0])
    with pytest.raises(UnknownUserError, match="'train' split"):
        env.reset(options={"user_id": test_user})
    with pytest.raises(ConfigError, match="out of range"):
        env.reset(options={"episode": 99})


def test_seeded_reset_is_reproducible_and_construction_draws_nothing():
    e = scenario_env()
    assert e._np_random is None and e._core.episode[0] == -1
    users = [e.reset(seed=s)[1]["user_id"] for s in (1, 2, 1)]
    assert users[0] == users[2]


def test_bad_actions(env):
    with pytest.raises(ValueError, match=r"shape \(3,\); expected \(30,\)"):
        env.step(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(np.full(30, np.nan, dtype=np.float32))
    fresh = scenario_env()
    with pytest.raises(ResetNeeded, match="reset"):
        fresh.step(act(1))


def test_step_slate_obeys_the_same_rules(env):
    hist = env.history()[0]
    with pytest.raises(ValueError, match="blocked"):
        env.step_slate(np.array([hist[0], 20, 21]))
    with pytest.raises(ValueError, match="distinct"):
        env.step_slate(np.array([20, 20, 21]))
    info = env.step_slate(np.array([4, 19, 20]))[4]
    assert ids(env, info["slate"]) == [5, 20, 21] and info["hits"][0]


def test_skipped_users_are_counted():
    short = [(500, m, 3.0, m) for m in (1, 2)]  # history only, no future
    e = scenario_env(dataset=scenario_dataset(short), split_strategy="temporal", split="test")
    assert e.n_skipped_users >= 1


def test_temporal_split_replays_after_the_cut_off():
    e = scenario_env(split_strategy="temporal", split="test")
    t_val, t_test = e.context.split.cutoffs
    obs, info = e.reset(seed=0)
    future_ts = e.future()[2]
    assert (future_ts >= t_test).all()
    hist = e.history()[0]
    assert len(hist) == info["n_history"] and info["n_history"] >= 2


def test_simulator_reward_scores_every_item():
    e = scenario_env(reward="simulator")
    e.reset(seed=0)
    rewards = [e.step(act(20 + i, 25, 26))[1] for i in range(3)]
    assert all(-1 <= r <= 1 for r in rewards) and any(r != 0 for r in rewards)


def test_render_ansi_and_human(capsys):
    e = scenario_env(render_mode="ansi")
    e.reset(seed=0)
    text = e.render()
    assert "last 2 watched" in text and "Movie 1" in text
    e.step(act(5, 20, 21))
    text = e.render()
    assert "Recommended" in text and "Movie 20" in text and "hit" in text
    h = scenario_env(render_mode="human")
    h.reset(seed=0)
    h.step(act(5, 20, 21))
    assert "Recommended" in capsys.readouterr().out


def test_scenario_ratings_match_the_log():
    ds = scenario_dataset()
    sl = ds.user_slice(0)
    assert ds.ratings[sl].tolist() == SCENARIO_RATINGS


def test_a_sibling_replays_as_a_fresh_env_with_the_same_settings():
    kw = {"hit_discount": 0.5, "patience": 2, "unrated_reward": -0.1}
    env = scenario_env(**kw)
    env.reset(seed=0)
    env.step(act(3, 20, 21))  # the original is mid-episode; the sibling starts with none
    twin, fresh = env.sibling(), scenario_env(**kw)
    assert twin.context is env.context and twin.hit_discount == 0.5
    with pytest.raises(ResetNeeded):
        twin.step(act(3, 4, 5))
    user = int(env.episode_user_ids[1])
    for e in (twin, fresh):
        e.reset(options={"user_id": user})
    for action in (act(3, 6, 20), act(22, 23, 24), act(9, 25, 26)):
        got, want = twin.step(action), fresh.step(action)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1:4] == want[1:4]
    assert ids(env, env.history()[0]) == [1, 2, 3]  # the original's episode is untouched
