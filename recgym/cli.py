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
    """``recgym data download|info NAME`` and ``recgym data cache [list|clear]``."""
    from recgym.data import find_movielens, get_spec, load_movielens
    from recgym.errors import DatasetNotFoundError

    if args.action == "cache":
        return _data_cache(args)
    spec = get_spec(args.name)
    if args.action == "download":
        path = find_movielens(args.name, args.data_dir)
        if path is not None:
            print(f"{args.name}: found {path} (nothing to download)")
        else:
            path = _data_download(args.name, args.data_dir)
            print(f"{args.name}: downloaded {path}")
        ds = load_movielens(
            args.name, data_dir=path if path.is_dir() else path.parent, download=False
        )
        print(
            f"{args.name}: ready, {ds.n_users:,} users, {ds.n_items:,} movies, "
            f"{ds.n_ratings:,} ratings"
        )
        return 0
    try:
        ds = load_movielens(args.name, data_dir=args.data_dir, download=args.download)
    except DatasetNotFoundError as exc:
        raise RecgymError(exc.cli_message()) from exc
    info = ds.describe()
    rows = [[k, f"{v:.4g}" if isinstance(v, float) else str(v)] for k, v in info.items()]
    rows.append(["published ratings / users", f"{spec.n_ratings:,} / {spec.n_users:,}"])
    _print_table(args.name, ["", "value"], rows)
    return 0


def _data_download(name: str, data_dir: str | None) -> Path:
    """Download ``name`` into ``data_dir`` (default: the cache), with CLI advice on failure."""
    from recgym.data import download_movielens, get_spec
    from recgym.data.catalog import GROUPLENS_URL
    from recgym.errors import ChecksumError, DownloadError

    try:
        return download_movielens(name, dest_dir=data_dir)
    except ChecksumError:
        raise
    except DownloadError as exc:
        zip_name = get_spec(name).zip_name
        raise RecgymError(
            f"{name} is not on disk and {str(exc)[0].lower()}{str(exc)[1:].rstrip('.')}. "
            f"Download {zip_name} from {GROUPLENS_URL} yourself, then pass --data-dir FOLDER "
            "(the folder holding it, zipped or unpacked) or set RECGYM_DATA_DIR to it."
        ) from exc


def _data_cache(args: argparse.Namespace) -> int:
    """``recgym data cache [list]`` and ``recgym data cache clear [NAME ...]``."""
    from recgym.data.cache import cache_entries, clear_cache, human_size
    from recgym.data.paths import cache_dir
    from recgym.errors import suggest

    root = cache_dir()
    entries = cache_entries(root)
    names = sorted({e.name for e in entries})
    if args.cache_action != "clear":
        if not entries:
            print(f"The cache folder {root} holds no recgym data.")
            return 0
        print(
            f"Cache folder: {root} ({_count(len(entries), 'file')}, "
            f"{human_size(sum(e.size for e in entries))})"
        )
        for name in names:
            mine = [e for e in entries if e.name == name]
            print(f"\n{name}  {human_size(sum(e.size for e in mine))}")
            for e in mine:
                rel = e.path.relative_to(root)
                print(f"  {e.kind:<10}  {human_size(e.size):>8}  {rel}")
        print("\nClear with `recgym data cache clear NAME` (or --yes for all).")
        return 0
    if not args.names and not args.yes:
        raise RecgymError(
            f"name the dataset(s) to clear ({', '.join(names) or 'nothing is cached'}), or "
            f"pass --yes to clear everything cached in {root}."
        )
    for name in args.names:
        if name not in names:
            raise RecgymError(
                f"nothing is cached for {name!r}; cached: {', '.join(names) or 'nothing'}."
                + suggest(name, names)
            )
    removed = clear_cache(args.names or None, downloads=args.downloads, root=root)
    print(
        f"Removed {_count(len(removed), 'file')}, "
        f"{human_size(sum(e.size for e in removed))}, from {root}."
    )
    kept = [
        e
        for e in entries
        if e.kind == "download" and e not in removed and (not args.names or e.name in args.names)
    ]
    if kept:
        print(
            f"Kept {_count(len(kept), 'downloaded zip')}, "
            f"{human_size(sum(e.size for e in kept))}; add --downloads to remove them too."
        )
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

    data_parser(sub)
    return p


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _wrap(text: str) -> str:
    import textwrap

    return textwrap.fill(text, width=78, break_on_hyphens=False)


def data_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``recgym data`` command: download, info, cache."""
    names = "ml-latest-small, ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m"
    raw = argparse.RawDescriptionHelpFormatter
    d = sub.add_parser(
        "data",
        help="download, describe, or list and clear the cache of MovieLens data",
        description=_wrap("Get MovieLens data ready, describe it, and manage the cache folder."),
        epilog="examples:\n  recgym data download ml-1m\n  recgym data info ml-latest-small"
        "\n  recgym data cache\n  recgym data cache clear ml-20m",
        formatter_class=raw,
    )
    dsub = d.add_subparsers(dest="action", required=True, metavar="{download,info,cache}")
    where = (
        "Data is looked for in --data-dir, then in each folder of $RECGYM_DATA_DIR, then in "
        "the cache folder ($RECGYM_CACHE_DIR, else the platform's user cache)."
    )
    dl = dsub.add_parser(
        "download",
        help="find a dataset on disk or download it, then prepare it",
        description=_wrap(
            "Find NAME on disk, or download it from GroupLens (checksum-verified), then read "
            "it once so later loads come from the cache. " + where
        ),
        epilog="examples:\n  recgym data download ml-1m\n"
        "  recgym data download ml-latest-small --data-dir ~/data",
        formatter_class=raw,
    )
    dl.add_argument("name", help=names)
    dl.add_argument(
        "--data-dir",
        metavar="FOLDER",
        help="look here first, and download here (default: look in "
        "$RECGYM_DATA_DIR and the cache; download into the cache)",
    )
    info = dsub.add_parser(
        "info",
        help="sizes, density, time span of a dataset",
        description=_wrap("Describe NAME (downloading it if it is not on disk). " + where),
        epilog="example:\n  recgym data info ml-latest-small --no-download",
        formatter_class=raw,
    )
    info.add_argument("name", help=names)
    info.add_argument(
        "--data-dir",
        metavar="FOLDER",
        help="folder holding the dataset, searched first (default: none)",
    )
    info.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="fail instead of downloading a missing dataset (default: download it)",
    )
    cache = dsub.add_parser(
        "cache",
        help="list or clear cached data",
        description=_wrap(
            "List what the cache folder holds (downloads, processed datasets, embeddings), "
            "or clear it. Everything there is rebuilt when needed."
        ),
        epilog="examples:\n  recgym data cache\n  recgym data cache clear ml-20m\n"
        "  recgym data cache clear --yes --downloads",
        formatter_class=raw,
    )
    csub = cache.add_subparsers(dest="cache_action", metavar="{list,clear}")
    csub.add_parser("list", help="list the cached files by dataset (the default)")
    clear = csub.add_parser(
        "clear",
        help="delete cached data",
        description="Delete the processed datasets and embeddings of each NAME (all datasets "
        "with --yes). Downloaded zips are kept unless --downloads is given.",
    )
    clear.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="datasets to clear, as `recgym data cache` lists them",
    )
    clear.add_argument(
        "--yes", action="store_true", help="clear every dataset (needed when no NAME is given)"
    )
    clear.add_argument(
        "--downloads",
        action="store_true",
        help="delete the downloaded zips too (default: keep them)",
    )
    d.set_defaults(func=cmd_data, cache_action=None)
    return d


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
