"""``import recgym`` and ``recgym --help`` stay light; recgym never needs torch or agents."""

from __future__ import annotations

import subprocess
import sys

import pytest


def imported(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has loaded once it has run ``code``."""
    loaded = f"','.join(m for m in {modules!r} if m in sys.modules)"
    probe = f"{code}\nimport sys\nprint('LOADED=' + {loaded})"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    (line,) = [ln for ln in out.stdout.splitlines() if ln.startswith("LOADED=")]
    return [m for m in line.removeprefix("LOADED=").split(",") if m]


def test_import_recgym_does_not_import_torch_or_sb3():
    code = "import recgym, recgym.data, recgym.embeddings, gymnasium as gym"
    assert imported(code, ("torch", "stable_baselines3")) == []


HEAVY = ("numpy", "pandas", "scipy", "torch", "stable_baselines3", "gymnasium")


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["train", "--help"],
        ["evaluate", "--help"],
        ["recommend", "--help"],
    ],
)
def test_recgym_help_imports_nothing_heavy(argv):
    """`recgym --help` answers at once: it imports no NumPy, pandas, SciPy, torch or SB3."""
    code = f"from agents.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    assert imported(code, HEAVY) == []


def test_import_recgym_imports_no_pandas_or_scipy():
    code = "import recgym, gymnasium as gym\nassert 'MovieRec-v0' in gym.registry"
    assert imported(code, ("pandas", "scipy", "torch")) == []


BLOCK_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "stable_baselines3"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoTorch())
from agents.cli import main
"""


def test_recgym_data_and_help_work_without_torch(tmp_path):
    from recgym.data import generate, write_movielens

    write_movielens(tmp_path, "ml-latest-small", data=generate(40, 100, 800, rng=0))
    code = BLOCK_TORCH + (
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0\n"
        f"assert main(['data', 'info', 'ml-latest-small', '--data-dir', {str(tmp_path)!r},\n"
        "             '--no-download']) == 0\n"
        "assert main(['train', '--timesteps', '10']) == 1\n"
        "assert 'torch' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "COMMAND" in out.stdout and "40" in out.stdout  # help, then the 40 users' table
    assert "needs the agents extra (" in out.stderr and "pip install 'recgym[agents]'" in out.stderr


def test_recgym_never_imports_agents():
    """The layout's promise, read from the source: no module of recgym imports agents."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "recgym"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "agents"]
    assert not offenders


def test_data_help_text_matches_recgym_cli():
    """`recgym --help` lists `data` with recgym.cli's own summary of it."""
    import argparse

    from agents.cli import DATA_HELP
    from recgym.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    (data,) = [a for a in sub._choices_actions if a.dest == "data"]
    assert data.help == DATA_HELP


def test_lazy_names_load_on_first_use_and_unknown_names_say_so():
    code = (
        "import sys, recgym, recgym.envs\n"
        "assert 'recgym.envs.movie_rec' not in sys.modules\n"
        "assert 'MovieRecEnv' in dir(recgym) and 'build_context' in dir(recgym.envs)\n"
        "from recgym.envs.movie_rec import MovieRecEnv\n"
        "assert recgym.MovieRecEnv is recgym.envs.MovieRecEnv is MovieRecEnv\n"
        "try:\n"
        "    recgym.envs.MovieRecEnvv\n"
        "except AttributeError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "module 'recgym.envs' has no attribute 'MovieRecEnvv'"
