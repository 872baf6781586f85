"""The ``recgym`` command: train, evaluate and recommend with agents; ``data`` for datasets.

``train``, ``evaluate`` and ``recommend`` need the ``agents`` extra (torch and
Stable-Baselines3), imported only when they run. ``recgym data ...`` is handed as it is to
:func:`recgym.cli.main`, which needs neither. ``recgym --help`` imports nothing heavy (no
NumPy, no torch), so it answers at once.

Errors print one line (``recgym: error: ...``) and exit with status 1; bad arguments exit 2.
Progress goes to standard error: a bar on a terminal, plain log lines otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agents.config import (
    ALGO_NAMES,
    BASELINES,
    DEFAULT_BASELINES,
    RECIPE_NAMES,
    TRAIN_ONLY_ENV_KWARGS,
    RunConfig,
    config_differences,
)

DEFAULTS = RunConfig()
# recgym.cli's summary of its data command (a test keeps the two equal)
DATA_HELP = "download, describe, or list and clear the cache of MovieLens data"

DESCRIPTION = """\
Reinforcement-learning recommenders on real MovieLens users: train a
Stable-Baselines3 agent on a recgym environment, evaluate it next to baselines
on held-out users, and ask it for a user's next movies."""

EXAMPLES = """\
examples:
  recgym train --algo td3 --out runs/td3
  recgym evaluate runs/td3 --split val --max-users 20
  recgym recommend runs/td3 --user 414 -k 10
  recgym data info ml-latest-small

'recgym COMMAND --help' describes each command."""

TRAIN_DESCRIPTION = """\
Train an agent, checkpointing as it goes, then evaluate it next to the
baselines on the test users (full ranking over the catalogue) and print the
table. Without a terminal, progress is logged as plain lines to stderr.

By default DDPG, TD3 and SAC train with the anchored recipe (DQN: plain SB3):
the actor is first cloned from the logged next items of the train users
(full-softmax cross-entropy), the critic is warmed up on the same logs, and
online fine-tuning keeps the clone as an anchor (advantage-weighted loss).
--set hit_weight=3 adds a policy-gradient term that raises the slate items
that earned the reward (off by default: it lowered NDCG@10).
--recipe sb3 trains plain Stable-Baselines3 from scratch instead.

The run folder (--out) holds:
  config.json           the run's configuration (train again with --config)
  hyperparameters.json  the hyperparameters the model actually used
  checkpoints/          model and replay buffer every --checkpoint-every steps
  tb/                   TensorBoard logs, validation NDCG included
                        (tensorboard --logdir RUN/tb)
  curve.csv             validation NDCG, HR and return every --eval-every steps
  model.zip             the final model (SB3: DDPG.load("RUN/model.zip"))
  train.json            steps, gradient updates, seconds
  eval-test-all-users.md, .json
                        the final evaluation (table; full precision)"""

TRAIN_EXAMPLES = """\
examples:
  recgym train                           # DDPG, anchored, 5,000 steps, 4 users
  recgym train --algo sac --timesteps 50000 --out runs/sac
  recgym train --out runs/sac --resume   # continue a killed run
  recgym train --config runs/sac/config.json --seed 1 --out runs/sac-1
  recgym train --set learning_rate=3e-4 \\
               --set 'policy_kwargs={"net_arch": [64, 64]}'
  recgym train --env MovieRecSynthetic-v0 --timesteps 2000   # no download
  recgym train --recipe sb3 --timesteps 20000  # plain SB3 from scratch
  recgym train --train-env hit_discount=0.7    # learn from a reward variant

--config FILE (YAML or JSON) holds RunConfig fields (algo, env_id, env_kwargs,
timesteps, seed, device, n_envs, offline_steps, checkpoint_every, eval_every,
eval_users, hyperparameters, recipe, anchor, wolpertinger_k, train_env_kwargs),
or is a run's config.json; options given on the command line win over it."""

EVALUATE_DESCRIPTION = """\
Evaluate a run's agent next to the baselines: each user of the split is
replayed once, the whole catalogue is ranked at every step, and the table shows
the mean and 95% CI over users. Each evaluation is saved in the run folder under
its own name, eval-SPLIT-USERS-users.md and .json (split, users, seed and date
recorded; full precision), so that none overwrites another."""

EVALUATE_EXAMPLES = """\
examples:
  recgym evaluate runs/td3
  recgym evaluate runs/td3 --split val --max-users 20 --baselines popularity itemknn"""

RECOMMEND_DESCRIPTION = """\
Show a user's latest movies (the agent's state) and the agent's top-k among the
movies they have not rated, as the user is now (their whole log) or as they
were at the end of --as-of DATE."""

RECOMMEND_EXAMPLES = """\
examples:
  recgym recommend runs/td3 --user 414
  recgym recommend runs/td3 --user 414 -k 20 --as-of 2000-01-01"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' line breaks; wraps option help to the terminal."""

    def __init__(self, prog: str, **kwargs: Any) -> None:
        """Help text starts at column 30 (the option names are long)."""
        kwargs.setdefault("max_help_position", 30)
        super().__init__(prog, **kwargs)


class _VersionAction(argparse.Action):
    """``--version``: looked up only when asked for."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: D102
        print(f"recgym {version()}")
        parser.exit()


def version() -> str:
    """The installed recgym version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("recgym")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        import recgym

        return recgym.__version__


# -------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``recgym`` (``data`` is parsed by :mod:`recgym.cli`)."""
    p = argparse.ArgumentParser(
        prog="recgym", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=HelpFormatter
    )
    p.add_argument("--version", action=_VersionAction, help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _train_parser(sub)
    _evaluate_parser(sub)
    _recommend_parser(sub)
    sub.add_parser("data", help=DATA_HELP, add_help=False)  # handed to recgym.cli (see main)
    return p


#: command -> its description and examples ('recgym COMMAND --help')
HELP_TEXTS = {
    "train": (TRAIN_DESCRIPTION, TRAIN_EXAMPLES),
    "evaluate": (EVALUATE_DESCRIPTION, EVALUATE_EXAMPLES),
    "recommend": (RECOMMEND_DESCRIPTION, RECOMMEND_EXAMPLES),
}


def _command(sub, name: str, summary: str, func) -> argparse.ArgumentParser:
    """The parser of command ``name``, which runs ``func(args)``."""
    description, examples = HELP_TEXTS[name]
    p = sub.add_parser(
        name, help=summary, description=description, epilog=examples, formatter_class=HelpFormatter
    )
    p.set_defaults(func=func)
    return p


def _run_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="a run folder made by 'recgym train'")


def _baselines_option(p: argparse.ArgumentParser, what: str = "") -> None:
    p.add_argument(
        "--baselines",
        nargs="*",
        choices=BASELINES,
        metavar="NAME",
        default=list(DEFAULT_BASELINES),
        help=f"{what}of: {', '.join(BASELINES)}; none: --baselines alone (default: all but "
        "sasrec, which trains a model for minutes)",
    )


def _flag(p: argparse.ArgumentParser, name: str, text: str) -> None:
    """An option that is off unless given."""
    p.add_argument(name, action="store_true", help=f"{text} (default: off)")


#: The options of train, evaluate and recommend that override environment arguments
ENV_OPTIONS: dict[str, dict[str, Any]] = {
    "--dataset": {"metavar": "NAME", "help": "MovieLens name or 'synthetic' (default: the id's)"},
    "--data-dir": {
        "metavar": "DIR",
        "help": "folder holding the dataset (default: $RECGYM_DATA_DIR, then the user cache)",
    },
    "--embedding-dim": {
        "type": int,
        "metavar": "N",
        "help": "embedding dimension (default: the run's, or 32)",
    },
    "--embedding-seed": {
        "type": int,
        "metavar": "N",
        "help": "seed of the item space's fit (SASRec's table and the other fitted spaces; "
        "benchmarks.quality gives seed s the table of embedding seed s) (default: the run's, "
        "or 0)",
    },
}


def _env_options(sp: argparse.ArgumentParser) -> None:
    for flag, options in ENV_OPTIONS.items():
        sp.add_argument(flag, **options)


def _train_parser(sub) -> None:
    d = DEFAULTS
    t = _command(sub, "train", "train an agent, then evaluate it next to baselines", cmd_train)
    t.add_argument(
        "--config",
        metavar="FILE",
        help="YAML or JSON RunConfig to start from, e.g. a run's config.json (default: none)",
    )
    t.add_argument(
        "--algo", choices=ALGO_NAMES, help=f"algorithm; dqn needs a discrete id (default: {d.algo})"
    )
    t.add_argument("--env", metavar="ID", help=f"registered environment id (default: {d.env_id})")
    _env_options(t)
    t.add_argument(
        "--embedding",
        metavar="METHOD",
        help="item space the agents act in: sasrec (SASRec's learned item table, fitted on "
        "the train users and cached), implicit, sppmi, svd, genres, random, or a .npy file "
        f"(default: {d.env_kwargs.get('embedding', 'the id')})",
    )
    t.add_argument(
        "--split-strategy",
        choices=["user", "temporal"],
        help="split users 80/10/10, or by time (default: user)",
    )
    t.add_argument(
        "--timesteps", type=int, metavar="N", help=f"environment steps (default: {d.timesteps})"
    )
    t.add_argument("--device", help=f"auto (CUDA if available), cpu, cuda (default: {d.device})")
    t.add_argument("--seed", type=int, help=f"seed of agent and environment (default: {d.seed})")
    t.add_argument(
        "--n-envs",
        type=int,
        metavar="N",
        help=f"users in parallel while training (default: {d.n_envs})",
    )
    t.add_argument(
        "--offline-steps",
        type=int,
        metavar="N",
        help="gradient steps of offline pre-training on logged train transitions "
        f"(default: {d.offline_steps})",
    )
    t.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help=f"steps between checkpoints; 0: none (default: {d.checkpoint_every})",
    )
    t.add_argument(
        "--eval-every",
        type=int,
        metavar="N",
        help="steps between validation points (curve.csv, TensorBoard); the end is "
        f"always one; 0: none (default: {d.eval_every})",
    )
    t.add_argument(
        "--val-users",
        type=int,
        metavar="N",
        help=f"validation users per point (default: {d.eval_users})",
    )
    t.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="SB3 hyperparameter, VALUE in JSON; repeatable, e.g. --set "
        "learning_rate=3e-4 (default: agents/factory.py's)",
    )
    t.add_argument(
        "--recipe",
        choices=RECIPE_NAMES,
        help="anchored: behaviour-cloned actor, critic warm-up, anchored fine-tuning (ddpg, "
        "td3, sac); sb3: plain Stable-Baselines3 from scratch, for comparison (default: "
        "anchored; sb3 for dqn)",
    )
    t.add_argument(
        "--anchor",
        action="append",
        metavar="KEY=VALUE",
        help="a setting of the anchored recipe's offline stages, VALUE in JSON; repeatable, "
        "e.g. --anchor bc_epochs=3 --anchor warmup_steps=0 (default: agents/config.py's "
        "AnchorSettings)",
    )
    t.add_argument(
        "--train-env",
        action="append",
        metavar="KEY=VALUE",
        help="an environment argument for training alone, VALUE in JSON; repeatable: the "
        f"reward ({', '.join(TRAIN_ONLY_ENV_KWARGS)}), e.g. --train-env hit_discount=0.7; "
        "validation and evaluation keep the environment's (default: none)",
    )
    t.add_argument(
        "--wolpertinger",
        type=int,
        metavar="K",
        help="also evaluate (and recommend) with Wolpertinger re-ranking of the actor's K "
        f"nearest movies by the critic; 0: off (default: {d.wolpertinger_k})",
    )
    t.add_argument("--out", metavar="DIR", help="run folder (default: runs/ENV__ALGO__SEED__TIME)")
    _flag(t, "--resume", "continue the run in --out from its newest checkpoint")
    _flag(t, "--no-eval", "skip the final evaluation")
    t.add_argument(
        "--test-users",
        "--eval-users",
        type=int,
        metavar="N",
        dest="test_users",
        help="final evaluation on the first N test users only (default: all)",
    )
    _baselines_option(t, "baselines in the final table, ")


def _evaluate_parser(sub) -> None:
    e = _command(sub, "evaluate", "evaluate a saved run next to baselines", cmd_evaluate)
    _run_argument(e)
    e.add_argument(
        "--split",
        default="test",
        choices=["test", "val", "train"],
        help="users to evaluate on (default: test)",
    )
    e.add_argument(
        "--max-users",
        type=int,
        metavar="N",
        help="only the first N users of the split (default: all)",
    )
    _baselines_option(e)
    e.add_argument(
        "--device", default="auto", help="auto (CUDA if available), cpu, cuda (default: auto)"
    )
    _env_options(e)


def _recommend_parser(sub) -> None:
    r = _command(sub, "recommend", "a user's latest movies and the agent's top-k", cmd_recommend)
    _run_argument(r)
    r.add_argument("--user", type=int, required=True, metavar="ID", help="MovieLens userId")
    r.add_argument("-k", type=int, default=10, help="movies to recommend (default: 10)")
    r.add_argument(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="the user as they were at the end of this day, UTC (default: now, their whole log)",
    )
    _env_options(r)


# ---------------------------------------------------------------------- option handling
def parse_set(items: list[str] | None, option: str = "--set") -> dict[str, Any]:
    """``--set KEY=VALUE`` options (or ``option``'s) -> ``{key: value}``, values parsed as JSON.

    A bare word (``--set ent_coef=auto``) stays a string; anything that looks like a number,
    a list, an object or a quoted string must be valid JSON.

    Raises:
        ConfigError: Naming the option, for a missing ``=`` or a malformed value.
    """
    from recgym.errors import ConfigError

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{option} {item!r}: expected KEY=VALUE, e.g. {option} gamma=0.95")
        try:
            out[key] = json.loads(text)
            continue
        except json.JSONDecodeError as exc:
            error = exc
        word = text.strip()
        if word in ("True", "False", "None"):
            raise ConfigError(f"{option} {item!r}: write JSON: true, false or null.")
        if not word or word[0] in '{["' or word[0].isdigit() or word[0] in "+-.":
            raise ConfigError(
                f"{option} {item!r}: {key} is not valid JSON ({error.msg}, character "
                f"{error.pos + 1}). Quote keys and strings with double quotes, e.g. "
                """--set 'policy_kwargs={"net_arch": [64, 64]}'."""
            )
        out[key] = word
    return out


def _env_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The environment options given (``--dataset`` ...), as environment arguments."""
    names = [*(flag[2:].replace("-", "_") for flag in ENV_OPTIONS), "split_strategy", "embedding"]
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


#: train option -> RunConfig field
_TRAIN_FIELDS = {
    "algo": "algo",
    "env": "env_id",
    "timesteps": "timesteps",
    "seed": "seed",
    "device": "device",
    "n_envs": "n_envs",
    "offline_steps": "offline_steps",
    "checkpoint_every": "checkpoint_every",
    "eval_every": "eval_every",
    "val_users": "eval_users",
    "recipe": "recipe",
    "wolpertinger": "wolpertinger_k",
}


def train_config(args: argparse.Namespace) -> tuple[RunConfig, list[str]]:
    """The RunConfig of ``recgym train``: ``--config``, then the options given; and their names.

    Raises:
        ConfigError: For a bad file, a bad value or a malformed ``--set``.
    """
    from agents.config import load_config_file
    from recgym.errors import ConfigError

    data = load_config_file(args.config) if args.config else {}
    given = [f"--{a.replace('_', '-')}" for a in _TRAIN_FIELDS if getattr(args, a) is not None]
    for attr, name in _TRAIN_FIELDS.items():
        if getattr(args, attr) is not None:
            data[name] = getattr(args, attr)
    for name in ("env_kwargs", "hyperparameters", "anchor", "train_env_kwargs"):
        if not isinstance(data.get(name, {}), dict):
            raise ConfigError(f"{name}={data[name]!r} must be a mapping of names to values.")
    env = _env_overrides(args)
    hyper = parse_set(args.set)
    anchor = parse_set(args.anchor, "--anchor")
    train_env = parse_set(args.train_env, "--train-env")
    given += [f"--{k.replace('_', '-')}" for k in env] + ["--set"] * bool(hyper)
    given += ["--anchor"] * bool(anchor) + ["--train-env"] * bool(train_env)
    data["env_kwargs"] = {**data.get("env_kwargs", DEFAULTS.env_kwargs), **env}
    data["hyperparameters"] = {**data.get("hyperparameters", {}), **hyper}
    data["anchor"] = {**data.get("anchor", {}), **anchor}
    data["train_env_kwargs"] = {**data.get("train_env_kwargs", {}), **train_env}
    return RunConfig.from_dict(data).validate(), given + ["--config"] * bool(args.config)


# ------------------------------------------------------------------------------ commands
def _agents_run():
    from recgym.errors import RecgymError

    try:
        import agents.run as run
    except ImportError as exc:  # pragma: no cover - depends on the install
        missing = (exc.name or "").split(".")[0]
        if missing in ("torch", "stable_baselines3", "tensorboard", "yaml", "tqdm"):
            raise RecgymError(
                f"this command needs the agents extra ({missing} is missing): "
                "pip install 'recgym[agents]'"
            ) from exc
        raise
    return run


def cmd_train(args: argparse.Namespace) -> int:
    """``recgym train``: train, checkpoint, then evaluate next to the baselines."""
    run = _agents_run()
    config, given = train_config(args)
    out = Path(args.out) if args.out else None
    if out is None:
        out = Path("runs", f"{config.env_id}__{config.algo}__{config.seed}__{int(time.time())}")
    saved_file = out / "config.json"
    if args.resume and saved_file.is_file():
        saved = run.read_config(out)
        ignored = []
        if given:  # what the options given would change, laid over the run's own configuration
            over = argparse.Namespace(**{**vars(args), "config": args.config or str(saved_file)})
            ignored = config_differences(run.resolved_config(train_config(over)[0]), saved)
        if ignored:
            ignored_text = "; ".join(ignored)
            print(f"note: resuming with the run's saved configuration; ignored: {ignored_text}")
        config = saved
    print(f"run directory: {out}")
    run.train(config, out, resume=args.resume)
    if args.no_eval:
        return 0
    return _evaluate_and_show(
        run, out, split="test", max_users=args.test_users, baselines=tuple(args.baselines)
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``recgym evaluate RUN``: the evaluation table of a saved run."""
    run = _agents_run()
    return _evaluate_and_show(
        run,
        Path(args.run_dir),
        split=args.split,
        max_users=args.max_users,
        baselines=tuple(args.baselines),
        env_overrides=_env_overrides(args),
        device=args.device,
    )


def _evaluate_and_show(
    run, run_dir: Path, *, split: str, max_users: int | None, **kwargs: Any
) -> int:
    stem = run.evaluation_name(split, max_users)
    existed = (run_dir / f"{stem}.json").is_file()
    results = run.evaluate_run(run_dir, split=split, max_users=max_users, **kwargs)
    print(results_text(results, split))
    for r in results:
        gap = r.extra.get("value_gap")
        if gap:
            print(
                f"{r.policy} critic: predicted return {gap['predicted']:.3f} a step, "
                f"realised {gap['realised']:.3f} (gap {gap['gap']:+.3f})"
            )
    again = " (replacing the earlier evaluation of the same users)" if existed else ""
    print(f"saved: {run_dir / (stem + '.md')} and .json, full precision{again}")
    return 0


def results_text(results: list, split: str, width: int | None = None) -> str:
    """The evaluation table for the terminal: as many columns as fit (see module docs)."""
    from agents.tables import metric_labels, slate_size
    from recgym.text_table import format_table, table_width, terminal_width

    width = terminal_width() if width is None else width
    n = results[0].n_users
    title = f"{split.capitalize()} users ({n}), full ranking: mean ±95% CI over users"
    labels = metric_labels(slate_size(r.k for r in results))
    layouts = [  # (metrics shown with their CI, show coverage and novelty)
        (list(labels), True),
        (["ndcg", "hr"], True),
        (["ndcg", "hr"], False),
        ([], True),
        ([], False),
    ]
    for with_ci, extras in layouts:
        header, rows = _results_cells(results, labels, set(with_ci), extras)
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
        if table_width(widths) <= width:
            break
    everything = with_ci == layouts[0][0] and extras
    note = "" if everything else "(more columns and digits in the saved files)"
    right = range(1, len(header))
    return format_table(title, header, rows, width=width, shrink=[0], right=right, note=note)


def _results_cells(results, labels: dict[str, str], with_ci: set[str], extras: bool):
    from math import nan

    from agents.tables import ci_cell

    header = ["policy", *labels.values()] + (["coverage", "novelty"] * extras)
    rows = []
    for r in results:
        cells = [r.policy]
        for key in labels:
            m, lo, hi = r.summary[key] if key in with_ci else (r.summary[key][0], nan, nan)
            cells.append(ci_cell(m, lo, hi, digits=2 if key == "return" else 4, sep=" ±"))
        if extras:
            cells += [f"{r.coverage:.3f}", f"{r.novelty:.2f}"]
        rows.append(cells)
    return header, rows


def cmd_recommend(args: argparse.Namespace) -> int:
    """``recgym recommend RUN --user ID``: the user's latest movies and the agent's top-k."""
    from agents.recommend import format_day, parse_date, recommend, user_state
    from recgym.text_table import format_table

    run = _agents_run()
    as_of = parse_date(args.as_of) if args.as_of else None
    config = run.read_config(args.run_dir)
    model = run.load_model(args.run_dir)
    env = config.make_eval_env("train", **_env_overrides(args))
    run.check_compatible(model, env)
    state = user_state(env, args.user, as_of)
    items, scores = recommend(model, env, state, args.k, config.wolpertinger_k)
    lo, hi = env.dataset.rating_range
    rows = []
    f = env.frame_size
    for item, rating, ts in zip(
        state.items[-f:], state.ratings[-f:], state.timestamps[-f:], strict=True
    ):
        rows.append([format_day(ts), *env.dataset.item_text(item), f"{float(rating):.1f}"])
    print(
        format_table(
            f"User {args.user}, {state.describe()}: the agent's state, their last {len(rows)} of "
            f"{len(state.items)} ratings (scale {lo:g}-{hi:g}), oldest first",
            ["date", "title", "year", "genres", "rating"],
            rows,
            shrink=[1, 3],
            right=[4],
        )
    )
    print()
    rows = []
    ranking = f", its {config.wolpertinger_k} nearest re-ranked by the critic" * bool(
        config.wolpertinger_k
    )
    for rank, (item, score) in enumerate(zip(items, scores, strict=True), 1):
        rows.append([str(rank), *env.dataset.item_text(item), f"{score:.3f}"])
    print(
        format_table(
            f"Top {args.k} for user {args.user} ({config.algo}{ranking}, {state.describe()}), "
            f"excluding the {len(state.items)} movies they rated",
            ["#", "title", "year", "genres", "Q" if config.wolpertinger_k else "score"],
            rows,
            shrink=[1, 3],
            right=[0, 4],
        )
    )
    return 0


# --------------------------------------------------------------------------------- main
class _StatusFormatter(logging.Formatter):
    """A status line as the library wrote it; a warning says that it is one."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return f"warning: {text}" if record.levelno >= logging.WARNING else text


@contextlib.contextmanager
def _terminal_logging() -> Iterator[None]:
    """While a command runs, the library's messages reach the user.

    The ``agents`` logger's status lines (what a run did, where its files are) go to standard
    output as they are, beside the tables; ``agents.progress`` lines (training and evaluation
    progress without a bar) go to standard error with the time. Restored afterwards.
    """
    status = logging.StreamHandler(sys.stdout)
    status.setFormatter(_StatusFormatter())
    progress = logging.StreamHandler(sys.stderr)
    progress.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    loggers = [
        (logging.getLogger("agents"), status),
        (logging.getLogger("agents.progress"), progress),
    ]
    saved = [(log.level, log.propagate) for log, _ in loggers]
    for log, handler in loggers:
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    try:
        yield
    finally:
        for (log, handler), (level, propagate) in zip(loggers, saved, strict=True):
            log.removeHandler(handler)
            log.setLevel(level)
            log.propagate = propagate


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``recgym`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["data"]:
        from recgym.cli import main as data_main

        return data_main(argv)
    args = build_parser().parse_args(argv)
    try:
        with _terminal_logging():
            return args.func(args)
    except KeyboardInterrupt:
        print("recgym: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from recgym.errors import RecgymError

        if isinstance(exc, (RecgymError, FileNotFoundError)):
            print(f"recgym: error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
