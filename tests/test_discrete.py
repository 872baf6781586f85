"""MovieRecDiscrete-v0: group actions, tabular states, tabular agents and DQN."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import scenario_dataset

from agents import SARSA, QLearning, TabularAgent, TabularPolicy, evaluate, make_agent
from recgym.envs import MovieRecDiscreteEnv, MovieRecEnv
from recgym.errors import ConfigError

SYN = {"dataset": "synthetic", "embedding_dim": 8}


def test_genre_groups_and_tabular_states():
    env = MovieRecDiscreteEnv(observation="tabular", **SYN)
    ds = env.dataset
    assert env.action_space.n == len(ds.genres)
    assert env.observation_space.n == env.n_states == 2 * (len(ds.genres) + 1)
    obs, _ = env.reset(seed=0)
    items, ratings = env.history()
    assert obs == 2 * env.item_group[items[-1]] + int(ratings[-1] > 0)
    # a movie's group is its rarest genre
    counts = ds.genre_matrix.toarray().sum(0)
    i = int(np.flatnonzero(ds.genre_matrix.toarray().sum(1) > 1)[0])
    genres = ds.item_table.iloc[i]["genres"].split("|")
    assert ds.genres[env.item_group[i]] == min(genres, key=lambda g: counts[ds.genres.index(g)])


def test_group_action_gives_the_groups_best_unseen_movies():
    env = MovieRecDiscreteEnv(**SYN)
    env.reset(seed=1)
    g = 4
    slate, _ = env.decode(g)
    members = np.flatnonzero(env.member[:, g] & ~env.blocked_mask())
    taste_scores = env.context.embeddings[members] @ env.taste()
    want = members[np.lexsort((members, -taste_scores))][: env.slate_size]
    np.testing.assert_array_equal(slate, want)
    obs, reward, *_, info = env.step(g)
    np.testing.assert_array_equal(info["slate"], want)
    assert obs.shape == env.observation_space.shape


def test_same_replay_as_the_continuous_env():
    """Same user, same slates -> same rewards and next states as MovieRec-v0."""
    d = MovieRecDiscreteEnv(**SYN)
    c = MovieRecEnv(**SYN)
    od, _ = d.reset(seed=3)
    oc, _ = c.reset(seed=3)
    np.testing.assert_array_equal(od, oc)
    for a in range(6):
        slate = d.decode(a)[0]
        rd, rc = d.step(a), c.step_slate(slate)
        np.testing.assert_array_equal(rd[0], rc[0])
        assert rd[1:4] == rc[1:4]


def test_small_groups_are_filled_with_the_best_other_movies():
    ds = scenario_dataset()  # every movie is "Drama": one genre
    with pytest.raises(ConfigError, match="fewer than 2 genres"):
        MovieRecDiscreteEnv(dataset=ds, embedding="random", embedding_dim=4, frame_size=2)
    env = MovieRecDiscreteEnv(dataset=ds, embedding="random", embedding_dim=4, frame_size=2,
                              groups="clusters", n_groups=12)  # fmt: skip
    env.reset(seed=0)
    sizes = env.member.sum(0)
    g = int(np.argmin(sizes))
    slate = env.decode(g)[0]
    assert len(slate) == 10 and len(np.unique(slate)) == 10
    assert env.member[slate[: sizes[g]], g].all() or sizes[g] >= 10


def test_clusters_and_bad_arguments():
    env = MovieRecDiscreteEnv(groups="clusters", n_groups=7, **SYN)
    assert env.action_space.n == 7 and (env.member.sum(1) == 1).all()
    with pytest.raises(ConfigError, match="n_groups"):
        MovieRecDiscreteEnv(groups="genres", n_groups=5, **SYN)
    with pytest.raises(ConfigError, match="Did you mean 'tabular'"):
        MovieRecDiscreteEnv(observation="tabuler", **SYN)
    with pytest.raises(ValueError, match="group index"):
        env.reset(seed=0)
        env.step(9)


@pytest.mark.parametrize("cls", [QLearning, SARSA])
def test_tabular_agents_learn_save_load_and_evaluate(cls, tmp_path):
    env = MovieRecDiscreteEnv(observation="tabular", **SYN)
    agent = cls.for_env(env, epsilon=0.3, seed=0)
    returns = agent.learn(env, episodes=30, seed=0, progress=False)
    assert len(returns) == 30 and np.abs(agent.q).sum() > 0
    assert agent.epsilon < 0.3
    agent.save(tmp_path / "q.npz")
    loaded = TabularAgent.load(tmp_path / "q.npz")
    assert type(loaded) is cls
    np.testing.assert_array_equal(loaded.q, agent.q)
    test_env = MovieRecDiscreteEnv(observation="tabular", split="test", **SYN)
    result = evaluate(TabularPolicy(loaded), test_env, max_users=5, progress=False)
    assert result.n_users == 5 and 0 <= result.summary["hr"][0] <= 1


def test_td_updates_by_hand():
    q = QLearning(2, 2, learning_rate=0.5, gamma=0.9)
    q.q[:] = [[0.0, 0.0], [1.0, 3.0]]
    q.update(0, 1, 1.0, 1, 0, terminated=False)  # target 1 + 0.9 * 3 = 3.7
    assert q.q[0, 1] == pytest.approx(1.85)
    s = SARSA(2, 2, learning_rate=0.5, gamma=0.9)
    s.q[:] = [[0.0, 0.0], [1.0, 3.0]]
    s.update(0, 1, 1.0, 1, 0, terminated=False)  # target 1 + 0.9 * Q[1, 0] = 1.9
    assert s.q[0, 1] == pytest.approx(0.95)
    s.update(0, 0, 1.0, 1, 0, terminated=True)  # no bootstrap
    assert s.q[0, 0] == pytest.approx(0.5)


def test_tabular_needs_the_tabular_observation():
    with pytest.raises(ConfigError, match="observation='tabular'"):
        QLearning.for_env(MovieRecDiscreteEnv(**SYN))


def test_dqn_trains_through_the_same_factory():
    model = make_agent("dqn", "MovieRecDiscrete-v0", seed=0, device="cpu",
                       env_kwargs=SYN, learning_starts=50, batch_size=16)  # fmt: skip
    model.learn(200)
    assert model.num_timesteps == 200
    env = MovieRecDiscreteEnv(split="test", **SYN)
    from agents import AgentPolicy

    assert evaluate(AgentPolicy(model), env, max_users=3, progress=False).n_users == 3
