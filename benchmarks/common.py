"""Helpers shared by the benchmark scripts: machine description, timing, RESULTS.md sections."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"


def machine() -> str:
    """One line naming the CPU, cores, memory and library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    import numpy
    import pyarrow

    return (
        f"{cpu}, {os.cpu_count()} cores{mem}; Python {platform.python_version()}, "
        f"numpy {numpy.__version__}, pyarrow {pyarrow.__version__}"
    )


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` over ``repeats`` calls, and all the times."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def run_child(code: str, env: dict[str, str] | None = None) -> dict:
    """Run Python ``code`` in a fresh process; it must print one JSON line last.

    Returns:
        The JSON object, with ``peak_rss_mb`` (the child's peak resident set, VmHWM) added.
    """
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report its
    # parent's high-water mark.
    wrapper = (
        code
        + "\nimport re as _re, json as _j\n"
        + "_r = dict(result)\n"
        + "_s = open('/proc/self/status').read()\n"
        + "_r['peak_rss_mb'] = int(_re.search(r'VmHWM:\\s+(\\d+)', _s).group(1)) / 1024\n"
        + "print(_j.dumps(_r))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_section(name: str, markdown: str) -> None:
    """Replace (or append) the section ``name`` of benchmarks/RESULTS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f"{start}\n{markdown.rstrip()}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def report(section: str, text: str, write: bool) -> None:
    """Print a result section and, with ``write``, put it into RESULTS.md."""
    print(text)
    if write:
        write_section(section, text)


def stamp() -> str:
    """UTC date and time, for result headers."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def md_table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def parse_args(cls: type, argv: list[str] | None = None):
    """Build an ``argparse`` parser from a dataclass (help from each field's ``help`` metadata).

    Field names become ``--kebab-case`` options; booleans become ``--flag/--no-flag``; list
    fields take several values.
    """
    import argparse
    import dataclasses
    import typing

    parser = argparse.ArgumentParser(description=(cls.__doc__ or "").strip().splitlines()[0])
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        opt = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_ = f.metadata.get("help", "") + f" (default: {default})"
        kind = hints[f.name]
        if kind is bool:
            parser.add_argument(
                opt, action=argparse.BooleanOptionalAction, default=default, help=help_
            )
        elif typing.get_origin(kind) is list:
            (item,) = typing.get_args(kind)
            parser.add_argument(opt, nargs="*", type=item, default=default, help=help_)
        else:
            args = typing.get_args(kind)
            base = next((a for a in args if a is not type(None)), kind) if args else kind
            parser.add_argument(opt, type=base, default=default, help=help_)
    return cls(**vars(parser.parse_args(argv)))


def default_data_dir() -> str | None:
    """``$RECGYM_DATA_DIR``, else ``../shared/data`` beside the repository if it exists."""
    if os.environ.get("RECGYM_DATA_DIR"):
        return os.environ["RECGYM_DATA_DIR"]
    shared = HERE.parent.parent / "shared" / "data"
    return str(shared) if shared.is_dir() else None
