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
from pathlib import Path

from recgym.errors import RecgymError


def _print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    from recgym.text_table import format_table

    print(format_table(title, header, rows, shrink=range(len(header))))


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
