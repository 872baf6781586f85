r"""SASRec / GRU4Rec tuning on validation users, and the chosen configuration on test users.

Each (configuration, seed) run trains :func:`agents.sasrec.fit_sasrec` on the train split
(early-stopped by the offline validation scorer), then replays every VALIDATION user with
:func:`agents.evaluate.evaluate` (the protocol of the benchmark tables); with ``--test`` also
every TEST user. Baselines from :func:`agents.make_baseline` are evaluated on the same users for
scale. Choices are made on validation numbers only; ``--test`` is for the final configuration.

Output, in ``<out>/<dataset>/<split_strategy>/``: ``sasrec_runs.jsonl`` (one record per run,
appended as runs finish: configuration, per-epoch validation curve, best epoch, wall and CPU
seconds of training, evaluation metrics) and ``sasrec.md`` (the table of every record in the
file, so runs of several invocations accumulate).

Rerun (the sweep of agents/sasrec.py's defaults)::

    python -m benchmarks.sasrec_tuning --configs '[{}, {"arch": "gru"}]' --seeds 0
    python -m benchmarks.sasrec_tuning --configs '[{}]' --seeds 0 1 2 --test
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import default_data_dir, machine, md_table, parse_args, stamp


@dataclass
class Args:
    """Tune SASRec/GRU4Rec on validation users (and evaluate on test users with --test)."""

    dataset: str = field(default="ml-latest-small", metadata={"help": "dataset name"})
    split_strategy: str = field(default="user", metadata={"help": "user or temporal"})
    configs: str = field(
        default="[{}]", metadata={"help": "JSON list of SASRecConfig overrides, one per run"}
    )
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "training seeds"})
    test: bool = field(default=False, metadata={"help": "also evaluate on test users"})
    baselines: list[str] = field(
        default_factory=lambda: ["popularity", "itemknn"],
        metadata={"help": "baselines evaluated on the same users (once per invocation)"},
    )
    out: str = field(default="benchmarks/results", metadata={"help": "output folder"})
    data_dir: str | None = field(default=None, metadata={"help": "where the dataset is"})
    threads: int | None = field(default=None, metadata={"help": "torch threads (default: torch's)"})


def _summary(result: Any, prefix: str) -> dict[str, float]:
    return {f"{prefix}_{m}": result.summary[m][0] for m in ("ndcg", "hr")} | {
        f"{prefix}_eval_seconds": result.seconds
    }


def main(argv: list[str] | None = None) -> None:
    """Run the sweep and write the records and the table."""
    args = parse_args(Args, argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from agents.evaluate import evaluate
    from agents.policies import make_baseline
    from agents.sasrec import SASRecConfig, fit_sasrec
    from recgym.envs import MovieRecEnv

    folder = Path(args.out) / args.dataset / args.split_strategy
    folder.mkdir(parents=True, exist_ok=True)
    runs = folder / "sasrec_runs.jsonl"
    kw = {"dataset": args.dataset, "split_strategy": args.split_strategy,
          "data_dir": args.data_dir or default_data_dir()}  # fmt: skip
    envs = {s: MovieRecEnv(split=s, **kw) for s in (["val", "test"] if args.test else ["val"])}
    host = machine() + f"; torch {torch.__version__}, {torch.get_num_threads()} threads"

    def write(record: dict) -> None:
        with runs.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    for name in args.baselines:
        record: dict[str, Any] = {"policy": name, "time": stamp(), "machine": host}
        for split, env in envs.items():
            record |= _summary(evaluate(make_baseline(name, env), env, progress=False), split)
        print(record)
        write(record)
    for overrides in json.loads(args.configs):
        config = SASRecConfig.from_options(**overrides)
        for seed in args.seeds:
            wall, cpu = time.perf_counter(), time.process_time()
            policy = fit_sasrec(envs["val"], config, seed=seed, progress=True)
            record = {
                "policy": policy.name,
                "overrides": overrides,
                "config": asdict(config),
                "seed": seed,
                "time": stamp(),
                "machine": host,
                "train_wall_seconds": time.perf_counter() - wall,
                "train_cpu_seconds": time.process_time() - cpu,
                "best_epoch": policy.meta["best_epoch"],
                "epochs": len(policy.meta["history"]),
                "curve": policy.meta["history"],
                "scorer_val_ndcg": max(h["ndcg"] for h in policy.meta["history"]),
            }
            for split, env in envs.items():
                record |= _summary(evaluate(policy, env, progress=False), split)
            print({k: v for k, v in record.items() if k != "curve"})
            write(record)
    records = [json.loads(line) for line in runs.read_text().splitlines() if line]
    (folder / "sasrec.md").write_text(table(records, args))


def table(records: list[dict], args: Args) -> str:
    """Markdown: one row per record, validation (and test) NDCG@10 / HR@10, timings."""

    def f(x: object, fmt: str = ".4f") -> str:
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)

    from agents.sasrec import SASRecConfig

    defaults = asdict(SASRecConfig())
    rows = []
    for r in records:
        # the settings that differ from today's defaults (records keep their full config)
        diff = {k: v for k, v in r.get("config", {}).items()
                if k != "device" and v != defaults.get(k)}  # fmt: skip
        rows.append([
            r["policy"], json.dumps(diff) if "config" in r else "", r.get("seed", ""),
            f(r.get("scorer_val_ndcg")), f(r.get("val_ndcg")), f(r.get("val_hr")),
            f(r.get("test_ndcg")), f(r.get("test_hr")),
            f"{r.get('best_epoch', '')}/{r.get('epochs', '')}" if "epochs" in r else "",
            f(r.get("train_wall_seconds"), ".0f"), f(r.get("train_cpu_seconds"), ".0f"),
            f(r.get("val_eval_seconds"), ".1f"), r["time"],
        ])  # fmt: skip
    header = ["policy", "settings (vs defaults)", "seed", "val NDCG@10 (scorer)", "val NDCG@10",
              "val HR@10", "test NDCG@10", "test HR@10", "best/epochs", "train wall s",
              "train CPU s", "val eval s", "when"]  # fmt: skip
    return (
        f"# SASRec / GRU4Rec runs, {args.dataset}, {args.split_strategy} split\n\n"
        "Written by `python -m benchmarks.sasrec_tuning` (see its docstring); validation "
        "numbers choose, test numbers only for the chosen configuration. Settings: the fields "
        'of `agents.sasrec.SASRecConfig` that differ from its current defaults. "scorer": '
        'the offline validation scorer that early-stops training; "val"/"test": '
        "`agents.evaluate` on those users (the benchmark protocol). Timings on a shared 2-core "
        "machine with other jobs running: noisy; CPU seconds count this process only.\n\n"
        + md_table(header, rows)
        + "\n"
    )


if __name__ == "__main__":
    main()
