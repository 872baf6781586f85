"""Stable-Baselines3's own entry points with recgym's ids, as its quick start uses them.

SB3 makes an env from a string with ``render_mode="rgb_array"`` (so that it can record
video); ``make_vec_env`` and the RL Zoo do the same.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

import recgym  # noqa: F401 - registers the ids
from recgym.envs.render import frame_shape


def tiny() -> dict:
    """Small settings, a new dict each time (SB3 edits policy_kwargs in place)."""
    return {"learning_starts": 20, "batch_size": 16, "buffer_size": 500,
            "policy_kwargs": {"net_arch": [16]}, "device": "cpu", "seed": 0}  # fmt: skip


@pytest.mark.parametrize("algo", [DDPG, TD3, SAC])
def test_algorithm_from_the_id(algo):
    model = algo("MlpPolicy", "MovieRecSynthetic-v0", **tiny())
    assert model.get_env().render_mode == "rgb_array"
    model.learn(40)
    assert model.num_timesteps == 40
    env = model.get_env()
    env.reset()
    (frame,) = env.get_images()
    assert frame.shape == frame_shape(10, 10) and frame.dtype == np.uint8


def test_the_real_id(real_dir):
    model = DDPG("MlpPolicy", "MovieRec-v0", **tiny())
    model.learn(30)
    assert model.num_timesteps == 30


def test_make_vec_env_and_evaluate_policy():
    venv = make_vec_env("MovieRecSynthetic-v0", n_envs=2, seed=0,
                        env_kwargs={"max_episode_steps": 5})  # fmt: skip
    model = TD3("MlpPolicy", venv, **tiny())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mean, std = evaluate_policy(model, venv, n_eval_episodes=4, warn=True)
    assert [str(w.message) for w in caught] == []  # no "not wrapped with a Monitor"
    assert np.isfinite(mean) and np.isfinite(std)
    venv.reset()
    tiled = venv.render()  # SB3 tiles the sub-environments' frames
    height, width, _ = frame_shape(10, 10)
    assert tiled.shape == (2 * height, width, 3)
