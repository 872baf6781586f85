"""benchmarks/tune.py on a tiny synthetic study: both studies run and tuning.md is written."""

from __future__ import annotations

import json
import threading
import time

from agents.config import AnchorSettings
from benchmarks import tune


def test_tiny_tuning_writes_both_studies(tmp_path, monkeypatch):
    args = tune.Args(dataset="synthetic", algos=["td3", "sac"], embeddings=["implicit"],
                     dims=[4, 6], encoders=["mlp", "gru"], histories=[0, 20], bc_epochs=1,
                     trials=1, timesteps=50, n_envs=2, ks=[10], warmups=[10], threads=1,
                     val_users=6, out=str(tmp_path))  # fmt: skip
    folder = tune.main(args)
    data = json.loads((folder / "tuning.json").read_text())
    stages = [(r["stage"], r["dim"], r["encoder"], r["history"]) for r in data["space"]]
    best_dim = max((r for r in data["space"] if r["stage"] == "a"), key=lambda r: r["val_ndcg"])
    assert stages[:2] == [("a", 4, "mlp", 0), ("a", 6, "mlp", 0)]
    assert sorted(stages[2:]) == sorted(
        [("b", best_dim["dim"], e, h) for e, h in [("gru", 0), ("mlp", 20), ("gru", 20)]]
    )
    assert set(data["studies"]) == {"td3", "sac"}
    trial = data["studies"]["sac"]["trials"][0]
    assert set(trial["val_ndcg"]) == {"plain", "K=10"} and trial["best"] in trial["val_ndcg"]
    # each trial runs the recipe's own behaviour cloning with the searched rating weight
    assert trial["rating_weight"] in args.rating_weights and 0 <= trial["bc_val_ndcg"] <= 1
    assert data["studies"]["sac"]["bc"]["rating_weight"] == AnchorSettings().rating_weight
    text = (folder / "tuning.md").read_text()
    assert "## 1. Space" in text and "## 2. Fine-tuning: sac" in text and "bc (no fine" in text
    assert not any(t["defaults"] for t in data["studies"]["sac"]["trials"])  # 2000 not searched
    # --trials 0 --confirm-seeds reruns the saved study's best trial with another seed
    tune.main(tune.Args(**{**vars(args), "algos": ["sac"], "trials": 0, "confirm_seeds": [1]}))
    confirmed = json.loads((folder / "tuning.json").read_text())["studies"]["sac"]
    assert confirmed["trials"] == data["studies"]["sac"]["trials"]  # the study is kept
    assert [(r["which"], r["seed"]) for r in confirmed["confirm"]] == [("best", 1)]
    assert "| best trial | 0 1 |" in (folder / "tuning.md").read_text()
    tune.main(tune.Args(**{**vars(args), "algos": ["sac"], "trials": 0}))  # keeps the study
    assert json.loads((folder / "tuning.json").read_text())["studies"]["sac"] == confirmed
    data = json.loads((folder / "tuning.json").read_text())
    # a second run with another algorithm reuses the saved space study (nothing cloned again),
    # keeps the first run's studies, and its first trial is the recipe's defaults (with a
    # 10-step warm-up instead of 2,000, to keep the test short)
    defaults = tune.default_params
    monkeypatch.setattr(tune, "default_params", lambda a: {**defaults(a), "warmup_steps": 10})
    assert not any(t["defaults"] for t in data["studies"]["td3"]["trials"])
    again = {**vars(args), "algos": ["ddpg"], "confirm_seeds": [2]}  # confirmed in the same run
    tune.main(tune.Args(**again))
    data2 = json.loads((folder / "tuning.json").read_text())
    assert [r["seconds"] for r in data2["space"]] == [r["seconds"] for r in data["space"]]
    assert set(data2["studies"]) == {"td3", "sac", "ddpg"} and len(data2["runs"]) == 4
    assert data2["studies"]["sac"]["confirm"] == confirmed["confirm"]
    assert [(r["which"], r["seed"]) for r in data2["studies"]["ddpg"]["confirm"]] == [("best", 2)]
    trial = data2["studies"]["ddpg"]["trials"][0]
    params = {k: trial[k] for k in tune.default_params("ddpg")}
    assert trial["defaults"] and params == tune.default_params("ddpg")
    assert "(the defaults)" in (folder / "tuning.md").read_text()


def test_parallel_updates_of_tuning_json_lose_nothing(tmp_path):
    path = tmp_path / "tuning.json"

    def add(name):
        def change(saved):
            seen = dict(saved.get("studies", {}))
            time.sleep(0.02)  # without the lock, another writer's study is lost here
            saved["studies"] = {**seen, name: {"trials": []}}

        tune.update_json(path, change)

    threads = [threading.Thread(target=add, args=(f"algo{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(json.loads(path.read_text())["studies"]) == [f"algo{i}" for i in range(6)]
