"""Rendering: rgb_array pictures of the state and the slate (video, SB3), and ansi tables."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from helpers import act, scenario_env

import recgym  # noqa: F401 - registers the ids
from recgym.envs import render as render_module
from recgym.envs.font import GLYPHS, HEIGHT, glyph_table, text_mask
from recgym.envs.render import HIT_BAND, LINE_H, frame_shape

SYNTH = {"embedding_dim": 8}


def test_every_printable_ascii_character_has_its_own_glyph():
    printable = [chr(c) for c in range(32, 127)]
    assert sorted(GLYPHS) == printable
    table = glyph_table()
    shapes = {table[ord(c)].tobytes() for c in printable}
    assert len(shapes) == len(printable)  # no two characters look alike
    assert all(table[ord(c)].any() for c in printable if c != " ")
    assert all(len(GLYPHS[c].split()) in (7, 8, HEIGHT) for c in printable)
    assert {len(row) for rows in GLYPHS.values() for row in rows.split()} == {5}


def test_scenario_frame_shows_the_hit_on_a_green_band():
    env = scenario_env(render_mode="rgb_array")  # frame 2, slate 3
    env.reset(seed=0, options={"user_id": 1})
    first = env.render()
    assert first.shape == frame_shape(2, 3) and first.dtype == np.uint8
    assert first.shape[0] % 16 == 0 and first.shape[1] % 16 == 0  # what video encoders want
    _, reward, *_, info = env.step(act(3, 20, 21))  # movie 3 is the user's next: a hit
    assert info["hits"].tolist() == [True, False, False] and reward > 0
    frame = env.render()
    assert frame.shape == first.shape and not np.array_equal(frame, first)
    slate_line = 4 + 2 + 1  # banner, gap, heading, 2 history lines, gap, heading
    band = frame[slate_line * LINE_H : (slate_line + 1) * LINE_H]
    assert (band == HIT_BAND).all(axis=2).mean() > 0.5  # mostly green, text on it
    below = frame[(slate_line + 1) * LINE_H : (slate_line + 2) * LINE_H]
    assert not (below == HIT_BAND).all(axis=2).any()  # rank 2 is no hit


def test_text_is_drawn_where_it_should_be():
    env = scenario_env(render_mode="rgb_array")
    env.reset(seed=0, options={"user_id": 7})
    frame = env.render()
    mask = text_mask("User 7", scale=2)
    h, w = mask.shape
    drawn = frame[1 : 1 + h, 4 : 4 + w]
    assert (drawn[mask] == render_module.TEXT).all()
    assert (drawn[~mask] == render_module.BANNER).all()


def test_frames_are_deterministic_and_only_drawn_in_render(monkeypatch):
    calls = []
    real = render_module.render_frame

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("recgym.envs.movie_rec.render_frame", counting)

    def rollout():
        env = gym.make("MovieRecSynthetic-v0", render_mode="rgb_array", **SYNTH)
        env.reset(seed=5)
        env.action_space.seed(5)
        for _ in range(4):
            env.step(env.action_space.sample())
        before = len(calls)
        frames = [env.render()]
        assert len(calls) == before + 1
        for _ in range(2):
            env.step(env.action_space.sample())
            frames.append(env.render())
        return frames

    a, b = rollout(), rollout()
    assert len(calls) == 6  # four steps each time drew nothing
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], a[1])


def test_frame_before_reset_and_sizes_follow_the_config():
    env = gym.make("MovieRecSynthetic-v0", render_mode="rgb_array", slate_size=25,
                   frame_size=4, **SYNTH)  # fmt: skip
    frame = env.unwrapped.render()  # before reset: a frame saying so, not an error
    assert frame.shape == frame_shape(4, 25) != frame_shape(10, 10)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    assert env.render().shape == frame_shape(4, 25)


@pytest.mark.parametrize("mode", ["rgb_array", "ansi"])
def test_vector_frames_equal_single_env_frames(mode):
    n = 2
    vec = gym.make_vec("MovieRecSynthetic-v0", num_envs=n, render_mode=mode, **SYNTH)
    singles = [gym.make("MovieRecSynthetic-v0", render_mode=mode, **SYNTH) for _ in range(n)]
    if mode == "ansi":
        assert vec.render() == ("No episode yet: call reset().",) * n
    vec.reset(seed=3)
    for i, env in enumerate(singles):
        env.reset(seed=3 + i)
    vec.action_space.seed(0)
    for _ in range(3):
        actions = vec.action_space.sample()
        vec.step(actions)
        for env, a in zip(singles, actions, strict=True):
            env.step(a)
        frames = vec.render()
        assert len(frames) == n
        for frame, env in zip(frames, singles, strict=True):
            np.testing.assert_array_equal(frame, env.render())
    if mode == "ansi":
        assert all("Recommended" in table for table in frames)


def test_text_table_fits_its_width_and_leaves_unknown_years_blank():
    """A title without a year (pandas NA) and a very long title and genre list."""
    from helpers import SCENARIO_RATINGS, frame

    from recgym.data import Dataset
    from recgym.envs.render import TABLE_WIDTH

    long_title = "The Longest Title " * 8
    titles = [long_title + "(1999)", "No Year Given"] + [f"Movie {m} (2000)" for m in range(3, 31)]
    movies = pd.DataFrame(
        {"movieId": range(1, 31), "title": titles, "genres": ["|".join(["Drama"] * 30)] * 30}
    )
    rows = [(u, m, SCENARIO_RATINGS[m - 1], 10 * m) for u in range(1, 13) for m in range(1, 13)]
    ds = Dataset.from_frame(frame(rows), movies, rating_range=(0.5, 5.0))
    assert pd.isna(ds.item_table["year"].iloc[1]) and ds.item_text(1).year == ""
    env = scenario_env(dataset=ds, render_mode="ansi")
    env.reset(seed=0)  # the state: movies 1 and 2
    env.step(act(3, 20, 21))
    text = env.render()
    lines = text.splitlines()
    assert max(map(len, lines)) <= TABLE_WIDTH
    (no_year,) = [line for line in lines if line.startswith("No Year Given")]
    assert "<NA>" not in text and "nan" not in no_year.lower()
    (longest,) = [line for line in lines if line.startswith("The Longest")]
    assert "…" in longest and "1999" in longest


def test_discrete_frame_names_the_group():
    env = gym.make("MovieRecDiscrete-v0", dataset="synthetic", render_mode="rgb_array", **SYNTH)
    env.reset(seed=0)
    env.step(0)
    a = env.render()
    env.reset(seed=0)
    env.step(1)
    b = env.render()
    heading = slice((4 + 10) * LINE_H, (5 + 10) * LINE_H)
    assert not np.array_equal(a[heading], b[heading])


def test_unknown_render_mode_is_refused():
    from recgym.envs import MovieRecEnv, MovieRecVectorEnv
    from recgym.errors import ConfigError

    with pytest.raises(ConfigError, match="rgb_array"):
        MovieRecEnv(dataset="synthetic", render_mode="rgb", **SYNTH)
    with pytest.raises(ConfigError, match="rgb_array"):
        MovieRecVectorEnv(2, dataset="synthetic", render_mode="human", **SYNTH)


def test_record_video_writes_the_episode(tmp_path):
    pytest.importorskip("moviepy")
    import imageio_ffmpeg  # moviepy's ffmpeg
    from gymnasium.wrappers import RecordVideo

    class CountRenders(gym.Wrapper):
        calls = 0

        def render(self):
            type(self).calls += 1
            return self.env.render()

    env = gym.make("MovieRecSynthetic-v0", render_mode="rgb_array", max_episode_steps=4, **SYNTH)
    folder = tmp_path / "videos"
    env = RecordVideo(CountRenders(env), str(folder), episode_trigger=lambda e: e == 0)
    env.reset(seed=0)
    done = False
    while not done:
        *_, terminated, truncated, _ = env.step(env.action_space.sample())
        done = terminated or truncated
    env.close()
    assert CountRenders.calls == 5  # the reset and four steps
    (video,) = folder.glob("*.mp4")
    reader = imageio_ffmpeg.read_frames(str(video))
    meta = next(reader)
    height, width, _ = frame_shape(10, 10)
    assert tuple(meta["size"]) == (width, height)
    assert sum(1 for _ in reader) == 5
