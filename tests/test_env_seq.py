"""MovieRecSeq-v0: the same replay as MovieRec-v0, with a padded history as the observation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from helpers import assert_same_info, scenario_dataset, step_alike

import recgym  # noqa: F401
from recgym.envs import MovieRecEnv, MovieRecSeqEnv, MovieRecSeqVectorEnv
from recgym.errors import ConfigError

SYN = {"dataset": "synthetic", "embedding_dim": 8}


def split_obs(obs: np.ndarray, size: int, dim: int):
    """A sequence observation as (embeddings (H, d), ratings (H,), mask (H,))."""
    return (
        obs[: size * dim].reshape(size, dim),
        obs[size * dim : size * (dim + 1)],
        obs[size * (dim + 1) :],
    )


def assert_layout(obs: np.ndarray, env: MovieRecSeqEnv) -> None:
    """The observation holds the last ``history_size`` consumed items, right-aligned."""
    size, dim = env.history_size, env.embedding_dim
    assert obs.shape == (size * (dim + 2),) and obs.dtype == np.float32
    emb, ratings, mask = split_obs(obs, size, dim)
    items, scaled = env.history()
    m = min(len(items), size)
    np.testing.assert_array_equal(mask, np.r_[np.zeros(size - m), np.ones(m)])
    np.testing.assert_array_equal(emb[size - m :], env.context.embeddings[items[-m:]])
    np.testing.assert_array_equal(ratings[size - m :], scaled[-m:])
    assert not emb[: size - m].any() and not ratings[: size - m].any()


def frame_of(obs: np.ndarray, size: int, dim: int, frame: int) -> np.ndarray:
    """The MovieRec-v0 observation held in the last ``frame`` slots."""
    emb, ratings, _ = split_obs(obs, size, dim)
    return np.concatenate([emb[-frame:].ravel(), ratings[-frame:]])


def aimed_actions(env: MovieRecEnv, rng: np.random.Generator) -> np.ndarray:
    """Random actions, or the mean embedding of upcoming items (hits, multi-hit steps)."""
    if rng.random() < 0.5:
        return rng.uniform(-1, 1, env.embedding_dim).astype(np.float32)
    future = env.future()[0]
    return env.context.embeddings[future[: rng.integers(1, 4)]].mean(axis=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {**SYN, "history_size": 30},
        {**SYN, "history_size": 30, "split": "test", "patience": 3, "metric": "correlation"},
        {**SYN, "history_size": 12, "split_strategy": "temporal", "split": "val"},
        {**SYN, "history_size": 30, "reward": "simulator", "frame_size": 4},
    ],
)
def test_same_replay_as_movierec_v0(kwargs):
    """Same actions: same slates, rewards, ends, infos and history; obs ends with v0's frame."""
    seq = MovieRecSeqEnv(**kwargs)
    ref = MovieRecEnv(**{k: v for k, v in kwargs.items() if k != "history_size"})
    assert seq.n_episodes == ref.n_episodes
    np.testing.assert_array_equal(seq.episode_user_ids, ref.episode_user_ids)
    size, dim, frame = seq.history_size, seq.embedding_dim, seq.frame_size
    rng = np.random.default_rng(0)
    n_steps = n_hits = n_padded = 0
    for episode in range(seq.n_episodes):
        if n_steps >= 250:
            break
        obs, info = seq.reset(seed=episode, options={"episode": episode})
        want, want_info = ref.reset(seed=episode, options={"episode": episode})
        assert info == want_info
        done, steps = False, 0
        while not done:
            assert_layout(obs, seq)
            np.testing.assert_array_equal(frame_of(obs, size, dim, frame), want)
            n_padded += int(obs[-size] == 0)
            action = aimed_actions(ref, rng)
            obs, reward, terminated, truncated, info = seq.step(action)
            want, want_reward, want_term, want_trunc, want_info = ref.step(action)
            assert (reward, terminated, truncated) == (want_reward, want_term, want_trunc)
            assert_same_info(info, want_info)
            n_steps, steps = n_steps + 1, steps + 1
            n_hits += int(info["hits"].sum())
            done = terminated or truncated or steps == 60
    assert n_steps >= 250 and n_hits > 20  # hits, multi-hit steps
    if kwargs.get("split_strategy") != "temporal":  # temporal states start with long histories
        assert n_padded > 10


def test_min_history_starts_episodes_earlier_with_padding():
    ref = MovieRecEnv(**SYN)
    env = MovieRecSeqEnv(history_size=40, min_history=2, **SYN)
    assert env.min_history == 2 and env.n_episodes >= ref.n_episodes
    ep = env.context.episodes
    longest = int(np.argmax(ep.end - ep.future_start))  # a user with more than 45 steps
    obs, info = env.reset(seed=0, options={"episode": longest})
    assert (
        info["n_future"] > 45 and info["n_history"] == 2
    )  # user split: the first min_history items seed the state
    assert_layout(obs, env)
    assert obs[-40:].sum() == 2
    env.action_space.seed(0)
    for _ in range(45):  # the history grows past history_size
        obs, *_ = env.step(env.action_space.sample())
        assert_layout(obs, env)
    assert obs[-40:].all()


def test_both_env_checkers_with_padding():
    """Synthetic data (the registered-id test needs ml-latest-small), short histories."""
    import warnings

    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("MovieRecSeq-v0", history_size=30, min_history=1, **SYN).unwrapped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env)
        sb3_check_env(env, warn=True)
    assert [str(w.message) for w in caught] == []


def seq_sync_pair(n: int, mode: AutoresetMode, **kwargs):
    vec = gym.make_vec("MovieRecSeq-v0", num_envs=n, autoreset_mode=mode, **kwargs)
    ref = SyncVectorEnv(
        [lambda: gym.make("MovieRecSeq-v0", **kwargs) for _ in range(n)], autoreset_mode=mode
    )
    return vec, ref


@pytest.mark.parametrize(
    ("mode", "metric"),
    [(AutoresetMode.NEXT_STEP, "dot"), (AutoresetMode.SAME_STEP, "correlation")],
)
def test_vector_env_same_as_sync_vector_env(mode, metric):
    """Batched observations (padded and full rows mixed) equal the single envs' exactly."""
    n = 5
    kw = {**SYN, "history_size": 25, "min_history": 3, "patience": 4, "max_episode_steps": 40}
    kw["metric"] = metric
    vec, ref = seq_sync_pair(n, mode, **kw)
    assert isinstance(vec.unwrapped, MovieRecSeqVectorEnv)
    assert vec.single_observation_space == ref.single_observation_space
    for x, y in zip(vec.reset(seed=3), ref.reset(seed=3), strict=True):
        assert_same_info(x, y)
    rng = np.random.default_rng(0)
    ended = mixed = 0
    for _ in range(150):
        actions = rng.uniform(-1, 1, (n, 8)).astype(np.float32)
        got = step_alike(vec, ref, actions)
        ended += int(got[2].sum() + got[3].sum())
        first_slot = got[0][:, -25]  # mask of the oldest slot: 0 while the row is padded
        mixed += int(0 < first_slot.sum() < n)
    assert ended > 5 and mixed > 10


def test_bad_arguments():
    ds = scenario_dataset()  # users of 12 interactions
    emb = np.eye(ds.n_items, dtype=np.float32)
    base = {"dataset": ds, "embedding": emb, "frame_size": 2, "slate_size": 3}
    cases = [
        ({"history_size": 0}, "history_size=0 must be an integer >= 1"),
        ({"history_size": 2.5}, "history_size=2.5"),
        ({"history_size": 13}, r"history_size=13 exceeds the longest user log .*12.* <= 12"),
        ({"history_size": 5, "min_history": 6}, "min_history=6 exceeds history_size=5"),
        ({"history_size": 1}, r"min_history \(default: frame_size=2\) exceeds history_size=1"),
        ({"history_size": 5, "min_history": 0}, "min_history=0 must be None or an integer"),
        ({"history_size": 12, "min_history": 12}, "no user with more than min_history=12"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message):
            MovieRecSeqEnv(**base, **kwargs)
    env = MovieRecSeqEnv(**base, history_size=12, min_history=11)
    assert env.observation_space.shape == (12 * 32,)
    with pytest.raises(ConfigError, match="history_size=0"):
        gym.make_vec("MovieRecSeq-v0", num_envs=2, history_size=0, **SYN)


def test_agents_train_and_evaluate_on_it():
    """agents.make_env gives the seq vector env; evaluate treats it as MovieRec-v0."""
    from agents import evaluate, make_agent, make_baseline
    from agents.factory import make_env
    from agents.sb3_env import RecVecEnv

    venv = make_env("MovieRecSeq-v0", n_envs=2, **SYN, history_size=20)
    assert isinstance(venv, RecVecEnv) and isinstance(venv.venv, MovieRecSeqVectorEnv)
    assert venv.reset().shape == (2, 200)
    model = make_agent("td3", "MovieRecSeq-v0", seed=0, n_envs=2, device="cpu",
                       env_kwargs={**SYN, "history_size": 20}, learning_starts=50,
                       batch_size=16, policy_kwargs={"net_arch": [16]})  # fmt: skip
    model.learn(80)
    assert model.observation_space.shape == (200,)

    # the embedding-mean baseline reads the last frame of either layout: identical results
    seq = MovieRecSeqEnv(split="test", history_size=20, **SYN)
    ref = MovieRecEnv(split="test", **SYN)
    got = evaluate(make_baseline("embedding-mean", seq), seq, max_users=8, progress=False)
    want = evaluate(make_baseline("embedding-mean", ref), ref, max_users=8, progress=False)
    cols = ["user_id", "steps", "return", "hr", "ndcg", "mrr", "precision"]
    assert got.per_user[cols].equals(want.per_user[cols])
    assert got.summary["return"] == want.summary["return"]


def test_real_data_users_and_first_step_match_v0(real_dir):
    seq = gym.make("MovieRecSeq-v0", data_dir=real_dir, split="test").unwrapped
    ref = gym.make("MovieRec-v0", data_dir=real_dir, split="test").unwrapped
    assert seq.observation_space.shape == (50 * 34,)
    np.testing.assert_array_equal(seq.episode_user_ids, ref.episode_user_ids)
    rng = np.random.default_rng(1)
    n_steps = 0
    for uid in seq.episode_user_ids[:20].tolist():
        obs, _ = seq.reset(options={"user_id": uid})
        want, _ = ref.reset(options={"user_id": uid})
        done = False
        while not done and n_steps < 200:
            assert_layout(obs, seq)
            np.testing.assert_array_equal(frame_of(obs, 50, 32, 10), want)
            action = aimed_actions(ref, rng)
            obs, reward, terminated, truncated, info = seq.step(action)
            want, want_reward, *_, want_info = ref.step(action)
            assert reward == want_reward
            np.testing.assert_array_equal(info["slate"], want_info["slate"])
            done, n_steps = terminated or truncated, n_steps + 1
    assert n_steps == 200


def test_logged_transitions_in_the_sequence_layout():
    """Offline data for MovieRecSeq: each episode's first state is what reset observes."""
    from agents import logged_transitions

    seq = MovieRecSeqEnv(history_size=30, min_history=3, **SYN)
    ref = MovieRecEnv(frame_size=3, **SYN)  # the same episodes; frame 3
    got = logged_transitions(seq, max_transitions=None)
    want = logged_transitions(ref, max_transitions=None)
    assert got.observations.shape == (len(want), 30 * 10)
    for name in ("actions", "rewards", "timeouts"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    for obs, frame in ((got.observations, want.observations),
                       (got.next_observations, want.next_observations)):  # fmt: skip
        np.testing.assert_array_equal(
            np.stack([frame_of(o, 30, 8, 3) for o in obs[::50]]), frame[::50]
        )
    counts = seq.context.episodes.end - seq.context.episodes.future_start
    starts = np.cumsum(counts) - counts
    padded = 0
    for episode in range(0, seq.n_episodes, 7):
        obs, _ = seq.reset(options={"episode": episode})
        np.testing.assert_array_equal(got.observations[starts[episode]], obs)
        padded += int(obs[-30] == 0)
    assert padded > 5
