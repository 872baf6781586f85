"""Every registered id: made, silent under both env checkers, deterministic, picklable."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import recgym
from recgym.data import generate, write_movielens
from recgym.envs import ENV_IDS

# ids whose data is not in CI: made from synthetic files in their native format
NATIVE = {
    "MovieRec-100k-v0": "ml-100k",
    "MovieRec-1M-v0": "ml-1m",
    "MovieRec-20M-v0": "ml-20m",
    "MovieRec-25M-v0": "ml-25m",
}
SMALL = {"embedding_dim": 8}


@pytest.fixture(scope="module")
def native_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("native")
    for name in NATIVE.values():
        half = name not in ("ml-100k", "ml-1m")
        write_movielens(d, name, data=generate(60, 300, 2400, rng=1, half_stars=half))
    return d


def make(env_id: str, native_dir, real_dir_or_none, **kwargs):
    extra = dict(SMALL)
    if env_id in NATIVE:
        extra["data_dir"] = native_dir
    elif ENV_IDS[env_id].get("dataset") == "ml-latest-small" and real_dir_or_none is None:
        pytest.skip(f"{env_id} needs ml-latest-small: set RECGYM_DATA_DIR (CI provides it)")
    return gym.make(env_id, **{**extra, **kwargs})


@pytest.fixture(scope="module")
def real_or_none():
    from helpers import real_data_dir

    return real_data_dir()


def test_every_id_is_registered():
    assert set(ENV_IDS) <= set(gym.registry)
    assert recgym.register_envs() == []  # idempotent: nothing registered twice


def _rollout(env, seed: int, n: int = 60):
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [(obs, info["user_id"])]
    for _ in range(n):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out.append((obs, r, term, trunc, info["slate"], info["hits"]))
        if term or trunc:
            obs, info = env.reset()
            out.append((obs, info["user_id"]))
    return out


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_registered_id(env_id, native_dir, real_or_none):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = make(env_id, native_dir, real_or_none)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped, warn=True)
    assert [str(w.message) for w in caught] == []

    # same seed, same trajectory (arrays compared exactly)
    _assert_same(_rollout(env, 7), _rollout(make(env_id, native_dir, real_or_none), 7))

    # pickle round trip mid-episode: both continue identically
    env.reset(seed=3)
    for _ in range(3):
        env.step(env.action_space.sample())
    clone = pickle.loads(pickle.dumps(env))
    env.action_space.seed(0)
    for _ in range(10):
        a = env.action_space.sample()
        r1, r2 = env.step(a), clone.step(a)
        for u, v in zip(r1[:4], r2[:4], strict=True):
            np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(r1[4]["slate"], r2[4]["slate"])
        if r1[2] or r1[3]:
            break

    # the vector entry point
    envs = gym.make_vec(
        env_id, num_envs=3, **SMALL, **({"data_dir": native_dir} if env_id in NATIVE else {})
    )
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, *env.observation_space.shape)
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP


def test_make_with_module_prefix_in_a_fresh_process():
    code = (
        "import gymnasium as gym, sys\n"
        "env = gym.make('recgym:MovieRecSynthetic-v0', embedding_dim=4)\n"
        "obs, _ = env.reset(seed=0)\n"
        "print(obs.shape, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(50,) False"
