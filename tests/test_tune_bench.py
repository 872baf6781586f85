"""benchmarks/tune.py on a tiny synthetic study: both studies run and tuning.md is written."""

from __future__ import annotations

import json

from benchmarks import tune


def test_tiny_tuning_writes_both_studies(tmp_path):
    args = tune.Args(dataset="synthetic", algos=["td3", "sac"], embeddings=["implicit"],
                     dims=[4, 6], encoders=["mlp", "gru"], histories=[0, 20], bc_epochs=1,
                     trials=1, timesteps=50, n_envs=2, ks=[10], warmups=[10], threads=1,
                     out=str(tmp_path))  # fmt: skip
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
    text = (folder / "tuning.md").read_text()
    assert "## 1. Space" in text and "## 2. Fine-tuning: sac" in text and "bc (no fine" in text
    assert not any(t["defaults"] for t in data["studies"]["sac"]["trials"])  # 2000 not searched
    # a second run with another algorithm reuses the saved space study (nothing cloned again),
    # keeps the first run's studies, and its first trial is the recipe's defaults
    again = {**vars(args), "algos": ["ddpg"], "warmups": [2000]}
    tune.main(tune.Args(**again))
    data2 = json.loads((folder / "tuning.json").read_text())
    assert [r["seconds"] for r in data2["space"]] == [r["seconds"] for r in data["space"]]
    assert set(data2["studies"]) == {"td3", "sac", "ddpg"} and len(data2["runs"]) == 2
    trial = data2["studies"]["ddpg"]["trials"][0]
    params = {k: trial[k] for k in tune.default_params("ddpg")}
    assert trial["defaults"] and params == tune.default_params("ddpg")
    assert "(the defaults)" in (folder / "tuning.md").read_text()
