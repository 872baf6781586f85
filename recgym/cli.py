"""The ``recgym data`` command: download and describe datasets.

The ``recgym`` console command is :mod:`agents.cli`: it adds ``train``, ``evaluate`` and
``recommend`` (which need the ``agents`` extra) and hands ``recgym data ...`` to :func:`main`
here, so the environment library never imports ``agents`` and ``recgym data`` needs no torch.
``python -m recgym.cli data ...`` works too. Errors print one line (``recgym: error: ...``) and
exit with status 1; bad arguments exit 2.
"""

from __future__ import annotations

import argparse
import sys

from recgym.errors import RecgymError


def _print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    from recgym.text_table import format_table

    print(format_table(title, header, rows, shrink=range(len(header))))


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
