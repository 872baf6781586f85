"""Data-layer speed: load time and peak memory against a bare ``pyarrow.csv.read_csv``.

For ml-latest-small (real, from $RECGYM_DATA_DIR) and a synthetic ML-20M-sized ``ratings.csv``
(20,000,263 ratings, 138,493 users, 26,744 items), each measurement runs in a fresh process:

* bare:   ``pyarrow.csv.read_csv(ratings.csv)`` (the reference),
* full:   ``load_movielens(..., cache=False)`` to the ready :class:`Dataset` (ratings and movies
  parsed, indexed, time-sorted with the tie hash, duplicates checked),
* cached: ``load_movielens(...)`` from the processed cache, in a new process.

Runs are interleaved (bare, full, cached, bare, ...) and the median of ``--repeats`` is kept, so
both sides see the same machine state. Peak RSS is the child's maximum resident set.

Rerun: ``python -m benchmarks.data_speed`` (``--no-large`` skips the 20M file, which takes about
a minute to generate the first time).
"""

from __future__ import annotations

import os
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import (
    default_data_dir,
    machine,
    md_table,
    parse_args,
    report,
    run_child,
    stamp,
)


@dataclass
class Args:
    """Data-layer load time and memory against a bare pyarrow parse."""

    repeats: int = field(default=5, metadata={"help": "measurements per variant (median kept)"})
    large: bool = field(default=True, metadata={"help": "include the synthetic ML-20M file"})
    scratch: str = field(
        default=os.path.join(tempfile.gettempdir(), "recgym-bench"),
        metadata={"help": "folder for the synthetic file and the cache"},
    )
    data_dir: str | None = field(
        default=default_data_dir(), metadata={"help": "folder holding ml-latest-small"}
    )
    write: bool = field(default=True, metadata={"help": "update benchmarks/RESULTS.md"})


BARE = """
import time, pyarrow.csv as pc
t = time.perf_counter(); table = pc.read_csv({path!r}); seconds = time.perf_counter() - t
result = {{"seconds": seconds, "rows": table.num_rows}}
"""
LOAD = """
import time
from recgym.data import load_movielens
t = time.perf_counter()
ds = load_movielens({name!r}, data_dir={data_dir!r}, download=False, cache={cache})
seconds = time.perf_counter() - t
result = {{"seconds": seconds, "rows": ds.n_ratings}}
"""


def ensure_large(scratch: Path) -> Path:
    """Write the synthetic ML-20M-sized dataset once (about a minute)."""
    folder = scratch / "ml-20m"
    if not (folder / "ratings.csv").is_file():
        from recgym.data import write_movielens

        print("generating the synthetic ML-20M-sized dataset (once) ...", flush=True)
        write_movielens(scratch, "ml-20m", n_users=138_493, n_items=26_744, n_ratings=20_000_263)
    return folder


def measure(name: str, data_dir: Path, ratings: Path, repeats: int, cache_dir: Path) -> dict:
    """Interleave bare, full and cached loads in fresh processes; medians and peak RSS."""
    env = {"RECGYM_CACHE_DIR": str(cache_dir)}
    run_child(LOAD.format(name=name, data_dir=str(data_dir), cache=True), env)  # warm the cache
    runs: dict[str, list[dict]] = {"bare": [], "full": [], "cached": []}
    for _ in range(repeats):
        runs["bare"].append(run_child(BARE.format(path=str(ratings))))
        runs["full"].append(
            run_child(LOAD.format(name=name, data_dir=str(data_dir), cache=False), env)
        )
        runs["cached"].append(
            run_child(LOAD.format(name=name, data_dir=str(data_dir), cache=True), env)
        )
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    rss = {k: max(r["peak_rss_mb"] for r in v) for k, v in runs.items()}
    return {"name": name, "rows": runs["full"][0]["rows"], "median": med, "rss": rss}


def main(args: Args) -> None:
    """Measure each dataset, print the table and update RESULTS.md."""
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    cache_dir = scratch / "cache"
    targets = []
    if args.data_dir and (Path(args.data_dir) / "ml-latest-small" / "ratings.csv").is_file():
        small = Path(args.data_dir)
        targets.append(("ml-latest-small", small, small / "ml-latest-small" / "ratings.csv"))
    if args.large:
        folder = ensure_large(scratch)
        targets.append(("ml-20m", scratch, folder / "ratings.csv"))
    rows = []
    for name, data_dir, ratings in targets:
        print(f"measuring {name} ...", flush=True)
        r = measure(name, data_dir, ratings, args.repeats, cache_dir)
        m, rss = r["median"], r["rss"]
        label = name if name != "ml-20m" else "synthetic ML-20M size"
        rows.append([
            label, f"{r['rows']:,}", f"{m['bare']:.2f}", f"{m['full']:.2f}",
            f"{m['full'] / m['bare']:.2f}x", f"{m['cached']:.2f}",
            f"{rss['bare']:.0f}", f"{rss['full']:.0f}", f"{rss['cached']:.0f}",
        ])  # fmt: skip
    table = md_table(
        ["dataset", "ratings", "bare parse s", "full load s", "full / bare", "cached load s",
         "bare RSS MB", "full RSS MB", "cached RSS MB"],
        rows,
    )  # fmt: skip
    text = (
        f"## Data layer load speed\n\n{stamp()}, {machine()}.\n"
        f"Median of {args.repeats} interleaved runs, each in a fresh process. "
        "Targets (ML-20M size): full / bare <= 1.5x, cached <= 2 s, peak RSS <= 2.5 GB.\n\n"
        f"{table}\n\nRerun: `python -m benchmarks.data_speed`\n"
    )
    report("data_speed", text, args.write)


if __name__ == "__main__":
    main(parse_args(Args))
