"""Training runs in-process: the run folder, caps, resume, validation curve, checkpoints."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import agents_log

from agents.callbacks import read_curve
from agents.checkpoints import CheckpointError
from agents.config import AnchorSettings, RunConfig
from agents.factory import ANCHORED_AWR_TEMPERATURE, ANCHORED_NOISE
from agents.run import (
    RunError,
    evaluate_run,
    load_model,
    read_config,
    run_hyperparameters,
    train,
)
from recgym.errors import ConfigError

TINY_HYPER = {"batch_size": 32, "policy_kwargs": {"net_arch": [32, 32]}}


def tiny(**kw) -> RunConfig:
    """A 300-step SB3 run on synthetic data (the anchored recipe has tests of its own)."""
    base = dict(
        recipe="sb3",
        env_id="MovieRecSynthetic-v0",
        env_kwargs={"embedding_dim": 8},
        timesteps=300,
        n_envs=1,
        device="cpu",
        checkpoint_every=100,
        eval_every=100,
        eval_users=3,
        hyperparameters=dict(TINY_HYPER),
    )
    return RunConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread: tiny networks train many times faster on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, one_thread) -> tuple[Path, list[str]]:
    """A finished 300-step run (default learning_starts), and what it reported."""
    out = tmp_path_factory.mktemp("run") / "run"
    with agents_log() as printed:
        train(tiny(), out, progress=False)
    return out, printed


def reported(caplog) -> list[str]:
    """The status lines of the ``agents`` logger caught by ``caplog`` (no progress lines)."""
    return [r.getMessage() for r in caplog.records if r.name == "agents"]


def steps_in_curve(run_dir: Path) -> list[int]:
    return [int(line.split(",")[0]) for line in (run_dir / "curve.csv").read_text().split()[1:]]


def test_short_run_caps_learning_starts_and_reports_updates(finished):
    run_dir, printed = finished
    used = json.loads((run_dir / "hyperparameters.json").read_text())
    assert used["learning_starts"] == 30  # 1,000 by default: a tenth of this 300-step run
    record = json.loads((run_dir / "train.json").read_text())
    assert record["gradient_updates"] == 270  # one per step after learning_starts
    assert any("with 270 gradient updates" in line for line in printed)


def test_an_explicit_learning_starts_beyond_the_run_is_refused(tmp_path):
    config = tiny(hyperparameters={**TINY_HYPER, "learning_starts": 300})
    with pytest.raises(ConfigError, match="learning_starts=300 is not below timesteps=300"):
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    assert run_hyperparameters(tiny(timesteps=50_000), 90)["learning_starts"] == 1_000


def test_hyperparameters_json_holds_what_the_model_used(finished):
    run_dir, _ = finished
    used = json.loads((run_dir / "hyperparameters.json").read_text())
    model = load_model(run_dir, device="cpu")
    assert used["buffer_size"] == model.buffer_size == 300  # capped to what the run fills
    assert used["gamma"] == model.gamma == 0.9 and used["tau"] == model.tau
    assert used["batch_size"] == 32 and used["train_freq"] == [1, "step"]
    assert used["policy_kwargs"]["net_arch"] == [32, 32]
    assert used["action_noise"] == {"class": "NormalActionNoise", "mean": 0.0, "sigma": 0.1}
    assert read_config(run_dir).hyperparameters == TINY_HYPER  # config.json: what was asked


def test_validation_points_go_to_the_curve_and_tensorboard(finished):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, printed = finished
    assert steps_in_curve(run_dir) == [100, 200, 300]
    (events,) = (run_dir / "tb").rglob("events.out.tfevents*")
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    assert [e.step for e in acc.Scalars("eval/val_ndcg")] == [100, 200, 300]
    curve = [float(line.split(",")[1]) for line in (run_dir / "curve.csv").read_text().split()[1:]]
    assert [e.value for e in acc.Scalars("eval/val_ndcg")] == pytest.approx(curve, abs=1e-6)
    assert f"TensorBoard: tensorboard --logdir {run_dir / 'tb'}" in printed
    # the reader the benchmarks use gives the same points, every column
    points = read_curve(run_dir / "curve.csv")
    assert [p["steps"] for p in points] == [100, 200, 300]
    for column in ("ndcg", "hr", "return"):
        logged = [e.value for e in acc.Scalars(f"eval/val_{column}")]
        assert [p[column] for p in points] == pytest.approx(logged, abs=1e-6)


def test_the_end_of_a_run_is_always_a_validation_point(tmp_path, one_thread):
    train(
        tiny(timesteps=250, checkpoint_every=0),
        tmp_path / "run",
        progress=False,
    )
    assert steps_in_curve(tmp_path / "run") == [100, 200, 250]


def test_resumed_validation_keeps_its_schedule(finished, tmp_path, one_thread, caplog):
    """A run killed at step 250, after validating at 300 but before checkpointing 300."""
    run_dir = tmp_path / "run"
    shutil.copytree(finished[0], run_dir)
    (run_dir / "model.zip").unlink()
    for name in ("model_300.zip", "buffer_300.pkl"):
        (run_dir / "checkpoints" / name).unlink()
    caplog.set_level(logging.INFO, logger="agents")
    train(read_config(run_dir), run_dir, resume=True, progress=False)
    assert "resuming from step 200" in reported(caplog)
    assert steps_in_curve(run_dir) == [100, 200, 300]  # not 100, 200, 300, 201, 202, 300


def test_validation_callback_after_a_resume_at_step_10(tmp_path, one_thread):
    from agents.callbacks import ValidationCallback
    from agents.factory import make_agent

    config = tiny()
    model = make_agent(
        "ddpg",
        "MovieRecSynthetic-v0",
        env_kwargs={"embedding_dim": 8},
        device="cpu",
        learning_starts=1000,
        **TINY_HYPER,
    )
    model.learn(10)
    callback = ValidationCallback(config.make_eval_env("val"), 4, 2, tmp_path / "curve.csv")
    model.learn(7, callback=callback, reset_num_timesteps=False)
    assert steps_in_curve(tmp_path) == [12, 16, 17]


def test_progress_lines_without_a_terminal(tmp_path, caplog, monkeypatch, one_thread):
    import agents.callbacks

    monkeypatch.setattr(agents.callbacks, "LOG_EVERY_S", 0.0)
    with caplog.at_level(logging.INFO, logger="agents"):
        train(
            tiny(timesteps=120, checkpoint_every=0, eval_every=60),
            tmp_path / "run",
            progress=False,
        )
    lines = [r.getMessage() for r in caplog.records if "steps/s" in r.getMessage()]
    assert {r.name for r in caplog.records if "steps/s" in r.getMessage()} == {"agents.progress"}
    assert len(lines) >= 100  # one per step with no wait between lines
    assert lines[0].startswith("step 1/120 (1%), ")
    assert "val NDCG" not in lines[0] and "val NDCG" in lines[-1]
    assert lines[-1].startswith("step 120/120 (100%)") and lines[-1].endswith("(step 120)")


def test_existing_run_needs_resume(finished):
    with pytest.raises(RunError, match="already holds a run: pass --resume"):
        train(tiny(), finished[0], progress=False)


def damage(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_damaged_newest_checkpoint_falls_back_to_the_previous(
    finished, tmp_path, one_thread, caplog
):
    run_dir = tmp_path / "run"
    shutil.copytree(finished[0], run_dir)
    (run_dir / "model.zip").unlink()
    (run_dir / "checkpoints" / "latest.json").write_text('{"steps": 300, "model": "model_300.zip"')
    damage(run_dir / "checkpoints" / "model_300.zip")
    caplog.set_level(logging.INFO, logger="agents")
    train(read_config(run_dir), run_dir, resume=True, progress=False)
    text = "\n".join(reported(caplog))
    assert "checkpoint model_300.zip does not load" in text
    assert "resuming from the newest checkpoint that loads: model_200.zip" in text
    assert "no replay buffer saved with this checkpoint (buffer_200.pkl)" in text
    assert json.loads((run_dir / "train.json").read_text())["timesteps"] == 300


def test_no_checkpoint_loads_a_clear_error(finished, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished[0], run_dir)
    (run_dir / "model.zip").unlink()
    for name in ("model_300.zip", "model_200.zip"):
        damage(run_dir / "checkpoints" / name)
    with pytest.raises(CheckpointError, match=r"No checkpoint in .* loads: model_300.zip \("):
        train(read_config(run_dir), run_dir, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="model_200.zip"):
        load_model(run_dir, device="cpu")


def test_damaged_replay_buffer_starts_an_empty_one(finished, tmp_path, one_thread, caplog):
    run_dir = tmp_path / "run"
    shutil.copytree(finished[0], run_dir)
    (run_dir / "model.zip").unlink()
    (run_dir / "checkpoints" / "model_300.zip").rename(run_dir / "checkpoints" / "model_299.zip")
    (run_dir / "checkpoints" / "buffer_300.pkl").rename(run_dir / "checkpoints" / "buffer_299.pkl")
    damage(run_dir / "checkpoints" / "buffer_299.pkl")
    caplog.set_level(logging.INFO, logger="agents")
    train(read_config(run_dir), run_dir, resume=True, progress=False)
    assert any("replay buffer buffer_299.pkl does not load" in line for line in reported(caplog))


def test_evaluation_limits_torch_threads_and_restores_them(finished):
    from agents.evaluate import evaluate
    from agents.policies import Policy

    seen = []

    class Spy(Policy):
        name = "spy"

        def recommend(self, env, obs):
            seen.append(torch.get_num_threads())
            return env.recommend_from_scores(np.zeros(env.dataset.n_items))

    env = read_config(finished[0]).make_eval_env("test")
    torch.set_num_threads(2)
    try:
        evaluate(Spy(), env, max_users=1, progress=False)
        assert set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_evaluate_run_records_split_users_seed_and_date(finished, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished[0], run_dir)
    evaluate_run(run_dir, baselines=("popularity",), max_users=2, progress=False)
    record = json.loads((run_dir / "eval-test-2-users.json").read_text())
    assert {k: record[k] for k in ("split", "users", "n_users", "seed", "baselines")} == {
        "split": "test",
        "users": 2,
        "n_users": 2,
        "seed": 0,
        "baselines": ["popularity"],
    }
    assert [r["policy"] for r in record["results"]] == ["ddpg", "popularity"]
    assert len(record["date"]) == len("2026-01-01T00:00:00+00:00")


def test_resuming_a_finished_run_trains_nothing(finished, tmp_path, caplog):
    run_dir = tmp_path / "run"
    shutil.copytree(finished[0], run_dir)
    before = (run_dir / "train.json").read_text()
    caplog.set_level(logging.INFO, logger="agents")
    model = train(read_config(run_dir), run_dir, resume=True, progress=False)
    assert model.num_timesteps == 300 and (run_dir / "train.json").read_text() == before
    assert reported(caplog) == ["the run is finished (300 steps): nothing to train"]


def test_damaged_final_model_is_replaced_by_the_last_checkpoint(finished, tmp_path, caplog):
    run_dir = tmp_path / "run"
    shutil.copytree(finished[0], run_dir)
    damage(run_dir / "model.zip")
    with pytest.raises(RunError, match="model.zip does not load"):
        load_model(run_dir, device="cpu")
    caplog.set_level(logging.INFO, logger="agents")
    train(read_config(run_dir), run_dir, resume=True, progress=False)
    printed = reported(caplog)
    assert printed[0].startswith("model.zip does not load (")
    assert "the run is finished (300 steps): nothing to train" in printed
    assert load_model(run_dir, device="cpu").num_timesteps == 300


# ------------------------------------------------------------------------- anchored recipe
@pytest.fixture(scope="module")
def anchored_run(tmp_path_factory, one_thread) -> tuple[Path, list[str]]:
    """A finished 300-step run of the anchored recipe (the default for td3), Wolpertinger on."""
    out = tmp_path_factory.mktemp("anchored") / "run"
    config = tiny(
        recipe="auto",
        algo="td3",
        anchor={"bc_epochs": 2, "warmup_steps": 50, "val_users": 5},
        wolpertinger_k=20,
        hyperparameters={**TINY_HYPER, "hit_weight": 1.5},  # the hit term on (default: off)
    )
    with agents_log() as printed:
        train(config, out, progress=False)
    return out, printed


def test_anchored_run_clones_warms_up_and_records_it(anchored_run):
    run_dir, printed = anchored_run
    config = read_config(run_dir)
    assert (config.recipe, config.algo) == ("anchored", "td3")  # "auto" resolved and saved
    # every anchor setting is written out, so a later default change cannot alter a resume
    given = AnchorSettings(bc_epochs=2, warmup_steps=50, val_users=5)
    assert config.anchor == dataclasses.asdict(given) and "rating_weight" in config.anchor
    report = json.loads((run_dir / "anchor.json").read_text())
    assert report["transitions"] > 1000 and len(report["warmup_losses"]) == 1
    assert len(report["bc"]["val_ndcg"]) == report["bc"]["epochs"] == 2
    used = json.loads((run_dir / "hyperparameters.json").read_text())
    assert used["recipe"] == "anchored" and used["learning_starts"] == 0
    assert used["action_noise"]["sigma"] == pytest.approx(ANCHORED_NOISE / np.sqrt(8))  # its norm
    assert (used["actor_loss"], used["awr_temperature"]) == ("awr", ANCHORED_AWR_TEMPERATURE)
    assert used["hit_weight"] == 1.5 and "hits" in report["seconds"]
    assert any(line.startswith("behaviour cloning on") for line in printed)
    assert any(line.startswith("hit term (weight 1.5): ") for line in printed)
    model = load_model(run_dir, device="cpu")
    assert type(model).__name__ == "AnchoredTD3" and model.anchor_log_scale is not None


def test_anchored_evaluation_has_a_wolpertinger_row_and_the_value_gap(anchored_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(anchored_run[0], run_dir)
    results = evaluate_run(run_dir, baselines=("popularity",), max_users=4, progress=False,
                           device="cpu")  # fmt: skip
    assert [r.policy for r in results] == ["td3", "td3+W20", "popularity"]
    for r in results[:2]:
        gap = r.extra["value_gap"]
        assert gap["gap"] == pytest.approx(gap["predicted"] - gap["realised"])
    assert "value_gap" not in results[2].extra


def test_resumed_anchored_run_gets_its_anchor_back(anchored_run, tmp_path, one_thread):
    run_dir = tmp_path / "run"
    shutil.copytree(anchored_run[0], run_dir)
    (run_dir / "model.zip").unlink()  # resume from the step-200 checkpoint
    for newer in (run_dir / "checkpoints").glob("*_300.*"):
        newer.unlink()
    model = train(read_config(run_dir), run_dir, resume=True, progress=False)
    assert model.num_timesteps == 300 and model.anchor is not None
    assert model.anchor.log_scale.item() == pytest.approx(model.anchor_log_scale)


def test_a_model_of_another_recipe_is_refused(anchored_run, finished, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(anchored_run[0], run_dir)
    shutil.copy(finished[0] / "model.zip", run_dir / "model.zip")  # a plain SB3 DDPG
    with pytest.raises(ConfigError, match="recipe 'sb3'.*recipe='anchored', algo='td3'"):
        load_model(run_dir, device="cpu")


def test_training_only_env_arguments_reach_the_training_envs_alone(
    tmp_path, one_thread, monkeypatch
):
    from recgym.envs.core import ReplayCore

    built: list[tuple[str, float]] = []  # (split, hit_discount) of every environment made
    init = ReplayCore.__init__

    def recording_init(self, ctx, *args, **kwargs):
        init(self, ctx, *args, **kwargs)
        built.append((ctx.split_name, self.hit_discount))

    monkeypatch.setattr(ReplayCore, "__init__", recording_init)
    config = tiny(
        recipe="anchored",
        algo="td3",
        timesteps=100,
        checkpoint_every=0,
        anchor={"bc_epochs": 1, "warmup_steps": 10, "val_users": 3},
        train_env_kwargs={"hit_discount": 0.5},
    )
    train(config, tmp_path / "run", progress=False)
    evaluate_run(tmp_path / "run", baselines=(), max_users=2, progress=False, device="cpu")
    # online learning and the logged transitions of the warm-up learn from the variant;
    # validation (early stopping, the curve) and the final evaluation keep the reward
    assert {d for s, d in built if s == "train"} == {0.5}
    assert {s for s, d in built if d == 1.0} == {"val", "test"}
    assert read_config(tmp_path / "run").train_env_kwargs == {"hit_discount": 0.5}


@pytest.mark.parametrize(
    ("train_env_kwargs", "message"),
    [
        ({"embedding_dim": 4}, "'embedding_dim' cannot differ between training and evaluation"),
        ({"hit_discout": 0.7}, "'hit_discout' is not an argument .* Did you mean 'hit_discount'"),
        ({"history_size": 5}, "'history_size' cannot differ"),  # MovieRecSeq-v0's argument
        ([("hit_discount", 0.7)], "train_env_kwargs=.* must be a mapping"),
    ],
)
def test_training_only_env_arguments_are_checked(train_env_kwargs, message):
    with pytest.raises(ConfigError, match=message):
        tiny(train_env_kwargs=train_env_kwargs).validate()
