"""RL Baselines3 Zoo hyperparameter files: shipped, loadable, equal to the factory defaults."""

from __future__ import annotations

import argparse
import importlib.resources
import subprocess
import sys
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import yaml

from agents.config import zoo_file
from agents.factory import default_hyperparameters

OBS, ACT = 330, 32  # MovieRec-v0: frame 10 x (embedding 32 + 1), actions in embedding space
ZOO_ONLY = {"n_timesteps", "policy", "noise_type", "noise_std"}


@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac"])
def test_zoo_files_are_package_data_with_the_factory_defaults(algo):
    shipped = importlib.resources.files("agents") / "zoo" / f"{algo}.yml"
    assert shipped.is_file() and str(zoo_file(algo)).endswith(f"zoo/{algo}.yml")
    conf = yaml.safe_load(shipped.read_text())
    assert conf["MovieRec-v0"] == conf["MovieRecSynthetic-v0"]
    params = conf["MovieRec-v0"]
    defaults = default_hyperparameters(algo, OBS, ACT)
    noise = defaults.pop("action_noise", None)
    assert {k: v for k, v in params.items() if k not in ZOO_ONLY} == defaults
    assert params["policy"] == "MlpPolicy" and params["n_timesteps"] == 20_000
    if noise is None:
        assert "noise_type" not in params
    else:
        assert params["noise_type"] == "normal"
        np.testing.assert_array_equal(noise._sigma, np.full(ACT, params["noise_std"]))


@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac"])
def test_the_zoo_reads_them_as_the_factory_builds(algo):
    exp_manager = pytest.importorskip("rl_zoo3.exp_manager")

    manager = exp_manager.ExperimentManager(
        argparse.Namespace(), algo, "MovieRec-v0", "unused-log-folder", config=str(zoo_file(algo))
    )
    hyperparams, saved = manager.read_hyperparameters()
    hyperparams, *_ = manager._preprocess_hyperparams(hyperparams)
    env = SimpleNamespace(action_space=gym.spaces.Box(-1, 1, (ACT,)))  # all the Zoo reads here
    hyperparams = manager._preprocess_action_noise(hyperparams, saved, env)
    rate = hyperparams.pop("learning_rate")  # the Zoo makes a constant schedule of it
    defaults = default_hyperparameters(algo, OBS, ACT)
    assert rate(1.0) == rate(0.0) == defaults.pop("learning_rate")
    noise = defaults.pop("action_noise", None)
    zoo_noise = hyperparams.pop("action_noise", None)
    assert type(zoo_noise) is type(noise)
    if noise is not None:
        np.testing.assert_array_equal(zoo_noise._sigma, noise._sigma)
        np.testing.assert_array_equal(zoo_noise._mu, noise._mu)
    assert {k: v for k, v in hyperparams.items() if k not in ZOO_ONLY} == defaults


@pytest.mark.expensive
def test_zoo_trains_a_few_steps(tmp_path):
    pytest.importorskip("rl_zoo3")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rl_zoo3.train",
            "--algo",
            "td3",
            "--env",
            "MovieRecSynthetic-v0",
            "--gym-packages",
            "recgym",
            "--conf-file",
            str(zoo_file("td3")),
            "-n",
            "1200",
            "--eval-freq",
            "-1",
            "-f",
            str(tmp_path),
            "--env-kwargs",
            "render_mode:None",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert list(tmp_path.rglob("MovieRecSynthetic-v0.zip"))
