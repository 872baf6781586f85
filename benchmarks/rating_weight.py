r"""The anchor's rating weight on VALIDATION users: NDCG@10 against the episode return.

The anchored recipe's cross-entropy (:mod:`agents.anchor`) asks the actor for the user's next
movies whatever their rating, while the environment's reward is the rating of each hit (scaled
to [-1, 1]): a hit on a movie the user disliked costs return. ``rating_weight = beta`` weighs
each logged target by ``exp(beta r)`` (normalised to a mean weight of 1), so liked next movies
pull harder than disliked ones. This script trains the full recipe (``recgym train``'s:
behaviour cloning, critic warm-up, online fine-tuning) for each ``beta`` and seed, and scores
the final agent on ALL validation users (test users are never read), next to the validation
rows of item-kNN and popularity. Each run is an ordinary run folder,
``<runs>/<env>__<algo>__beta<beta>__seed<seed>``; a finished one is read back, not retrained,
so the table can be extended with more betas or seeds.

Output: ``<out>/<dataset>/rating_weight.md`` (and ``.json``). Rerun::

    python -m benchmarks.rating_weight --betas 0 0.5 1 2 --seeds 2
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import default_data_dir, machine, md_table, parse_args, stamp
from recgym.files import atomic_write


@dataclass
class SweepArgs:
    """What a sweep of one recipe setting needs besides the setting's values."""

    dataset: str = field(default="ml-latest-small", metadata={"help": "dataset name"})
    split_strategy: str = field(default="user", metadata={"help": "user or temporal"})
    algo: str = field(default="ddpg", metadata={"help": "ddpg, td3 or sac"})
    seeds: int = field(default=2, metadata={"help": "seeds per value (0..seeds-1)"})
    timesteps: int = field(default=5_000, metadata={"help": "online steps per run"})
    embedding: str = field(default="sasrec", metadata={"help": "item space (the agents' default)"})
    embedding_dim: int = field(default=32, metadata={"help": "embedding dimension"})
    anchor: str = field(default="{}", metadata={"help": "JSON of other AnchorSettings overrides"})
    hyperparameters: str = field(default="{}", metadata={"help": "JSON of SB3 overrides"})
    baselines: list[str] = field(default_factory=lambda: ["itemknn", "popularity"],
                                 metadata={"help": "baselines on the same users"})  # fmt: skip
    runs: str = field(default="runs/rating_weight", metadata={"help": "folder of run folders"})
    finished_only: bool = field(
        default=False, metadata={"help": "score only the runs already finished (train none)"}
    )
    out: str = field(default="benchmarks/results", metadata={"help": "output folder"})


@dataclass
class Args(SweepArgs):
    """Sweep the anchor's rating weight; score each run on the validation users."""

    betas: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0],
                               metadata={"help": "rating weights to train"})  # fmt: skip


def run_config(
    args: SweepArgs,
    seed: int,
    anchor: dict[str, Any] | None = None,
    hyperparameters: dict[str, Any] | None = None,
) -> Any:
    """A sweep's run: the main job's recipe, scored on every val user.

    ``anchor`` and ``hyperparameters`` are laid over ``args.anchor`` and
    ``args.hyperparameters`` (the swept setting).
    """
    from agents.config import RunConfig

    env_kwargs: dict[str, Any] = {"embedding": args.embedding, "dataset": args.dataset}
    if args.embedding_dim != 32:
        env_kwargs["embedding_dim"] = args.embedding_dim
    if args.split_strategy != "user":
        env_kwargs["split_strategy"] = args.split_strategy
    if default_data_dir() and not os.environ.get("RECGYM_DATA_DIR"):
        env_kwargs["data_dir"] = default_data_dir()  # the environment reads the variable itself
    return RunConfig(
        algo=args.algo,
        env_id="MovieRecSynthetic-v0" if args.dataset == "synthetic" else "MovieRec-v0",
        env_kwargs=env_kwargs,
        timesteps=args.timesteps,
        seed=seed,
        checkpoint_every=0,
        eval_every=args.timesteps,  # one validation point, at the end
        eval_users=1_000_000,  # every validation user
        hyperparameters={**json.loads(args.hyperparameters), **(hyperparameters or {})},
        anchor={**json.loads(args.anchor), **(anchor or {})},
    )


def train_or_read(config: Any, run_dir: Path) -> dict[str, float]:
    """Train the run (or read the finished one back) and return its validation scores."""
    from agents.callbacks import read_curve
    from agents.run import train

    train(config, run_dir, resume=True, progress=False)
    last = read_curve(run_dir / "curve.csv")[-1]
    bc = json.loads((run_dir / "anchor.json").read_text())["bc"]
    return {
        "ndcg": last["ndcg"],
        "hr": last["hr"],
        "return": last["return"],
        "bc_ndcg": max(bc["val_ndcg"]) if bc["val_ndcg"] else math.nan,
    }


def baseline_rows(args: SweepArgs, config: Any) -> dict[str, dict[str, float]]:
    """The baselines' scores on the same validation users."""
    from agents import evaluate, make_baseline

    val = config.make_eval_env("val")
    scores = {}
    for name in args.baselines:
        summary = evaluate(make_baseline(name, val), val, progress=False).summary
        scores[name] = {k: float(summary[k][0]) for k in ("ndcg", "hr", "return")}
    return scores


def fmt(values: list[float], digits: int) -> str:
    """Mean, then the per-seed values."""
    each = ", ".join(f"{v:.{digits}f}" for v in values)
    return f"{statistics.mean(values):.{digits}f} ({each})"


def sweep(
    args: SweepArgs, values: list[float], config_of: Any, prefix: str
) -> tuple[dict[str, list[dict[str, float]]], dict[str, dict[str, float]]]:
    """Train (or read back) the run of every ``(value, seed)``; score the baselines.

    Args:
        args: The sweep's arguments.
        values: The setting's values.
        config_of: ``config_of(value, seed)``, the run's :class:`agents.config.RunConfig`.
        prefix: Run folders are ``<env>__<algo>__<prefix><value>__seed<seed>``.

    Returns:
        Per value (``f"{value:g}"``), each finished seed's validation scores; and the
        baselines' scores on the same users.
    """
    runs = Path(args.runs)
    results: dict[str, list[dict[str, float]]] = {}
    for value in values:
        for seed in range(args.seeds):
            config = config_of(value, seed)
            name = f"{config.env_id}__{args.algo}__{prefix}{value:g}__seed{seed}"
            if args.finished_only and not (runs / name / "model.zip").is_file():
                continue
            print(f"{stamp()} {name}", flush=True)
            results.setdefault(f"{value:g}", []).append(train_or_read(config, runs / name))
    return results, baseline_rows(args, config_of(values[0], 0))


def write_sweep(
    args: SweepArgs,
    setting: str,
    results: dict[str, list[dict[str, float]]],
    base: dict[str, dict[str, float]],
    *,
    title: str,
    what: str,
    rerun: str,
    seconds: float,
    stem: str | None = None,
) -> str:
    """Write ``<out>/<dataset>/<stem>.md`` and ``.json`` (``stem``: ``setting``); return the md."""
    rows = [
        [f"{args.algo}, {setting} {value}", len(r), fmt([x["bc_ndcg"] for x in r], 4),
         fmt([x["ndcg"] for x in r], 4), fmt([x["hr"] for x in r], 4),
         fmt([x["return"] for x in r], 3)]
        for value, r in results.items()
    ]  # fmt: skip
    rows += [
        [name, "-", "-", f"{s['ndcg']:.4f}", f"{s['hr']:.4f}", f"{s['return']:.3f}"]
        for name, s in base.items()
    ]
    header = ["policy", "seeds", "bc val NDCG@10", "val NDCG@10", "val HR@10", "val return"]
    finished = " (with `--finished-only`: the runs already in `--runs`)"
    text = "\n".join(
        [
            f"# {title}: {args.dataset}, {args.split_strategy} split, validation users",
            "",
            f"{stamp()}, {machine()}. Wall time {seconds / 60:.1f} min (finished runs are read "
            f"back, not retrained). Each run is the main job's recipe ({args.timesteps} online "
            f"steps, SASRec item space) with {what}; its final agent is scored on every "
            "validation user. `bc val NDCG@10` is the behaviour-cloned actor's best epoch before "
            "fine-tuning. Mean (then each seed's value, seeds 0, 1, ... of those finished).",
            "",
            md_table(header, rows),
            "",
            f"Rerun: `{rerun}`" + (finished if args.finished_only else ""),
            "",
        ]
    )
    folder = Path(args.out) / args.dataset
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"args": asdict(args), "runs": results, "baselines": base}
    for name, content in (
        (f"{stem or setting}.md", text),
        (f"{stem or setting}.json", json.dumps(payload, indent=1)),
    ):
        with atomic_write(folder / name, "w") as f:
            f.write(content)
    print(text)
    return text


def main(args: Args) -> str:
    """Train the sweep, score it and write the table."""
    start = time.perf_counter()
    results, base = sweep(
        args,
        args.betas,
        lambda beta, seed: run_config(args, seed, anchor={"rating_weight": beta}),
        "beta",
    )
    betas = " ".join(f"{b:g}" for b in args.betas)
    return write_sweep(
        args,
        "rating_weight",
        results,
        base,
        title="Rating weight of the anchor",
        what="the anchor's `rating_weight` set",
        rerun=f"python -m benchmarks.rating_weight --betas {betas} --seeds {args.seeds} "
        f"--algo {args.algo}",
        seconds=time.perf_counter() - start,
    )


if __name__ == "__main__":
    main(parse_args(Args))
