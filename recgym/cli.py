"""The ``recgym`` command line: train, evaluate, recommend, data.

``train``, ``evaluate`` and ``recommend`` need the ``agents`` extra (torch and
Stable-Baselines3), imported only when those commands run; ``data`` needs nothing more.
Errors print one line (``recgym: error: ...``) and exit with status 1; bad arguments exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from recgym.errors import RecgymError

# the baselines of agents.policies (repeated here so `recgym --help` needs no torch)
BASELINE_NAMES = ("random", "popularity", "itemknn", "embedding-mean", "oracle")


def _agents():
    try:
        import agents.run as run
    except ImportError as exc:  # pragma: no cover - depends on the install
        missing = (exc.name or "").split(".")[0]
        if missing in ("torch", "stable_baselines3", "tensorboard", "rich"):
            raise RecgymError(
                f"this command needs the agents extra ({missing} is missing): "
                "pip install 'recgym[agents]'"
            ) from exc
        raise RecgymError(
            f"cannot import {exc.name!r}: reinstall recgym (pip install -e '.[agents]')"
        ) from exc
    return run


def _print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        print("| " + " | ".join(header) + " |")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    table = Table(title=title, show_lines=False)
    for h in header:
        table.add_column(h, overflow="fold")
    for r in rows:
        table.add_row(*r)
    Console(width=max(120, os.get_terminal_size(0).columns if sys.stdin.isatty() else 160)).print(
        table
    )


def _env_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if getattr(args, "dataset", None):
        out["dataset"] = args.dataset
    if getattr(args, "data_dir", None):
        out["data_dir"] = args.data_dir
    if getattr(args, "embedding_dim", None):
        out["embedding_dim"] = args.embedding_dim
    if getattr(args, "split_strategy", None):
        out["split_strategy"] = args.split_strategy
    return out


def _parse_value(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# ------------------------------------------------------------------------------ commands
def cmd_train(args: argparse.Namespace) -> int:
    """``recgym train``: train, checkpoint, then evaluate next to the baselines."""
    run = _agents()
    hyper = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise RecgymError(f"--set {item!r}: expected key=value, e.g. --set gamma=0.95")
        hyper[key] = _parse_value(value)
    config = run.RunConfig(
        algo=args.algo,
        env_id=args.env,
        env_kwargs=_env_overrides(args),
        timesteps=args.timesteps,
        seed=args.seed,
        device=args.device,
        n_envs=args.n_envs,
        offline_steps=args.offline_steps,
        checkpoint_every=args.checkpoint_every,
        eval_every=args.eval_every,
        hyperparameters=hyper,
    ).validate()
    out = (
        Path(args.out)
        if args.out
        else Path("runs", f"{args.env}__{args.algo}__{args.seed}__{int(time.time())}")
    )
    if out.exists() and (out / "model.zip").exists() and not args.resume:
        raise RecgymError(f"{out} already holds a finished run; pass another --out or --resume.")
    print(f"run directory: {out}")
    run.train(config, out, resume=args.resume)
    if args.no_eval:
        return 0
    results = run.evaluate_run(out, baselines=tuple(args.baselines), max_users=args.eval_users)
    _show_results(f"Test users ({results[0].n_users}), full ranking", results)
    print(f"table written to {out / 'eval.md'}")
    return 0


def _show_results(title: str, results) -> None:
    from agents.evaluate import COLUMNS

    k = results[0].k
    header = ["policy"] + [n.replace("@k", f"@{k}") for _, n in COLUMNS]
    header += ["coverage", "novelty"]
    rows = []
    for r in results:
        cells = [r.policy]
        for key, _ in COLUMNS:
            m, lo, hi = r.summary[key]
            cells.append(f"{m:.4f} ±{(hi - lo) / 2:.4f}" if hi == hi else f"{m:.4f}")
        cells += [f"{r.coverage:.3f}", f"{r.novelty:.2f}"]
        rows.append(cells)
    _print_table(title + " (mean ±95% CI over users)", header, rows)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``recgym evaluate RUN_DIR``: the evaluation table of a saved run."""
    run = _agents()
    results = run.evaluate_run(
        args.run_dir,
        baselines=tuple(args.baselines),
        split=args.split,
        max_users=args.max_users,
        env_overrides=_env_overrides(args),
    )
    _show_results(f"{args.split} users ({results[0].n_users}), full ranking", results)
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    """``recgym recommend RUN_DIR --user ID``: a user's last movies and their top-k."""
    import numpy as np

    run = _agents()
    config = run.read_config(args.run_dir)
    model = run.load_model(args.run_dir)
    overrides = _env_overrides(args)
    env = None
    for split in ("test", "val", "train"):
        candidate = config.make_eval_env(split, **overrides)
        ds = candidate.dataset
        ds.user_index(args.user)  # UnknownUserError for users not in the dataset
        if args.user in candidate.episode_user_ids:
            env = candidate
            break
    if env is None:
        raise RecgymError(
            f"User {args.user} is in {ds.name} but has too few ratings for an episode "
            f"(needs more than frame_size={candidate.frame_size})."
        )
    run.check_compatible(model, env)
    if not 1 <= args.k <= env.dataset.n_items:
        raise RecgymError(f"-k {args.k} must be between 1 and {env.dataset.n_items}.")
    obs, _ = env.reset(options={"user_id": args.user})
    action = model.predict(obs, deterministic=True)[0]
    items, scores = env.context.ranker.topk(np.asarray(action), args.k, env.blocked_mask())
    table = env.dataset.item_table
    lo, hi = env.dataset.rating_range
    hist, scaled = env.history()
    rows = []
    for item, r in zip(hist[-10:], scaled[-10:], strict=True):
        t = table.iloc[int(item)]
        year = "" if t["year"] is None or str(t["year"]) == "<NA>" else str(t["year"])
        rating = (float(r) + 1) / 2 * (hi - lo) + lo
        rows.append([t["title"], year, t["genres"].replace("|", ", "), f"{rating:.1f}"])
    split_note = f"{env.context.split_name} split"
    _print_table(
        f"User {args.user} ({split_note}): last {len(rows)} watched, oldest first",
        ["title", "year", "genres", "rating"],
        rows,
    )
    rows = []
    for rank, (item, score) in enumerate(zip(items[0], scores[0], strict=True), 1):
        t = table.iloc[int(item)]
        year = "" if str(t["year"]) == "<NA>" else str(t["year"])
        rows.append([str(rank), t["title"], year, t["genres"].replace("|", ", "), f"{score:.3f}"])
    _print_table(
        f"Top {args.k} for user {args.user} ({config.algo})",
        ["#", "title", "year", "genres", "score"],
        rows,
    )
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """``recgym data download|info NAME``."""
    from recgym.data import download_movielens, get_spec, load_movielens

    spec = get_spec(args.name)
    if args.action == "download":
        path = download_movielens(args.name, progress=True)
        print(f"{args.name}: {path}")
        ds = load_movielens(args.name, data_dir=args.data_dir)
        print(f"processed: {ds}")
        return 0
    ds = load_movielens(args.name, data_dir=args.data_dir, download=args.download)
    info = ds.describe()
    rows = [[k, f"{v:.4g}" if isinstance(v, float) else str(v)] for k, v in info.items()]
    rows.append(["published ratings / users", f"{spec.n_ratings:,} / {spec.n_users:,}"])
    _print_table(args.name, ["", "value"], rows)
    return 0


# -------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(
        prog="recgym", description="Reinforcement-learning recommenders on real MovieLens users."
    )
    sub = p.add_subparsers(dest="command", required=True)

    def env_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--dataset", help="MovieLens name or 'synthetic' (default: the id's)")
        sp.add_argument("--data-dir", help="folder holding the dataset")
        sp.add_argument("--embedding-dim", type=int, help="embedding dimension (default 32)")

    t = sub.add_parser("train", help="train an agent, then evaluate it next to baselines")
    t.add_argument("--algo", default="ddpg", help="ddpg (default), td3, sac")
    t.add_argument("--env", default="MovieRec-v0", help="registered environment id")
    env_options(t)
    t.add_argument("--split-strategy", choices=["user", "temporal"])
    t.add_argument("--timesteps", type=int, default=20_000, help="environment steps")
    t.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--n-envs", type=int, default=1, help="parallel users while training")
    t.add_argument("--offline-steps", type=int, default=0,
                   help="gradient steps of offline pre-training on logged transitions")  # fmt: skip
    t.add_argument("--checkpoint-every", type=int, default=5_000)
    t.add_argument("--eval-every", type=int, default=0, help="validation curve interval")
    t.add_argument("--out", help="run directory (default runs/env__algo__seed__time)")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    t.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    t.add_argument("--eval-users", type=int, help="evaluate only the first N test users")
    t.add_argument("--baselines", nargs="*", default=list(BASELINE_NAMES))
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="SB3 hyperparameter override, e.g. --set learning_rate=3e-4")  # fmt: skip
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="evaluation table of a saved run")
    e.add_argument("run_dir")
    e.add_argument("--split", default="test", choices=["test", "val", "train"])
    e.add_argument("--max-users", type=int)
    e.add_argument("--baselines", nargs="*", default=list(BASELINE_NAMES))
    env_options(e)
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("recommend", help="a user's last movies and their top-k")
    r.add_argument("run_dir")
    r.add_argument("--user", type=int, required=True, help="MovieLens userId")
    r.add_argument("-k", type=int, default=10)
    env_options(r)
    r.set_defaults(func=cmd_recommend)

    d = sub.add_parser("data", help="download or describe a MovieLens dataset")
    d.add_argument("action", choices=["download", "info"])
    d.add_argument("name", help="ml-latest-small, ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m")
    d.add_argument("--data-dir")
    d.add_argument("--no-download", dest="download", action="store_false",
                   help="info: fail instead of downloading a missing dataset")  # fmt: skip
    d.set_defaults(func=cmd_data)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``recgym`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (RecgymError, FileNotFoundError) as exc:
        print(f"recgym: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("recgym: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
