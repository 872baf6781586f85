"""benchmarks/rating_weight.py on a tiny synthetic sweep: runs, read-back, table."""

from __future__ import annotations

import json

import pytest

from benchmarks import rating_weight

TINY = dict(
    dataset="synthetic", embedding="implicit", embedding_dim=8, algo="td3", seeds=1,
    timesteps=100, baselines=["popularity"],
    anchor=json.dumps({"bc_epochs": 1, "warmup_steps": 20, "val_users": 3}),
    hyperparameters=json.dumps(
        {"learning_starts": 50, "batch_size": 32, "policy_kwargs": {"net_arch": [32, 32]}}
    ),
)  # fmt: skip


def test_sweep_trains_each_beta_then_reads_finished_runs_back(tmp_path, monkeypatch):
    args = rating_weight.Args(**TINY, betas=[0.0, 1.0], runs=str(tmp_path / "runs"),
                              out=str(tmp_path / "out"))  # fmt: skip
    text = rating_weight.main(args)
    runs = tmp_path / "runs"
    names = sorted(p.name for p in runs.iterdir())
    assert names == [
        "MovieRecSynthetic-v0__td3__beta0__seed0",
        "MovieRecSynthetic-v0__td3__beta1__seed0",
    ]
    saved = json.loads((runs / names[1] / "config.json").read_text())["config"]
    assert saved["anchor"]["rating_weight"] == 1.0 and saved["eval_users"] >= 1_000_000
    # the weight changes what behaviour cloning fits
    losses = [json.loads((runs / n / "anchor.json").read_text())["bc"]["losses"] for n in names]
    assert losses[0] != losses[1]
    for row in ("| td3, rating_weight 0 | 1 |", "| td3, rating_weight 1 | 1 |", "| popularity |"):
        assert row in text
    out = json.loads((tmp_path / "out" / "synthetic" / "rating_weight.json").read_text())
    assert set(out["runs"]) == {"0", "1"} and 0 <= out["runs"]["1"][0]["ndcg"] <= 1
    assert (tmp_path / "out" / "synthetic" / "rating_weight.md").read_text() == text

    # finished runs are read back, not trained again; --finished-only skips missing ones
    def no_training(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("agents.run._learn", no_training)
    again = rating_weight.main(
        rating_weight.Args(
            **TINY, betas=[1.0, 2.0], runs=str(runs), out=str(tmp_path / "out"), finished_only=True
        )  # fmt: skip
    )
    assert "| td3, rating_weight 1 | 1 |" in again and "rating_weight 2" not in again
    with pytest.raises(AssertionError, match="trained again"):
        rating_weight.main(
            rating_weight.Args(**TINY, betas=[2.0], runs=str(runs), out=str(tmp_path / "out"))
        )


def test_hit_weight_sweep_starts_every_weight_from_the_same_clone(tmp_path):
    from benchmarks import hit_weight

    args = hit_weight.Args(**TINY, weights=[0.0, 2.0], runs=str(tmp_path / "runs"),
                           out=str(tmp_path / "out"))  # fmt: skip
    text = hit_weight.main(args)
    runs = tmp_path / "runs"
    names = sorted(p.name for p in runs.iterdir())
    assert names == [
        "MovieRecSynthetic-v0__td3__hits0__seed0",
        "MovieRecSynthetic-v0__td3__hits2__seed0",
    ]
    saved = [json.loads((runs / n / "config.json").read_text())["config"] for n in names]
    assert [c["hyperparameters"]["hit_weight"] for c in saved] == [0.0, 2.0]
    # one behaviour-cloned start; only the fine-tuning differs
    bc = [json.loads((runs / n / "anchor.json").read_text())["bc"]["losses"] for n in names]
    assert bc[0] == bc[1]
    out = json.loads((tmp_path / "out" / "synthetic" / "hit_weight-td3.json").read_text())
    assert out["runs"]["0"][0]["bc_ndcg"] == out["runs"]["2"][0]["bc_ndcg"]
    assert out["runs"]["0"][0]["return"] != out["runs"]["2"][0]["return"]
    for row in ("| td3, hit_weight 0 | 1 |", "| td3, hit_weight 2 | 1 |", "| popularity |"):
        assert row in text
    assert "python -m benchmarks.hit_weight --weights 0 2 --seeds 1 --algo td3" in text
