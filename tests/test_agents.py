"""Agents: tiny smoke trainings (seconds), save/load, determinism, offline data, baselines."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from helpers import assert_same_weights, scenario_env

from agents import (
    AgentPolicy,
    evaluate,
    fill_replay_buffer,
    logged_transitions,
    make_agent,
    make_baseline,
    pretrain,
)
from agents.sb3_env import RecVecEnv
from recgym.envs import MovieRecEnv
from recgym.errors import ConfigError

SMALL_ENV = {"embedding_dim": 8}
TINY = {"learning_starts": 50, "batch_size": 32, "policy_kwargs": {"net_arch": [32, 32]}}


def weights(model) -> list[np.ndarray]:
    return [p.detach().cpu().numpy().copy() for p in model.policy.parameters()]


@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac"])
def test_smoke_training_and_save_load(algo, tmp_path):
    model = make_agent(algo, "MovieRecSynthetic-v0", seed=0, n_envs=2,
                       env_kwargs=SMALL_ENV, device="cpu", **TINY)  # fmt: skip
    before = weights(model)
    model.learn(300)
    assert model.num_timesteps == 300
    assert any(not np.array_equal(a, b) for a, b in zip(before, weights(model), strict=True))
    model.save(tmp_path / "m.zip")
    loaded = type(model).load(tmp_path / "m.zip", device="cpu")
    obs = np.random.default_rng(0).normal(size=(16, 90)).astype(np.float32)
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )


def test_same_seed_same_weights():
    def train():
        model = make_agent("td3", "MovieRecSynthetic-v0", seed=3, env_kwargs=SMALL_ENV,
                           device="cpu", **TINY)  # fmt: skip
        return model.learn(200)

    assert_same_weights(train)


def test_factory_errors():
    with pytest.raises(ConfigError, match="Did you mean 'ddpg'"):
        make_agent("ddgp", "MovieRecSynthetic-v0", env_kwargs=SMALL_ENV)
    with pytest.raises(ConfigError, match="continuous"):
        make_agent("dqn", "MovieRecSynthetic-v0", env_kwargs=SMALL_ENV)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            make_agent("ddpg", "MovieRecSynthetic-v0", env_kwargs=SMALL_ENV, device="cuda")


def test_sb3_vec_env_conventions():
    venv = RecVecEnv(3, dataset="synthetic", max_episode_steps=5, **SMALL_ENV)
    venv.seed(4)
    obs = venv.reset()
    assert obs.shape == (3, 90) and len(venv.reset_infos) == 3
    for _ in range(5):
        venv.step_async(np.zeros((3, 8), dtype=np.float32))
        obs, rewards, dones, infos = venv.step_wait()
    assert dones.all() and rewards.dtype == np.float32
    for info in infos:
        assert info["terminal_observation"].shape == (90,)
        assert info["TimeLimit.truncated"] is True
        assert info["episode"]["l"] == 5
    assert venv.get_attr("embedding_dim") == [8, 8, 8]


def test_logged_transitions_step_the_logged_item():
    env = scenario_env()
    t = logged_transitions(env, max_transitions=None)
    per_user = 10  # 12 ratings, frame 2
    assert len(t) == env.n_episodes * per_user
    eye = np.eye(30, dtype=np.float32)
    # first transition of the first user: state [1, 2], action movie 3; identity embeddings
    # tie every other item at 0, so the slate is [3, 4, 5], all hits, consumed in log order
    np.testing.assert_array_equal(t.observations[0, :60], np.concatenate([eye[0], eye[1]]))
    np.testing.assert_array_equal(t.actions[0], eye[2])
    assert t.items[0] == 2 and t.steps[0] == 2 and t.history_starts[0] == 0
    w = 1.0 / np.log2(np.arange(3) + 2.0)
    scaled = (np.array([5.0, 1.0, 2.0]) - 2.75) / 2.25
    assert t.rewards[0] == pytest.approx(float(w @ scaled / w.sum()))
    np.testing.assert_array_equal(t.next_observations[0, :60], np.concatenate([eye[3], eye[4]]))
    # the last logged item leaves nothing in the future: a truncation
    assert t.timeouts[per_user - 1] and not t.dones.any()
    with pytest.raises(ConfigError, match="train split"):
        logged_transitions(scenario_env(split="test"))


def test_offline_pretraining_fills_the_buffer_and_learns():
    env = MovieRecEnv(dataset="synthetic", split="train", **SMALL_ENV)
    model = make_agent("ddpg", "MovieRecSynthetic-v0", seed=0, env_kwargs=SMALL_ENV,
                       device="cpu", buffer_size=5000, **TINY)  # fmt: skip
    t = logged_transitions(env, max_transitions=3000)
    assert fill_replay_buffer(model, t) == 3000
    assert model.replay_buffer.size() == 3000
    np.testing.assert_array_equal(model.replay_buffer.actions[:3000, 0], t.actions)
    before = weights(model)
    pretrain(model, 20)
    assert any(not np.array_equal(a, b) for a, b in zip(before, weights(model), strict=True))
    model.learn(100)  # continues online


def test_evaluation_is_deterministic():
    env = MovieRecEnv(dataset="synthetic", split="test", **SMALL_ENV)
    model = make_agent("ddpg", "MovieRecSynthetic-v0", seed=0, env_kwargs=SMALL_ENV,
                       device="cpu", **TINY)  # fmt: skip
    a = evaluate(AgentPolicy(model), env, max_users=5, progress=False)
    b = evaluate(AgentPolicy(model), env, max_users=5, progress=False)
    assert a.per_user.equals(b.per_user) and a.n_users == 5
    r1 = evaluate(make_baseline("random", env, seed=1), env, max_users=5, progress=False)
    r2 = evaluate(make_baseline("random", env, seed=1), env, max_users=5, progress=False)
    assert r1.per_user.equals(r2.per_user)


def test_oracle_is_an_upper_bound_on_hits():
    env = MovieRecEnv(dataset="synthetic", split="test", **SMALL_ENV)
    oracle = evaluate(make_baseline("oracle", env), env, max_users=10, progress=False)
    assert oracle.summary["hr"][0] == 1.0 and oracle.summary["ndcg"][0] == 1.0


def test_unknown_baseline():
    env = MovieRecEnv(dataset="synthetic", split="test", **SMALL_ENV)
    with pytest.raises(ConfigError, match="Did you mean 'popularity'"):
        make_baseline("populariti", env)


def test_popularity_beats_random_on_real_test_users(real_dir):
    env = MovieRecEnv(dataset="ml-latest-small", data_dir=real_dir, split="test")
    pop = evaluate(make_baseline("popularity", env), env, progress=False)
    rnd = evaluate(make_baseline("random", env, seed=0), env, progress=False)
    assert pop.n_users == rnd.n_users == 61
    pop_mean, pop_lo, _ = pop.summary["ndcg"]
    rnd_mean, _, rnd_hi = rnd.summary["ndcg"]
    assert pop_lo > rnd_hi  # confidence intervals apart, not just means


def test_make_agent_does_not_mutate_the_callers_dicts():
    kwargs = {"net_arch": [16, 16]}
    make_agent("sac", "MovieRecSynthetic-v0", env_kwargs=SMALL_ENV, device="cpu",
               policy_kwargs=kwargs)  # fmt: skip
    assert kwargs == {"net_arch": [16, 16]}


def test_evaluating_no_users_warns_and_gives_nan():
    from agents.metrics import MetricWarning

    env = MovieRecEnv(dataset="synthetic", split="test", **SMALL_ENV)
    with pytest.warns(MetricWarning, match="no users"):
        result = evaluate(make_baseline("popularity", env), env, max_users=0, progress=False)
    assert result.n_users == 0
    assert all(np.isnan(result.summary[m][0]) for m in ("ndcg", "hr", "return"))
    assert np.isnan(result.coverage)


def test_action_noise_sigma_sets_the_exploration_noise():
    agent = make_agent("td3", "MovieRecSynthetic-v0", env_kwargs=SMALL_ENV, device="cpu",
                       action_noise_sigma=0.3)  # fmt: skip
    np.testing.assert_array_equal(agent.action_noise._sigma, np.full(8, 0.3))
    with pytest.raises(ConfigError, match="algo='sac'"):
        make_agent("sac", "MovieRecSynthetic-v0", env_kwargs=SMALL_ENV, action_noise_sigma=0.3)
    with pytest.raises(ConfigError, match="action_noise_sigma=-1"):
        make_agent("ddpg", "MovieRecSynthetic-v0", env_kwargs=SMALL_ENV, action_noise_sigma=-1)


def test_evaluate_policy_sees_the_episode_statistics_without_warning():
    """SB3's evaluate_policy asks env_is_wrapped(Monitor); RecVecEnv records what it would."""
    import warnings

    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    from agents import make_env

    venv = make_env("MovieRecSynthetic-v0", n_envs=2, max_episode_steps=4, **SMALL_ENV)
    assert venv.env_is_wrapped(Monitor) == [True, True]
    assert venv.env_is_wrapped(gym.wrappers.TimeLimit) == [False, False]
    model = make_agent("ddpg", venv, device="cpu", **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "not wrapped with a Monitor wrapper" fails here
        rewards, lengths = evaluate_policy(model, venv, n_eval_episodes=4,
                                           return_episode_rewards=True)  # fmt: skip
    assert lengths == [4, 4, 4, 4] and len(rewards) == 4


@pytest.mark.parametrize("settings", [{}, {"hit_discount": 0.5, "patience": 3}])
def test_batched_evaluation_equals_one_user_at_a_time(settings):
    """Replaying users in lockstep (one action batch a step) changes no number."""
    from agents.policies import EmbeddingMeanPolicy

    env = MovieRecEnv(dataset="synthetic", split="test", **SMALL_ENV, **settings)

    class Batched(EmbeddingMeanPolicy):
        batch_size = 4  # fewer slots than users: slots are reused

        def act_batch(self, obs):
            self.batches.append(len(obs))
            return super().act_batch(obs)

    one = evaluate(EmbeddingMeanPolicy(env.frame_size, 8), env, max_users=9, max_steps=30,
                   progress=False)  # fmt: skip
    batched = Batched(env.frame_size, 8)
    batched.batches = []
    many = evaluate(batched, env, max_users=9, max_steps=30, progress=False)
    pd.testing.assert_frame_equal(one.per_user, many.per_user)
    assert (one.coverage, one.diversity, one.novelty) == (
        many.coverage, many.diversity, many.novelty)  # fmt: skip
    assert set(batched.batches) == {4} and len(batched.batches) < many.per_user.steps.sum()


def test_agent_evaluation_of_a_user_does_not_depend_on_how_many_are_evaluated():
    env = MovieRecEnv(dataset="synthetic", split="test", **SMALL_ENV)
    model = make_agent("td3", "MovieRecSynthetic-v0", seed=1, env_kwargs=SMALL_ENV,
                       device="cpu", **TINY)  # fmt: skip
    few = evaluate(AgentPolicy(model), env, max_users=3, max_steps=20, progress=False)
    more = evaluate(AgentPolicy(model), env, max_users=7, max_steps=20, progress=False)
    pd.testing.assert_frame_equal(few.per_user, more.per_user.iloc[:3])


def test_precision_counts_the_liked_hits_of_the_slate():
    """Known answer: slate [3, 4, 5] for a scenario user; only movie 3 (rated 5) is liked."""
    from agents.policies import Policy

    class Fixed(Policy):
        name = "fixed"

        def recommend(self, env, obs):
            scores = np.zeros(env.dataset.n_items)
            scores[[2, 3, 4]] = [3.0, 2.0, 1.0]  # movies 3, 4, 5 (ratings 5.0, 1.0, 2.0)
            return env.recommend_from_scores(scores)

    env = scenario_env(split="test")
    result = evaluate(Fixed(), env, max_steps=1, progress=False)
    assert result.per_user["precision"].tolist() == [1 / 3] * result.n_users
    assert result.per_user["hr"].tolist() == [1.0] * result.n_users  # movie 3 is next
