"""The batched vector env reproduces single envs exactly, with Gymnasium's autoreset."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from helpers import assert_same_info, step_alike

import recgym  # noqa: F401

KW = {"embedding_dim": 8, "patience": 4}


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("reward", ["rating", "simulator"])
def test_same_as_sync_vector_env(mode, reward):
    n = 5
    kw = {**KW, "reward": reward, "max_episode_steps": 30}
    vec = gym.make_vec("MovieRecSynthetic-v0", num_envs=n, autoreset_mode=mode, **kw)
    ref = SyncVectorEnv(
        [lambda: gym.make("MovieRecSynthetic-v0", **kw) for _ in range(n)], autoreset_mode=mode
    )
    assert vec.metadata["autoreset_mode"] == mode
    for x, y in zip(vec.reset(seed=11), ref.reset(seed=11), strict=True):
        assert_same_info(x, y)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(150):
        actions = rng.uniform(-1, 1, (n, 8)).astype(np.float32)
        got = step_alike(vec, ref, actions)
        ended += int(got[2].sum() + got[3].sum())
    assert ended > 5  # autoreset was exercised


def test_same_as_independent_single_envs():
    n = 4
    vec = gym.make_vec("MovieRecSynthetic-v0", num_envs=n, **KW)
    singles = [gym.make("MovieRecSynthetic-v0", **KW) for _ in range(n)]
    obs, _ = vec.reset(seed=5)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(obs[i], env.reset(seed=5 + i)[0])
    rng = np.random.default_rng(1)
    waiting = [False] * n
    for _ in range(80):
        actions = rng.uniform(-1, 1, (n, 8)).astype(np.float32)
        obs, rewards, term, trunc, info = vec.step(actions)
        for i, env in enumerate(singles):
            if waiting[i]:  # next-step autoreset: this step resets env i
                o, _ = env.reset()
                waiting[i] = False
                np.testing.assert_array_equal(obs[i], o)
                continue
            o, r, te, tr, inf = env.step(actions[i])
            np.testing.assert_array_equal(obs[i], o)
            assert (rewards[i], term[i], trunc[i]) == (r, te, tr)
            np.testing.assert_array_equal(info["slate"][i], inf["slate"])
            waiting[i] = te or tr


def test_partial_reset_and_step_slates():
    vec = gym.make_vec("MovieRecSynthetic-v0", num_envs=3, **KW).unwrapped
    vec.reset(seed=0)
    before = vec.reset(options={"reset_mask": np.array([False, True, False])})
    assert before[1]["_user_id"].tolist() == [False, True, False]
    blocked = vec.blocked_mask()
    slates = np.stack([np.flatnonzero(~blocked[i])[:10] for i in range(3)])
    _, _, _, _, info = vec.step_slates(slates)
    np.testing.assert_array_equal(info["slate"], slates)
    with pytest.raises(ValueError, match="blocked"):
        vec.step_slates(np.stack([np.flatnonzero(vec.blocked_mask()[i])[:10] for i in range(3)]))


def test_bad_actions_and_render():
    vec = gym.make_vec("MovieRecSynthetic-v0", num_envs=2, render_mode="ansi", **KW)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected \(2, 8\)"):
        vec.step(np.zeros((3, 8), dtype=np.float32))
    bad = np.zeros((2, 8), dtype=np.float32)
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"sub-environments \[1\]"):
        vec.step(bad)
    vec.step(np.zeros((2, 8), dtype=np.float32))
    frames = vec.render()
    assert len(frames) == 2 and all("Recommended" in f for f in frames)


@pytest.mark.parametrize(
    ("env_id", "hit_discount"),
    [("MovieRecSynthetic-v0", 1.0), ("MovieRecSynthetic-v0", 0.8), ("MovieRec-v0", 1.0)],
)
def test_hit_heavy_rollouts_match(env_id, hit_discount, request):
    """Actions aimed at each user's upcoming items: many hits, multi-hit steps, ties."""
    if env_id == "MovieRec-v0":
        request.getfixturevalue("real_dir")
    n, kw = 4, {"embedding_dim": 16, "hit_discount": hit_discount}
    vec = gym.make_vec(env_id, num_envs=n, **kw)
    singles = [gym.make(env_id, **kw).unwrapped for _ in range(n)]
    vec.reset(seed=2)
    for i, env in enumerate(singles):
        env.reset(seed=2 + i)
    emb = singles[0].context.embeddings
    waiting = [False] * n
    n_hits = 0
    for t in range(120):
        actions = np.zeros((n, 16), dtype=np.float32)
        for i, env in enumerate(singles):
            if not waiting[i]:
                future = env.future()[0]
                upcoming = future[min(t % 3, len(future) - 1) :][:3]
                actions[i] = emb[upcoming].mean(axis=0)
        obs, rewards, term, trunc, info = vec.step(actions)
        for i, env in enumerate(singles):
            if waiting[i]:
                np.testing.assert_array_equal(obs[i], env.reset()[0])
                waiting[i] = False
                continue
            o, r, te, tr, inf = env.step(actions[i])
            np.testing.assert_array_equal(obs[i], o)
            assert (rewards[i], term[i], trunc[i]) == (r, te, tr)
            np.testing.assert_array_equal(info["hits"][i], inf["hits"])
            assert info["consumed"][i] == inf["consumed"]
            assert info["next_items"][i] == inf["next_items"]
            n_hits += int(inf["hits"].sum())
            waiting[i] = te or tr
    assert n_hits > 50


def test_a_step_where_every_env_autoresets():
    """One env, next-step mode: the step after an episode ends only resets (empty decode)."""
    vec = gym.make_vec("MovieRecSynthetic-v0", num_envs=1, max_episode_steps=2, **KW)
    vec.reset(seed=0)
    actions = np.zeros((1, 8), dtype=np.float32)
    assert not vec.step(actions)[3][0]
    assert vec.step(actions)[3][0]  # truncated at 2 steps
    obs, rewards, term, trunc, info = vec.step(actions)  # this step only resets
    assert rewards[0] == 0 and not term[0] and not trunc[0] and info["_episode"][0]


def test_the_decoders_penalty_tracks_the_blocked_items():
    """Blocks (history, shown, consumed), releases and resets keep both forms equal."""
    from recgym.data.synthetic import synthetic_dataset

    # 45 movies (padding columns up to a multiple of GROUP): the shown items fill the
    # catalogue in a few steps
    ds = synthetic_dataset(n_users=60, n_items=45, n_ratings=1300)
    vec = gym.make_vec("MovieRec-v0", num_envs=3, dataset=ds, embedding_dim=8)
    core = vec.unwrapped._core
    n = core.blocked.shape[1]
    vec.reset(seed=0)
    vec.action_space.seed(0)
    released = False
    for _ in range(60):
        before = core.blocked.copy()
        vec.step(vec.action_space.sample())
        released |= bool((before & ~core.blocked & ~core.consumed).any())
        np.testing.assert_array_equal(np.isneginf(core.penalty[:, :n]), core.blocked)
        assert (core.penalty[:, :n][~core.blocked] == 0).all()
        assert np.isneginf(core.penalty[:, n:]).all()
    assert released
