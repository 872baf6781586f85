"""Every bad argument of MovieRecEnv gets a ConfigError that names the value and the fix."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import scenario_dataset, scenario_env

from recgym.envs import MovieRecEnv, MovieRecVectorEnv
from recgym.errors import ConfigError, UnknownDatasetError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "tset"}, "Did you mean 'test'"),
        ({"split_strategy": "time"}, "split_strategy='time'"),
        ({"frame_size": 0}, "frame_size=0"),
        ({"frame_size": 2.5}, "frame_size=2.5"),
        ({"slate_size": 0}, "slate_size=0"),
        ({"slate_size": 31}, "slate_size=31 exceeds"),
        ({"metric": "cos"}, "Did you mean 'cosine'"),
        ({"metric": "pearson"}, r"metric='pearson' is not valid; expected one of .*'correlation'"),
        ({"reward": "ratings"}, "Did you mean 'rating'"),
        ({"unrated_reward": 2.0}, "unrated_reward=2.0"),
        ({"hit_discount": 0.0}, "hit_discount=0.0"),
        ({"hit_discount": 1.5}, "hit_discount=1.5"),
        ({"allow_repeats": "yes"}, "allow_repeats='yes'"),
        ({"patience": 0}, "patience=0"),
        ({"render_mode": "rgb"}, "render_mode='rgb' is not supported"),
        ({"backend": "cuda"}, "backend='cuda'"),
        ({"embedding": np.eye(5, dtype=np.float32)}, r"one row per item"),
        ({"embedding_dim": 8}, "omit embedding_dim"),
        ({"frame_size": 20}, "no user with more than frame_size=20"),
    ],
)
def test_bad_argument(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        scenario_env(**kwargs)


def test_bad_embedding_name_and_dataset():
    ds = scenario_dataset()
    with pytest.raises(ConfigError, match="Did you mean 'svd'"):
        MovieRecEnv(dataset=ds, embedding="svdd", embedding_dim=4)
    with pytest.raises(ConfigError, match="embedding_dim=-1 must be None or an integer >= 1"):
        MovieRecEnv(dataset=ds, embedding_dim=-1)
    with pytest.raises(UnknownDatasetError, match="Did you mean 'ml-latest-small'"):
        MovieRecEnv(dataset="ml-latest-smal")
    with pytest.raises(ConfigError, match="dataset=3"):
        MovieRecEnv(dataset=3)


def test_vector_env_arguments():
    ds = scenario_dataset()
    emb = np.eye(ds.n_items, dtype=np.float32)
    with pytest.raises(ConfigError, match="num_envs=0 must be an integer >= 1"):
        MovieRecVectorEnv(0, dataset=ds, embedding=emb, frame_size=2)
    with pytest.raises(ConfigError, match="autoreset_mode='later'"):
        MovieRecVectorEnv(2, dataset=ds, embedding=emb, frame_size=2, autoreset_mode="later")
    with pytest.raises(ConfigError, match="max_episode_steps=0"):
        MovieRecVectorEnv(2, dataset=ds, embedding=emb, frame_size=2, max_episode_steps=0)
    with pytest.raises(ConfigError, match="split='x'"):
        MovieRecVectorEnv(2, dataset=ds, embedding=emb, frame_size=2, split="x")


def test_embedding_methods_by_name():
    ds = scenario_dataset()
    for method in ("svd", "genres", "random"):
        env = MovieRecEnv(dataset=ds, embedding=method, embedding_dim=4, frame_size=2)
        assert env.observation_space.shape == (2 * 5,)
        assert env.action_space.shape == (4,)


def test_metrics_decode_differently_for_unnormalised_vectors():
    ds = scenario_dataset()
    rng = np.random.default_rng(0)
    emb = (rng.normal(size=(ds.n_items, 4)) * rng.uniform(0.1, 3, (ds.n_items, 1))).astype(
        np.float32
    )
    slates = {}
    for metric in ("dot", "cosine", "euclidean", "correlation"):
        env = MovieRecEnv(dataset=ds, embedding=emb, frame_size=2, metric=metric)
        env.reset(seed=0)
        slates[metric] = tuple(env.decode(np.array([1, 0.5, -0.2, 0.1], np.float32))[0])
    assert len(set(slates.values())) == 4
