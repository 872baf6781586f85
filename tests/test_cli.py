"""The ``recgym`` command line, end to end in subprocesses (synthetic data, tiny runs).

Output is piped, as under nohup or in CI: no terminal, 80 columns.
"""

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

TINY = [
    "--env",
    "MovieRecSynthetic-v0",
    "--embedding",
    "implicit",  # the default, sasrec, fits a model first: its own tests cover it
    "--embedding-dim",
    "8",
    "--set",
    "batch_size=32",
    "--set",
    'policy_kwargs={"net_arch": [32, 32]}',
    "--val-users",
    "3",
]


# tiny networks train many times faster on one thread when the 2 cores are busy
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def recgym(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **ONE_THREAD, "PYTHONUNBUFFERED": "1", "COLUMNS": "80", **env},
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("cli") / "run"
    done = recgym(
        "train",
        *TINY,
        "--timesteps",
        "300",
        "--out",
        str(out),
        "--checkpoint-every",
        "100",
        "--eval-every",
        "150",
        "--test-users",
        "5",
        "--baselines",
        "random",
        "popularity",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out, done


@pytest.fixture(scope="module")
def run_dir(trained) -> Path:
    return trained[0]


def test_train_writes_a_complete_run(trained):
    run_dir, done = trained
    for name in (
        "config.json",
        "hyperparameters.json",
        "model.zip",
        "train.json",
        "curve.csv",
        "eval-test-5-users.json",
        "eval-test-5-users.md",
    ):
        assert (run_dir / name).is_file(), name
    record = json.loads((run_dir / "train.json").read_text())
    assert record["timesteps"] == 300 and record["gradient_updates"] > 0
    table = (run_dir / "eval-test-5-users.md").read_text()
    assert all(f"| {p} |" in table for p in ("ddpg", "random", "popularity"))
    assert list((run_dir / "tb").rglob("events.out.tfevents*"))
    # what a user reads: where TensorBoard logs go, the updates done, where the table is
    assert f"TensorBoard: tensorboard --logdir {run_dir / 'tb'}" in done.stdout
    assert f"trained 300 steps with {record['gradient_updates']} gradient updates" in done.stdout
    assert f"saved: {run_dir / 'eval-test-5-users.md'}" in done.stdout


def test_piped_training_logs_progress_lines(trained):
    _, done = trained
    lines = [ln for ln in done.stderr.splitlines() if "steps/s" in ln]
    assert lines, done.stderr[-2000:]
    assert "step 300/300 (100%)" in lines[-1] and "val NDCG" in lines[-1]


def test_output_fits_80_columns(trained, run_dir):
    _, done = trained
    shown = recgym("recommend", str(run_dir), "--user", "5", "-k", "3")
    for out in (done.stdout, shown.stdout):
        lines = [ln for ln in out.splitlines() if str(run_dir) not in ln]  # paths may be long
        too_long = [ln for ln in lines if len(ln) > 80]
        assert not too_long, too_long
    assert "NDCG@10" in done.stdout and "±" in done.stdout  # the CI still shown where it fits


def test_resume_names_only_the_options_that_differ_from_the_run(run_dir, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    same = [*TINY, "--timesteps", "300", "--checkpoint-every", "100", "--eval-every", "150"]
    done = recgym("train", *same, "--out", str(out), "--resume", "--no-eval")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "nothing to train" in done.stdout and "note:" not in done.stdout
    # only the options given are compared: the others are the run's, not the defaults
    done = recgym("train", "--seed", "4", "--anchor", "bc_epochs=1", "--out", str(out),
                  "--resume", "--no-eval")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (note,) = [line for line in done.stdout.splitlines() if line.startswith("note:")]
    assert note.endswith("ignored: seed: given 4, saved 0; anchor.bc_epochs: given 1, saved 6")


def test_evaluations_each_get_their_own_file(run_dir):
    before = (run_dir / "eval-test-5-users.json").read_text()
    out = recgym("evaluate", str(run_dir), "--max-users", "3", "--baselines", "popularity")
    assert out.returncode == 0, out.stderr
    assert "NDCG@10" in out.stdout and "popularity" in out.stdout
    out = recgym("evaluate", str(run_dir), "--split", "val", "--max-users", "2", "--baselines")
    assert out.returncode == 0, out.stderr
    assert (run_dir / "eval-test-5-users.json").read_text() == before  # training's is kept
    for name, split, users in (("eval-test-3-users", "test", 3), ("eval-val-2-users", "val", 2)):
        record = json.loads((run_dir / f"{name}.json").read_text())
        assert (record["split"], record["users"], record["n_users"]) == (split, users, users)
        assert record["seed"] == 0 and record["date"].startswith(time.strftime("%Y-"))
        assert record["results"][0]["policy"] == "ddpg"
        assert (run_dir / f"{name}.md").read_text().startswith(f"{split} users")


def test_recommend_starts_from_the_users_latest_movies(run_dir):
    import re
    from datetime import datetime, timezone

    from recgym.data import synthetic_dataset

    ds = synthetic_dataset()
    sl = ds.user_slice(ds.user_index(5))
    days = [
        datetime.fromtimestamp(int(t), timezone.utc).date().isoformat() for t in ds.timestamps[sl]
    ]
    out = recgym("recommend", str(run_dir), "--user", "5", "-k", "3")
    assert out.returncode == 0, out.stderr
    history, top = out.stdout.split("Top 3 for user 5")
    assert f"now: their latest rating, {days[-1]}" in history
    rows = re.findall(r"^(\d{4}-\d\d-\d\d)  ", history, flags=re.M)
    assert rows == days[-10:] and rows != days[:10]  # their latest ten movies, oldest first
    assert "excluding the 279 movies they rated" in " ".join(top.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--algo", "ddgp"], "invalid choice: 'ddgp'"),
        (["evaluate", "{run}", "--baselines", "populariti"], "invalid choice: 'populariti'"),
    ],
)
def test_usage_errors_exit_2(args, message, run_dir):
    out = recgym(*[a.replace("{run}", str(run_dir)) for a in args])
    assert out.returncode == 2 and message in out.stderr


def test_missing_required_option_exits_2():
    out = recgym("recommend", "somewhere")  # --user missing
    assert out.returncode == 2 and "--user" in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "no/such/run"], "does not exist"),
        (["recommend", "{run}", "--user", "999999"], "User 999999 is not in synthetic"),
        (["recommend", "{run}", "--user", "5", "--embedding-dim", "16"], "embedding_dim=16"),
        (["recommend", "{run}", "--user", "5", "--as-of", "1990-02-30"], "YYYY-MM-DD"),
        (["recommend", "{run}", "--user", "5", "--as-of", "1990-01-01"], "has 0 ratings up to"),
        (["train", "--set", "policy_kwargs={net_arch: [32]}"], "--set 'policy_kwargs={net_arch"),
        (["train", "--set", "learning_rate=1e-3,"], "learning_rate is not valid JSON"),
        (["train", "--set", "gamma"], "expected KEY=VALUE"),
        (
            ["train", "--env", "MovieRecSynthetic-v0", "--set", "learning_rat=0.1"],
            "Did you mean 'learning_rate'",
        ),
        (
            ["train", *TINY, "--timesteps", "300", "--set", "learning_starts=300"],
            "learning_starts=300 is not below timesteps=300",
        ),
        (["train", "--config", "no/such.yml"], "no/such.yml"),
        (["train", "--out", "{run}"], "already holds a run: pass --resume"),
        (
            ["train", "--dataset", "ml-100k", "--data-dir", "{tmp}/empty"],
            "--data-dir on the command line",
        ),
        (["data", "info", "ml-100"], "Did you mean 'ml-100k'"),
    ],
)
def test_bad_values_give_one_clear_line(args, message, run_dir, tmp_path, capsys):
    from agents.cli import main

    args = [a.replace("{run}", str(run_dir)).replace("{tmp}", str(tmp_path)) for a in args]
    if args[0] == "train" and "--out" not in args:
        args += ["--out", str(tmp_path / "r")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()  # a run that fails at start leaves no folder


def test_console_script_is_installed():
    exe = shutil.which(
        "recgym", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    )
    assert exe is not None
    out = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout and "data" in out.stdout
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    import recgym

    assert out.stdout.strip() == f"recgym {recgym.__version__}"


def test_resume_after_kill(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agents.cli",
            "train",
            *TINY,
            "--timesteps",
            "2000",
            "--checkpoint-every",
            "400",
            "--eval-every",
            "200",
            "--no-eval",
            "--out",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **ONE_THREAD},
    )
    marker = out / "checkpoints" / "latest.json"
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert marker.exists() and not (out / "model.zip").exists(), "killed too late or never"
    killed_at = json.loads(marker.read_text())["steps"]
    assert 0 < killed_at < 2000

    done = recgym("train", "--out", str(out), "--resume", "--no-eval")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming from step {killed_at}" in done.stdout
    assert json.loads((out / "train.json").read_text())["timesteps"] == 2000
    # the validation curve continues where the checkpoint was: every 200 steps, once each
    steps = [int(line.split(",")[0]) for line in (out / "curve.csv").read_text().split()[1:]]
    assert steps == list(range(200, 2001, 200)), steps
