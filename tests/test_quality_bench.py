"""benchmarks/quality.py on tiny synthetic sweeps: maths, files, failures, processes, Ray."""

from __future__ import annotations

import json

import pytest

from agents.tables import ci_cell
from benchmarks import quality

TINY_HYPER = json.dumps(
    {"learning_starts": 50, "batch_size": 32, "policy_kwargs": {"net_arch": [32, 32]}}
)


def tiny_args(tmp_path, **kw) -> quality.Args:
    base = dict(dataset="synthetic", algos=["td3"], recipes=["sb3"], bc=False,
                baselines=["random", "popularity"], seeds=2, timesteps=200, eval_every=100,
                eval_users=3, test_users=4, embedding="implicit", embedding_dim=8,
                hyperparameters=TINY_HYPER, out=str(tmp_path))  # fmt: skip
    return quality.Args(**{**base, **kw})


def test_aggregate_counts_failures_and_ignores_them_in_the_means():
    ok = {"kind": "agent", "name": "td3", "status": "ok", "coverage": 0.5, "novelty": 3.0,
          "train_seconds": 10.0, **{m: 0.1 for m in quality.METRICS}}  # fmt: skip
    other = {**ok, **{m: 0.3 for m in quality.METRICS}}
    bad = {"kind": "agent", "name": "td3", "status": "failed", "error": "boom"}
    agg = quality.aggregate([ok, other, bad])["td3"]
    assert (agg["seeds_ok"], agg["seeds"], agg["errors"]) == (2, 3, ["boom"])
    assert agg["ndcg"][0] == pytest.approx(0.2)
    assert "2/3 (failed" in quality.table({"td3": agg})


def test_paired_against_averages_seeds_per_user_then_pairs_the_users():
    def record(name, kind, users, ndcg, ret, status="ok"):
        per_user = {"user_id": users, "ndcg": ndcg, "return": ret}
        return {"name": name, "kind": kind, "status": status, "per_user": per_user}

    records = [
        record("bc", "bc", [1, 2, 3], [0.1, 0.2, 0.3], [1.0, 1.0, 1.0]),
        record("bc", "bc", [1, 2, 3], [0.3, 0.2, 0.1], [2.0, 2.0, 2.0]),
        record("td3 (recipe)", "agent", [1, 2, 3], [0.4, 0.2, 0.2], [1.0, 2.0, 3.0]),
        record("td3 (recipe)", "agent", [2, 3, 4], [0.4, 0.4, 0.9], [2.0, 1.0, 9.0]),
        record("td3 (recipe)", "agent", [1, 2, 3], [9.0, 9.0, 9.0], [9.0, 9.0, 9.0], "failed"),
        record("itemknn", "baseline", [1, 2, 3], [0.5, 0.5, 0.5], [3.0, 3.0, 3.0]),
    ]
    paired = quality.paired_against(records, "bc")
    assert set(paired) == {"td3 (recipe)"}  # agents only; the failed seed is ignored
    row = paired["td3 (recipe)"]
    # users 2 and 3 are in every seed: td3 means (0.3, 0.3) - bc means (0.2, 0.2)
    assert row["users"] == 2
    assert row["ndcg"][0] == pytest.approx(0.1) and row["ndcg"][1] == pytest.approx(0.1)
    assert row["return"][0] == pytest.approx(0.5)  # (2.0 - 1.5 + 2.0 - 1.5) / 2
    assert row["return"][1:] == pytest.approx((0.5, 0.5))  # equal differences: no spread
    no_bc = [r for r in records if r["name"] != "bc"]
    assert quality.paired_against(no_bc, "bc") == {}
    knn = quality.paired_against(records, "itemknn")["td3 (recipe)"]
    assert knn["ndcg"][0] == pytest.approx(-0.2) and knn["return"][0] == pytest.approx(-1.0)
    old = [{k: v for k, v in r.items() if k != "per_user"} for r in records]
    assert quality.paired_against(old, "bc") == {}  # records of runs before per-user records


def test_tiny_sweep_writes_table_plots_and_reports_a_crashed_seed(tmp_path):
    folder = quality.main(tiny_args(tmp_path, fail_seeds=[1]))
    for name in ("results.md", "runs.json", "curves.png", "bars.png"):
        assert (folder / name).is_file()
    runs = json.loads((folder / "runs.json").read_text())["runs"]
    failed = [r for r in runs if r["status"] == "failed"]
    assert [(r["name"], r["seed"]) for r in failed] == [("td3 (sb3)", 1)]
    assert "injected failure" in failed[0]["error"]
    table = (folder / "results.md").read_text()
    assert "| td3 (sb3) | 1/2 (failed: see runs.json)" in table and "| popularity | 2/2" in table
    agent = next(r for r in runs if r["name"] == "td3 (sb3)" and r["status"] == "ok")
    assert agent["curve"] and agent["hyperparameters"]["gamma"] == 0.9
    # what the model used, as the run recorded it: the buffer capped to the run's 200 steps
    used = agent["hyperparameters"]
    assert (used["buffer_size"], used["learning_starts"], used["batch_size"]) == (200, 50, 32)
    assert used["action_noise"] == {"class": "NormalActionNoise", "mean": 0.0, "sigma": 0.1}
    assert (folder / "runs").is_dir() and "MovieRecSynthetic-v0__td3-sb3__0__" in agent["run_dir"]


def test_recipe_rows_wolpertinger_and_behaviour_cloning(tmp_path):
    anchor = json.dumps({"bc_epochs": 1, "warmup_steps": 20, "val_users": 3})
    train_env = json.dumps({"hit_discount": 0.5})
    folder = quality.main(tiny_args(tmp_path, recipes=["anchored"], bc=True, seeds=1,
                                    wolpertinger_k=20, anchor=anchor, baselines=[],
                                    train_env=train_env))  # fmt: skip
    runs = json.loads((folder / "runs.json").read_text())["runs"]
    assert all(r["status"] == "ok" for r in runs), [r.get("error") for r in runs]
    by_name = {r["name"]: r for r in runs}
    assert set(by_name) == {"td3 (recipe)", "td3 (recipe+W20)", "bc"}
    recipe = by_name["td3 (recipe)"]
    assert recipe["anchor"]["bc"]["epochs"] == 1 and "value_gap" in recipe
    assert recipe["config"]["train_env_kwargs"] == {"hit_discount": 0.5}  # learnt from
    assert recipe["config"]["env_kwargs"].get("hit_discount", 1.0) == 1.0  # evaluated on
    assert recipe["train_seconds"] > sum(recipe["anchor"]["seconds"].values()) > 0
    assert recipe["run_dir"] == by_name["td3 (recipe+W20)"]["run_dir"]  # one model, two rows
    assert by_name["bc"]["train_seconds"] > 0
    table = (folder / "results.md").read_text()
    assert f"training-only environment arguments {train_env}" in table
    assert table.index("| td3 (recipe+W20) |") < table.index("| bc |")  # agents first
    gap = recipe["value_gap"]
    gap_rows = table[table.index("critic's predicted return") :].splitlines()
    assert any(line.startswith(f"| td3 (recipe) | {gap['predicted']:.4f}") for line in gap_rows)
    assert "| bc |" not in "\n".join(gap_rows[: gap_rows.index("")])  # no critic, no gap row
    # what RL adds to bc, paired over the same users: here the difference of the two means
    paired = quality.paired_against(runs, "bc")
    assert set(paired) == {"td3 (recipe)", "td3 (recipe+W20)"}
    assert paired["td3 (recipe)"]["users"] == by_name["bc"]["users"] == 4
    want = recipe["ndcg"] - by_name["bc"]["ndcg"]
    assert paired["td3 (recipe)"]["ndcg"][0] == pytest.approx(want, abs=1e-12)
    assert f"| td3 (recipe) | 4 | {ci_cell(*paired['td3 (recipe)']['ndcg'])} |" in table
    assert "Against `bc` (what RL adds to its start)" in table
    assert "Against `itemknn`" not in table  # no itemknn row in this run
    (folder / "results.md").unlink()
    quality.main(tiny_args(tmp_path, report_only=True))  # from runs.json, nothing retrained
    assert (folder / "results.md").read_text().split("\n")[3:] == table.split("\n")[3:]


def test_keep_reuses_rows_of_the_previous_run(tmp_path):
    first = quality.main(tiny_args(tmp_path))
    before = json.loads((first / "runs.json").read_text())["runs"]
    folder = quality.main(tiny_args(tmp_path, keep=["td3 (sb3)"], timesteps=150))
    runs = json.loads((folder / "runs.json").read_text())["runs"]
    agents = [r for r in runs if r["name"] == "td3 (sb3)"]
    assert [r["seed"] for r in agents] == [0, 1] and all(r["kept"] for r in agents)
    old = [r for r in before if r["name"] == "td3 (sb3)"]
    assert [r["ndcg"] for r in agents] == [r["ndcg"] for r in old]  # not retrained
    assert not any(r.get("kept") for r in runs if r["name"] != "td3 (sb3)")
    assert (
        "Rows taken from the previous run (`--keep`): td3 (sb3)."
        in (folder / "results.md").read_text()
    )
    with pytest.raises(quality.ConfigError, match="no such row"):
        quality.main(tiny_args(tmp_path, keep=["td3 (recipe)"]))
    with pytest.raises(quality.ConfigError, match="does not exist"):
        quality.main(tiny_args(tmp_path / "empty", keep=["popularity"]))


def test_local_processes(tmp_path):
    folder = quality.main(tiny_args(tmp_path, algos=[], seeds=2, workers=2))
    runs = json.loads((folder / "runs.json").read_text())["runs"]
    assert len(runs) == 4 and all(r["status"] == "ok" for r in runs)


def test_ray_on_a_local_instance(tmp_path):
    pytest.importorskip("ray")
    folder = quality.main(
        tiny_args(tmp_path, seeds=1, baselines=["popularity"], ray_address="local", workers=2)
    )
    runs = json.loads((folder / "runs.json").read_text())["runs"]
    assert {r["name"] for r in runs} == {"td3 (sb3)", "popularity"}
    assert all(r["status"] == "ok" for r in runs), [r.get("error") for r in runs]


def test_each_seed_acts_in_its_own_item_space_unless_one_is_asked(tmp_path):
    def sweep(tables, tag):
        folder = quality.main(tiny_args(tmp_path, tag=tag, tables=tables, embedding="random",
                                        baselines=["embedding-mean", "popularity"]))  # fmt: skip
        runs = json.loads((folder / "runs.json").read_text())["runs"]
        assert all(r["status"] == "ok" for r in runs), [r.get("error") for r in runs]
        return folder, {(r["name"], r["seed"]): r for r in runs}

    folder, per_seed = sweep("per-seed", "per-seed")
    _, one = sweep("one", "one")
    for seed in (0, 1):
        assert per_seed["td3 (sb3)", seed]["embedding_seed"] == seed
        assert one["td3 (sb3)", seed]["embedding_seed"] == 0
        kwargs = per_seed["td3 (sb3)", seed]["config"]["env_kwargs"]
        assert kwargs.get("embedding_seed", 0) == seed  # the run itself was made in that space
        assert "embedding_seed" not in one["td3 (sb3)", seed]["config"]["env_kwargs"]

    def users(runs, name, seed):
        return runs[name, seed]["per_user"]["ndcg"]

    # the space-reading baseline differs across seeds only when the seeds' spaces do
    assert users(one, "embedding-mean", 0) == users(one, "embedding-mean", 1)
    assert users(per_seed, "embedding-mean", 0) != users(per_seed, "embedding-mean", 1)
    assert users(per_seed, "popularity", 0) == users(one, "popularity", 1)  # reads no space
    assert per_seed["popularity", 1]["embedding_seed"] == 0  # so no table is fitted for it
    assert (
        "seed s's runs in the item space of embedding_seed s" in (folder / "results.md").read_text()
    )
    # rows kept from the one-space run are flagged in a per-seed table; space-free ones are not
    mixed = quality.main(tiny_args(tmp_path, tag="one", embedding="random", timesteps=150,
                                   baselines=["embedding-mean", "popularity"],
                                   keep=["td3 (sb3)", "popularity"]))  # fmt: skip
    text = (mixed / "results.md").read_text()
    assert "Of those, td3 (sb3) acted in other item spaces" in text
    with pytest.raises(quality.ConfigError, match="tables"):
        quality.main(tiny_args(tmp_path, tables="each"))


def test_report_only_reads_runs_from_before_per_seed_spaces_as_one_space(tmp_path):
    folder = quality.main(tiny_args(tmp_path, algos=[], seeds=1, tables="one"))
    saved = json.loads((folder / "runs.json").read_text())
    del saved["args"]["tables"]  # as runs.json files written before the option were
    (folder / "runs.json").write_text(json.dumps(saved))
    quality.main(tiny_args(tmp_path, report_only=True))
    assert "every run in the item space of embedding_seed 0" in (folder / "results.md").read_text()


def test_paired_against_pairs_split_and_user_units_across_per_seed_splits():
    def record(name, kind, split, users, ndcg):
        per_user = {"user_id": users, "ndcg": ndcg, "return": ndcg}
        return {"name": name, "kind": kind, "status": "ok", "split_seed": split,
                "per_user": per_user}  # fmt: skip

    records = [  # user 7 is a test user of both splits, with other values in each
        record("bc", "bc", 0, [7, 8], [0.1, 0.2]),
        record("bc", "bc", 1, [7, 9], [0.5, 0.0]),
        record("td3 (recipe)", "agent", 0, [7, 8], [0.2, 0.2]),
        record("td3 (recipe)", "agent", 1, [7, 9], [0.2, 0.3]),
    ]
    row = quality.paired_against(records, "bc")["td3 (recipe)"]
    assert row["users"] == 4  # (0, 7), (0, 8), (1, 7), (1, 9): split 1's user 7 is another unit
    assert row["ndcg"][0] == pytest.approx((0.1 + 0.0 - 0.3 + 0.3) / 4)
    # had the splits been pooled by user id, user 7 would pair means over both splits
    pooled = [{**r, "split_seed": 0} for r in records]
    assert quality.paired_against(pooled, "bc")["td3 (recipe)"]["users"] == 1  # only user 7


def test_per_seed_splits_draw_new_test_users_for_every_row(tmp_path):
    def sweep(splits):
        folder = quality.main(tiny_args(tmp_path, tag=splits, splits=splits, algos=[],
                                        bc=True, test_users=None, embedding="random",
                                        anchor=json.dumps({"bc_epochs": 1, "val_users": 3}),
                                        baselines=["popularity"]))  # fmt: skip
        runs = json.loads((folder / "runs.json").read_text())["runs"]
        assert all(r["status"] == "ok" for r in runs), [r.get("error") for r in runs]
        return folder, {(r["name"], r["seed"]): r for r in runs}

    folder, per_seed = sweep("per-seed")
    _, one = sweep("one")

    def users(runs, name, seed):
        return runs[name, seed]["per_user"]["user_id"]

    for name in ("bc", "popularity"):
        assert [per_seed[name, s]["split_seed"] for s in (0, 1)] == [0, 1]
        assert users(per_seed, name, 0) != users(per_seed, name, 1)  # another draw of users
        assert users(one, name, 0) == users(one, name, 1)
        assert users(per_seed, name, 0) == users(one, name, 0)  # split_seed 0 is the default
    assert users(per_seed, "bc", 1) == users(per_seed, "popularity", 1)  # rows share a split
    text = (folder / "results.md").read_text()
    assert "on the user split of split_seed s (2 draws" in text
    with pytest.raises(quality.ConfigError, match="other user splits"):  # kept from split 0
        quality.main(tiny_args(tmp_path, tag="one", splits="per-seed", algos=[], bc=False,
                               baselines=["popularity"], keep=["popularity"]))  # fmt: skip
    with pytest.raises(quality.ConfigError, match="splits"):
        quality.main(tiny_args(tmp_path, splits="each"))
    with pytest.raises(quality.ConfigError, match="temporal"):
        quality.main(tiny_args(tmp_path, splits="per-seed", split_strategy="temporal"))
