"""The ``recgym`` command line, end to end in subprocesses (synthetic data, tiny runs)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TINY = ["--env", "MovieRecSynthetic-v0", "--embedding-dim", "8", "--set", "learning_starts=50",
        "--set", "batch_size=32", "--set", 'policy_kwargs={"net_arch": [32, 32]}']  # fmt: skip


def recgym(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "recgym.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    done = recgym("train", *TINY, "--timesteps", "300", "--out", str(out), "--checkpoint-every",
                  "100", "--eval-users", "5", "--baselines", "random", "popularity")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_train_writes_a_complete_run(run_dir):
    for name in ("config.json", "model.zip", "eval.json", "eval.md", "train.json"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "train.json").read_text())["timesteps"] == 300
    table = (run_dir / "eval.md").read_text()
    assert all(f"| {p} |" in table for p in ("ddpg", "random", "popularity"))
    assert list((run_dir / "tb").rglob("events.out.tfevents*"))


def test_evaluate_and_recommend(run_dir):
    out = recgym("evaluate", str(run_dir), "--max-users", "5", "--baselines", "popularity")
    assert out.returncode == 0, out.stderr
    assert "NDCG@10" in out.stdout and "popularity" in out.stdout
    out = recgym("recommend", str(run_dir), "--user", "5", "-k", "3")
    assert out.returncode == 0, out.stderr
    assert "last 10 watched" in out.stdout and "Top 3 for user 5" in out.stdout
    assert "Synthetic Movie" in out.stdout or "Quoted" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--algo", "ddgp"], "Did you mean 'ddpg'"),
        (["evaluate", "no/such/run"], "does not exist"),
        (["recommend", "{run}", "--user", "999999"], "User 999999 is not in synthetic"),
        (["recommend", "{run}", "--user", "5", "--embedding-dim", "16"], "embedding_dim=16"),
        (["data", "info", "ml-100"], "Did you mean 'ml-100k'"),
    ],
)
def test_bad_arguments_give_one_clear_line(args, message, run_dir):
    out = recgym(*[a.replace("{run}", str(run_dir)) for a in args])
    assert out.returncode == 1
    assert message in out.stderr and "Traceback" not in out.stderr


def test_usage_errors_exit_2():
    out = recgym("recommend", "somewhere")  # --user missing
    assert out.returncode == 2 and "--user" in out.stderr


def test_console_script_is_installed():
    exe = shutil.which(
        "recgym", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    )
    assert exe is not None
    assert subprocess.run([exe, "--help"], capture_output=True, text=True).returncode == 0


def test_resume_after_kill(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recgym.cli",
            "train",
            *TINY,
            "--timesteps",
            "4000",
            "--checkpoint-every",
            "400",
            "--no-eval",
            "--out",
            str(out),
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker = out / "checkpoints" / "latest.json"
    deadline = time.time() + 120
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert marker.exists() and not (out / "model.zip").exists(), "killed too late or never"
    killed_at = json.loads(marker.read_text())["steps"]
    assert 0 < killed_at < 4000

    done = recgym("train", "--out", str(out), "--resume", "--no-eval")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming from step {killed_at}" in done.stdout
    assert json.loads((out / "train.json").read_text())["timesteps"] == 4000


def test_cli_baseline_names_match_the_agents_package():
    from agents import BASELINES
    from recgym.cli import BASELINE_NAMES

    assert BASELINE_NAMES == BASELINES
