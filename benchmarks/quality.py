r"""Quality benchmark: DDPG, TD3 and SAC from scratch and with the recipe, against baselines.

DDPG, TD3 and SAC, each from scratch and with the anchored recipe, next to the supervised
baselines and the simple ones, on held-out users, several seeds.

Each (agent, recipe, seed) run trains with :func:`agents.run.train` (validation NDCG@k recorded
every ``--eval-every`` steps for the learning curves), then is evaluated on TEST users with the
protocol of :mod:`agents.evaluate` (full ranking, consumed and shown items excluded). Rows:

* ``td3 (sb3)``: Stable-Baselines3 from scratch (``recipe="sb3"``);
* ``td3 (recipe)``: the anchored recipe (:mod:`agents.recipe`), the actor's plain decode;
* ``td3 (recipe+W<K>)``: the same model, Wolpertinger re-ranking of its ``K`` nearest items
  (``--wolpertinger-k``; :mod:`agents.wolpertinger`);
* ``bc``: the behaviour-cloned actor alone (the recipe's start, no critic, no RL);
* the baselines of :func:`agents.policies.make_baseline` (``sasrec`` included), each seeded.

Each seed's runs act in their own item space (``--tables per-seed``, the default): seed ``s``
trains and evaluates the agents, ``bc`` and ``embedding-mean`` in the table fitted with
``embedding_seed=s``, so a row's interval over seeds holds the table's variance as well as the
agent's. ``--tables one`` puts every run in the table of ``embedding_seed`` 0 (the tables of
runs before 2026-12-02). The baselines in :data:`SPACE_FREE` never read the embeddings.

With ``--splits per-seed`` (user split only) seed ``s``'s runs, baselines included, also
draw their users with ``split_seed=s``: each seed is a new draw of the 80/10/10 user split,
with its own train users (and SASRec table) and its own test users. The paired tables then
pair each (split, user) unit: five splits of ml-latest-small give about 300 test units
instead of 61, for the questions 61 users cannot settle. The default, ``one``, keeps
``split_seed=0`` for every run (the README's tables).

Agents also record the critic's predicted return against the realised one on the test users
(``value_gap`` in ``runs.json``). Runs go in parallel over local processes (``--workers``) or a
Ray cluster (``--ray-address``, ``auto`` or ``local``); a run that crashes is reported as failed
in the table, not dropped.

Output, in ``<out>/<dataset>/<tag>/``:

* ``runs/<env>__<algo>-<recipe>__<seed>__<time>/``: each agent's run directory (config, curve,
  model);
* ``runs.json``: one record per row and seed (metrics, train time, hyperparameters, status);
* ``results.md``: mean and 95% CI over seeds of NDCG@k, HR@k, MRR@k, P@k, return, coverage,
  novelty and train time;
* ``curves.png`` (validation NDCG@k vs steps, mean and CI band per agent) and ``bars.png``
  (test NDCG@k per policy).

Rerun (the README's tables; ``--split-strategy temporal`` for the other one)::

    python -m benchmarks.quality --dataset ml-latest-small --split-strategy user --workers 2
"""

from __future__ import annotations

import json
import math
import os
import time
import traceback
import warnings
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.config import BASELINES
from agents.metrics import MetricWarning, mean_ci
from agents.tables import LABELS, ci_cell, metric_labels, slate_size
from benchmarks.common import machine, md_table, parse_args, stamp
from recgym.errors import ConfigError, check_choice

METRICS = tuple(LABELS)  # the per-user metrics, each seed's value the mean over test users
PAIRED_COLUMNS = ("user_id", "ndcg", "return")  # per user, in each record (paired tables)


@dataclass
class Args:
    """Train and evaluate RL agents and baselines on held-out users, several seeds."""

    dataset: str = field(default="ml-latest-small", metadata={"help": "dataset name"})
    algos: list[str] = field(default_factory=lambda: ["ddpg", "td3", "sac"],
                             metadata={"help": "RL algorithms"})  # fmt: skip
    recipes: list[str] = field(default_factory=lambda: ["anchored", "sb3"],
                               metadata={"help": "how each algorithm trains"})  # fmt: skip
    bc: bool = field(default=True, metadata={"help": "the behaviour-cloned actor as a row"})
    baselines: list[str] = field(
        default_factory=lambda: list(BASELINES), metadata={"help": "baselines"}
    )
    seeds: int = field(default=3, metadata={"help": "seeds per policy (0..seeds-1)"})
    timesteps: int = field(default=5_000, metadata={"help": "online steps per agent run"})
    wolpertinger_k: int = field(
        default=20, metadata={"help": "also Wolpertinger rows for the recipe (0: off)"}
    )
    anchor: str = field(default="{}", metadata={"help": "JSON of AnchorSettings overrides"})
    train_env: str = field(
        default="{}",
        metadata={
            "help": 'JSON of training-only environment arguments, e.g. {"hit_discount": 0.7} '
            "(RunConfig.train_env_kwargs: every evaluation keeps the environment's reward)"
        },
    )
    split_strategy: str = field(default="user", metadata={"help": "user or temporal"})
    embedding: str = field(
        default="sasrec",
        metadata={"help": "item space: sasrec (agents.sasrec_embeddings) or a recgym method"},
    )
    embedding_dim: int = field(default=32, metadata={"help": "embedding dimension"})
    tables: str = field(
        default="per-seed",
        metadata={
            "help": "per-seed: seed s's runs act in the item space fitted with embedding_seed "
            "s (agents, bc, embedding-mean), so the intervals include the space's own "
            "variance; one: every run in the space of embedding_seed 0"
        },
    )
    splits: str = field(
        default="one",
        metadata={
            "help": "one: every run on the user split of split_seed 0; per-seed: seed s's "
            "runs (baselines too) on the user split of split_seed s, each seed a new draw "
            "of train/val/test users (paired tables pair (split, user) units)"
        },
    )
    offline_pretrain: bool = field(default=False, metadata={"help": "logged pre-training"})
    offline_steps: int = field(default=20_000, metadata={"help": "offline gradient steps"})
    n_envs: int = field(default=4, metadata={"help": "parallel users per agent run"})
    eval_every: int = field(default=2_500, metadata={"help": "validation curve interval"})
    eval_users: int = field(default=30, metadata={"help": "validation users per curve point"})
    test_users: int | None = field(default=None, metadata={"help": "cap on test users"})
    hyperparameters: str = field(default="{}", metadata={"help": "JSON of SB3 overrides"})
    workers: int = field(default=1, metadata={"help": "parallel local processes"})
    ray_address: str | None = field(
        default=None, metadata={"help": "Ray cluster: 'auto', 'local' or host:port"}
    )
    out: str = field(default="benchmarks/results", metadata={"help": "output folder"})
    tag: str | None = field(default=None, metadata={"help": "sub-folder name (default: split)"})
    data_dir: str | None = field(default=None, metadata={"help": "where the dataset is"})
    keep: list[str] = field(
        default_factory=list,
        metadata={
            "help": "rows (e.g. sasrec, which has its own item embeddings) whose records are "
            "taken from the folder's runs.json instead of run again"
        },
    )
    report_only: bool = field(
        default=False, metadata={"help": "rewrite results.md and the plots from runs.json"}
    )
    fail_seeds: list[int] = field(
        default_factory=list, metadata={"help": "make these agent seeds crash (tests)"}
    )


@dataclass
class Job:
    """One run: an agent (with its recipe), the behaviour-cloned actor or a baseline."""

    kind: str  # "agent" | "bc" | "baseline"
    name: str
    seed: int
    recipe: str = ""

    @property
    def label(self) -> str:
        """The table row: ``"td3 (recipe)"``, ``"td3 (sb3)"``, ``"bc"``, ``"itemknn"``..."""
        if self.kind != "agent":
            return self.name
        return f"{self.name} ({'recipe' if self.recipe == 'anchored' else self.recipe})"

    def owns(self, record: dict[str, Any]) -> bool:
        """Whether ``record`` came from this job (an agent's Wolpertinger row included)."""
        return (record["kind"], record["seed"], record.get("recipe", "")) == (
            self.kind,
            self.seed,
            self.recipe,
        ) and record["name"].split(" (")[0] == self.name


#: Values of ``--tables``: one item space per seed, or one for every run.
TABLES = ("per-seed", "one")
#: Values of ``--splits``: one user split for every run, or one per seed.
SPLITS = ("one", "per-seed")
#: Rows whose results do not depend on the item space (they never read the embeddings).
SPACE_FREE = ("random", "popularity", "itemknn", "sasrec", "oracle")


def embedding_seed(args: Args, name: str, seed: int) -> int:
    """The ``embedding_seed`` of row ``name``'s seed ``seed``: ``seed`` with ``--tables per-seed``.

    With one item space per seed, a row's seeds differ in everything random: the agent's
    initial weights and exploration, and the space it acts in (SASRec's table is seeded by
    ``embedding_seed``). Its interval then holds the space's variance too, which one shared
    table leaves out (refitting the table moved rows by about as much as they differ). The
    rows of :data:`SPACE_FREE` read no space and take table 0 (no table to fit), except with
    ``--splits per-seed``, where every split has tables of its own and they take the seed's
    (the one its agents fit). ``args.tables`` was checked by :func:`main`.
    """
    space_free = name in SPACE_FREE and args.splits != "per-seed"
    return seed if args.tables == "per-seed" and not space_free else 0


def split_seed(args: Args, seed: int) -> int:
    """The ``split_seed`` of seed ``seed``'s runs: ``seed`` with ``--splits per-seed``, else 0."""
    return seed if args.splits == "per-seed" else 0


def env_kwargs(args: Args, space_seed: int = 0, split: int = 0) -> dict[str, Any]:
    """The environment arguments of runs in the item space of ``embedding_seed=space_seed``.

    Args:
        args: The sweep's arguments.
        space_seed: The item table's ``embedding_seed``.
        split: The user split's ``split_seed`` (:func:`split_seed`).
    """
    kw: dict[str, Any] = {
        "dataset": args.dataset,
        "split_strategy": args.split_strategy,
        "embedding": args.embedding,
        "embedding_dim": args.embedding_dim,
    }
    if space_seed:
        kw["embedding_seed"] = space_seed
    if split:
        kw["split_seed"] = split
    if args.data_dir:
        kw["data_dir"] = args.data_dir
    return kw


def resolved_env_kwargs(args: Args, space_seed: int = 0, split: int = 0) -> dict[str, Any]:
    """:func:`env_kwargs` with ``embedding="sasrec"`` replaced by its (cached) matrix."""
    from agents.sasrec_embeddings import resolve_embedding

    return resolve_embedding(env_id(args), env_kwargs(args, space_seed, split))


def job_tables(args: Args, job: Job) -> tuple[int, int]:
    """``job``'s ``(embedding_seed, split_seed)``: its item space and its user split."""
    return embedding_seed(args, job.name, job.seed), split_seed(args, job.seed)


def env_id(args: Args) -> str:
    """The registered id the runs use (the dataset is passed as an argument)."""
    return "MovieRecSynthetic-v0" if args.dataset == "synthetic" else "MovieRec-v0"


def effective_hyperparameters(run_dir: Path) -> dict[str, Any]:
    """The SB3 settings a run used, as it recorded them (``hyperparameters.json``).

    These are read back from the model by :func:`agents.run.train`, so they include the caps a
    run applies (a buffer no larger than the run can fill, ``learning_starts``).
    """
    return json.loads((run_dir / "hyperparameters.json").read_text())


def run_job(job: Job, args: Args, folder: str) -> list[dict[str, Any]]:
    """Train (agents) and evaluate one job; never raises: failures become records.

    Returns:
        One record per table row: an anchored agent with Wolpertinger gives two.
    """
    space, split = job_tables(args, job)
    base: dict[str, Any] = {**asdict(job), "name": job.label, "status": "ok",
                            "embedding_seed": space, "split_seed": split}  # fmt: skip
    start = time.perf_counter()
    records = [dict(base)]
    try:
        from agents.evaluate import evaluate
        from agents.policies import make_baseline

        if args.workers > 1:  # share the cores: torch's default threads would oversubscribe
            import torch

            torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.workers))
        if job.kind == "agent":
            records = _agent_records(job, args, folder, base)
        elif job.kind == "bc":
            result = _behaviour_clone(job, args)
            records[0].update(_metrics(result))
        else:
            from recgym.envs import MovieRecEnv

            env = MovieRecEnv(split="test", **resolved_env_kwargs(args, space, split))
            t0 = time.perf_counter()
            policy = make_baseline(job.name, env, seed=job.seed)
            records[0]["train_seconds"] = time.perf_counter() - t0
            result = evaluate(policy, env, max_users=args.test_users, progress=False)
            records[0].update(_metrics(result))
    except Exception as exc:  # noqa: BLE001 - a crashed run is reported, not fatal
        records = [{**base, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc()[-4000:]}]  # fmt: skip
    for r in records:
        r["seconds"] = time.perf_counter() - start
    return records


def _metrics(result: Any) -> dict[str, Any]:
    """A record's measurements of one evaluation (with each user's NDCG@k and return)."""
    out = {m: result.summary[m][0] for m in METRICS}
    out.update(coverage=result.coverage, diversity=result.diversity, novelty=result.novelty,
               users=result.n_users, k=result.k, **result.extra)  # fmt: skip
    out["per_user"] = {c: result.per_user[c].tolist() for c in PAIRED_COLUMNS}
    return out


def _agent_records(job: Job, args: Args, folder: str, base: dict) -> list[dict[str, Any]]:
    from agents.callbacks import read_curve
    from agents.run import RunConfig, evaluate_run, train

    if job.seed in args.fail_seeds:
        raise RuntimeError(f"injected failure for seed {job.seed} (--fail-seeds)")
    anchored = job.recipe == "anchored"
    config = RunConfig(
        algo=job.name,
        env_id=env_id(args),
        env_kwargs=env_kwargs(args, *job_tables(args, job)),
        timesteps=args.timesteps,
        seed=job.seed,
        device="auto",
        n_envs=args.n_envs,
        offline_steps=args.offline_steps if args.offline_pretrain and not anchored else 0,
        checkpoint_every=0,
        eval_every=args.eval_every,
        eval_users=args.eval_users,
        hyperparameters=json.loads(args.hyperparameters),
        recipe=job.recipe,
        anchor=json.loads(args.anchor) if anchored else {},
        wolpertinger_k=args.wolpertinger_k if anchored else 0,
        train_env_kwargs=json.loads(args.train_env),
    )
    run_dir = Path(folder) / "runs" / f"{env_id(args)}__{job.name}-{job.recipe}__{job.seed}__" \
        f"{int(time.time())}"  # fmt: skip
    train(config, run_dir, progress=False)
    results = evaluate_run(run_dir, baselines=(), max_users=args.test_users, progress=False)
    common = {
        "run_dir": str(run_dir),
        "config": config.to_dict(),
        "hyperparameters": effective_hyperparameters(run_dir),
        "train_seconds": json.loads((run_dir / "train.json").read_text())["seconds"],
    }
    if anchored:
        report = json.loads((run_dir / "anchor.json").read_text())
        common["train_seconds"] += sum(report["seconds"].values())
        common["anchor"] = report
    curve = run_dir / "curve.csv"
    if curve.exists():
        common["curve"] = [[int(p["steps"]), p["ndcg"]] for p in read_curve(curve)]
    records = []
    for i, result in enumerate(results):
        name = base["name"] if i == 0 else f"{job.name} (recipe+W{args.wolpertinger_k})"
        records.append({**base, "name": name, **common, **_metrics(result)})
    return records


def _behaviour_clone(job: Job, args: Args) -> Any:
    """The ``bc`` row: the recipe's behaviour-cloned actor (TD3's), evaluated alone."""
    import gymnasium as gym

    from agents import evaluate, make_agent
    from agents.config import AnchorSettings
    from agents.policies import AgentPolicy
    from agents.recipe import prepare_anchored

    kwargs = resolved_env_kwargs(args, *job_tables(args, job))
    envs = {s: gym.make(env_id(args), split=s, **kwargs).unwrapped
            for s in ("train", "val", "test")}  # fmt: skip
    model = make_agent("td3", envs["train"], recipe="anchored", seed=job.seed, device="auto")
    settings = AnchorSettings.from_dict(json.loads(args.anchor))
    t0 = time.perf_counter()
    prepare_anchored(model, envs["train"], envs["val"], settings, seed=job.seed,
                     stop_after_bc=True, progress=False)  # fmt: skip
    seconds = time.perf_counter() - t0
    result = evaluate(AgentPolicy(model, name="bc"), envs["test"], max_users=args.test_users,
                      progress=False)  # fmt: skip
    result.extra["train_seconds"] = seconds
    return result


def execute(jobs: list[Job], args: Args, folder: Path) -> list[dict[str, Any]]:
    """Run the jobs serially, on local processes, or on Ray."""
    if args.ray_address:
        import ray

        root = str(Path(__file__).resolve().parent.parent)
        env = {
            "env_vars": {"PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
        }
        if args.ray_address == "local":
            ray.init(num_cpus=max(1, args.workers), runtime_env=env, include_dashboard=False,
                     ignore_reinit_error=True)  # fmt: skip
        else:
            ray.init(address=args.ray_address, runtime_env=env, ignore_reinit_error=True)
        remote = ray.remote(num_cpus=1)(run_job)
        try:
            done = ray.get([remote.remote(j, args, str(folder)) for j in jobs])
            return [r for records in done for r in records]
        finally:
            ray.shutdown()
    if args.workers > 1:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            done = pool.map(run_job, jobs, [args] * len(jobs), [str(folder)] * len(jobs))
            return [r for records in done for r in records]
    return [r for j in jobs for r in run_job(j, args, str(folder))]


# ----------------------------------------------------------------------------- aggregation
def aggregate(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per policy: mean and 95% CI (:func:`agents.metrics.mean_ci`) over its successful seeds.

    Each metric becomes ``(mean, low, high)``; ``k`` is the slate size its runs were evaluated
    with (``None`` when none succeeded).
    """
    by_policy: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_policy[r["name"]].append(r)
    out = {}
    for name, runs in by_policy.items():
        ok = [r for r in runs if r["status"] == "ok"]
        row: dict[str, Any] = {"kind": runs[0]["kind"], "seeds_ok": len(ok), "seeds": len(runs)}
        row["k"] = slate_size(r.get("k") for r in ok)
        with warnings.catch_warnings():  # no successful seed: NaN, said in the table
            warnings.simplefilter("ignore", MetricWarning)
            for m in (*METRICS, "coverage", "novelty"):
                row[m] = mean_ci([r[m] for r in ok])
            row["train_seconds"] = mean_ci([r.get("train_seconds", 0.0) for r in ok])
        gaps = [r["value_gap"] for r in ok if "value_gap" in r]
        if gaps:  # agents: the critic's predicted return against the realised one
            row["value_gap"] = {g: mean_ci([x[g] for x in gaps]) for g in gaps[0]}
        row["errors"] = sorted({r["error"] for r in runs if r["status"] != "ok"})
        out[name] = row
    return out


def table(agg: dict[str, dict[str, Any]]) -> str:
    """The markdown results table (agents first, then baselines)."""
    labels = metric_labels(slate_size(a["k"] for a in agg.values()))
    rows = []
    order = {"agent": 0, "bc": 1, "baseline": 2}
    for name, a in sorted(agg.items(), key=lambda kv: (order[kv[1]["kind"]], kv[0])):
        seeds = f"{a['seeds_ok']}/{a['seeds']}" + (
            " (failed: see runs.json)" if a["errors"] else ""
        )
        rows.append(
            [name, seeds]
            + [ci_cell(*a[m]) for m in labels]
            + [ci_cell(*a["coverage"], 3), ci_cell(*a["novelty"], 2)]
            + [ci_cell(*a["train_seconds"], 0)]
        )
    header = ["policy", "seeds ok", *labels.values(), "coverage", "novelty", "train s"]
    return md_table(header, rows)


#: The rows every agent row is paired with on the same users (:func:`paired_against`): its
#: own start, and the issue's yardstick.
PAIRED_REFERENCES = ("bc", "itemknn")


def paired_against(records: list[dict[str, Any]], reference: str) -> dict[str, dict[str, Any]]:
    """Each agent row against the ``reference`` row (``"bc"``, ``"itemknn"``) on the same users.

    For a test user ``u``, ``x_u`` is the mean over the agent row's successful seeds of ``u``'s
    NDCG@k (or return), and ``b_u`` the same for the reference; the difference
    ``d_u = x_u - b_u`` is paired (both rows replayed the same users), so its 95% CI
    (:func:`agents.metrics.mean_ci` over users) is much narrower than the two rows' own
    intervals over seeds: the user-to-user spread, which both rows share, cancels. Against
    ``bc`` it is what RL fine-tuning adds to its start. Users missing from any seed of either
    row are left out.

    The unit is the pair (``split_seed``, user): with ``--splits per-seed`` each seed drew its
    own test users, so ``u`` of split ``s`` is paired with the reference's ``u`` of split ``s``
    (one seed each), and a user drawn into two splits' test sets counts twice, once per split
    (trained on different users each time). With one split every record has ``split_seed`` 0
    and the unit is the user.

    Returns:
        Per agent row: ``users`` (the units) and ``ndcg``/``return`` as ``(mean, low, high)``
        of ``d_u``;
        empty without a successful reference row or without per-user records (runs before
        2026-12-02, and rows taken over with ``--keep`` from them, have none).
    """

    def per_user_means(name: str) -> dict[str, dict[tuple[int, int], float]] | None:
        runs = [r for r in records if r["name"] == name and r["status"] == "ok"]
        if not runs or any("per_user" not in r for r in runs):
            return None
        seeds = Counter(r.get("split_seed", 0) for r in runs)  # runs per split
        out = {}
        for metric in ("ndcg", "return"):
            values: dict[tuple[int, int], list[float]] = defaultdict(list)
            for r in runs:
                split = r.get("split_seed", 0)
                for u, v in zip(r["per_user"]["user_id"], r["per_user"][metric], strict=True):
                    values[split, u].append(v)
            # a unit counts when every run of its split replayed it
            out[metric] = {k: sum(v) / len(v) for k, v in values.items() if len(v) == seeds[k[0]]}
        return out

    base = per_user_means(reference)
    if base is None:
        return {}
    rows = {}
    for name in sorted({r["name"] for r in records if r["kind"] == "agent"}):
        agent = per_user_means(name)
        if agent is None:
            continue
        users = sorted(set(agent["ndcg"]) & set(base["ndcg"]))
        row: dict[str, Any] = {"users": len(users)}
        with warnings.catch_warnings():  # no common user: NaN
            warnings.simplefilter("ignore", MetricWarning)
            for metric in ("ndcg", "return"):
                row[metric] = mean_ci([agent[metric][u] - base[metric][u] for u in users])
        rows[name] = row
    return rows


def paired_table(records: list[dict[str, Any]], reference: str, k: int | None) -> str:
    """The markdown table of :func:`paired_against` (empty when there is nothing to pair)."""
    rows = [
        [name, str(p["users"]), ci_cell(*p["ndcg"]), ci_cell(*p["return"])]
        for name, p in paired_against(records, reference).items()
    ]
    header = ["agent", "users", f"NDCG@{k or 10} - {reference}", f"return - {reference}"]
    return md_table(header, rows) if rows else ""


def gap_table(agg: dict[str, dict[str, Any]]) -> str:
    """The critics' mean predicted discounted return against the realised one, per agent row."""
    rows = [
        [name, *(ci_cell(*a["value_gap"][g]) for g in ("predicted", "realised", "gap"))]
        for name, a in sorted(agg.items())
        if "value_gap" in a
    ]
    header = ["agent", "critic's predicted return", "realised return", "gap (over-estimation)"]
    return md_table(header, rows) if rows else ""


def write_report(folder: Path, args: Args, records: list[dict[str, Any]], wall: float) -> str:
    """Write ``results.md`` and the plots of ``records``; return the markdown."""
    agg = aggregate(records)
    kept = sorted({r["name"] for r in records if r.get("kept")})
    other_space = sorted({  # kept rows that acted in other item spaces than this run's
        r["name"] for r in records
        if r.get("kept") and r["name"] not in SPACE_FREE
        and r.get("embedding_seed", 0) != embedding_seed(args, r["name"], r["seed"])
    })  # fmt: skip
    plots(records, agg, folder)
    gaps = gap_table(agg)
    k = slate_size(a["k"] for a in agg.values())
    paired = {ref: paired_table(records, ref, k) for ref in PAIRED_REFERENCES}
    paired_text = "".join(
        f"Against `{ref}`"
        + (" (what RL adds to its start)" if ref == "bc" else "")
        + f":\n\n{text}\n\n"
        for ref, text in paired.items()
        if text
    )
    text = (
        f"# {args.dataset}, {args.split_strategy} split\n\n"
        f"{stamp()}, {machine()}. Wall time {wall / 60:.1f} min with {args.workers} "
        f"worker(s). Agents: {args.timesteps} steps, {args.n_envs} env(s), embedding "
        f"{args.embedding} dim {args.embedding_dim} ({_tables_text(args)}), offline pre-training "
        f"{args.offline_steps if args.offline_pretrain else 0} steps, hyperparameters "
        f"{args.hyperparameters}, anchor {args.anchor}, training-only environment arguments "
        f"{args.train_env}. Mean ± 95% CI over seeds; each seed's value is the mean over "
        f"{'all' if args.test_users is None else args.test_users} test users."
        + (f" Rows taken from the previous run (`--keep`): {', '.join(kept)}." if kept else "")
        + (
            f" Of those, {', '.join(other_space)} acted in other item spaces than this run "
            "gives their seeds (the previous run's embedding_seed)."
            if other_space
            else ""
        )
        + _splits_text(args)
        + f"\n\n{table(agg)}\n\n"
        + (
            "The critics on the same test users: mean over steps of Q(s, a) for the action "
            "taken, against the discounted return that followed (the model's gamma).\n\n"
            f"{gaps}\n\n"
            if gaps
            else ""
        )
        + (
            "Paired differences: each agent row against a reference row on the same test users "
            + (
                "(per user, the mean over seeds; the difference's mean and 95% CI over users)."
                if args.splits == "one"
                else "(per (split, user) unit, one seed each; the difference's mean and 95% CI "
                "over units, a user drawn into several splits' test sets counting once per split)."
            )
            + "\n\n"
            + paired_text
            if paired_text
            else ""
        )
        + "![curves](curves.png) ![bars](bars.png)\n"
    )
    (folder / "results.md").write_text(text)
    return text


def _splits_text(args: Args) -> str:
    if args.splits == "one":
        return ""
    return (
        f" Seed s's runs, baselines included, on the user split of split_seed s ({args.seeds} "
        "draws of the train/val/test users); the paired tables pair (split, user) units."
    )


def _tables_text(args: Args) -> str:
    if args.tables == "per-seed":
        return "seed s's runs in the item space of embedding_seed s"
    return "every run in the item space of embedding_seed 0"


def plots(records: list[dict[str, Any]], agg: dict[str, dict[str, Any]], folder: Path) -> None:
    """``curves.png`` and ``bars.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ndcg = metric_labels(slate_size(a["k"] for a in agg.values()))["ndcg"]
    fig, ax = plt.subplots(figsize=(6, 4))
    curves: dict[str, list[list[list[float]]]] = defaultdict(list)
    for r in records:
        if r["status"] == "ok" and r.get("curve"):
            curves[r["name"]].append(r["curve"])
    for name, runs in sorted(curves.items()):
        steps = sorted({s for run in runs for s, _ in run})
        points = [dict(map(tuple, run)) for run in runs]
        stats = np.array([mean_ci([p[s] for p in points if s in p]) for s in steps])
        mean, half = stats[:, 0], np.nan_to_num((stats[:, 2] - stats[:, 1]) / 2)
        ax.plot(steps, mean, marker="o", label=name)
        ax.fill_between(steps, mean - half, mean + half, alpha=0.2)
    for name in ("itemknn", "popularity"):
        if name in agg and agg[name]["ndcg"][0] == agg[name]["ndcg"][0]:
            ax.axhline(agg[name]["ndcg"][0], ls="--", lw=1, color="grey")
            ax.annotate(f"{name} (test)", (0.01, agg[name]["ndcg"][0]), fontsize=7,
                        xycoords=("axes fraction", "data"), va="bottom")  # fmt: skip
    ax.set_xlabel("environment steps")
    ax.set_ylabel(f"validation {ndcg}")
    ax.set_title("Learning curves (mean, 95% CI over seeds)")
    if curves:
        ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "curves.png", dpi=120)
    plt.close(fig)

    names = [n for n in sorted(agg, key=lambda n: -np.nan_to_num(agg[n]["ndcg"][0]))]
    means = [agg[n]["ndcg"][0] for n in names]
    halves = [np.nan_to_num((agg[n]["ndcg"][2] - agg[n]["ndcg"][1]) / 2) for n in names]
    fig, ax = plt.subplots(figsize=(6, 4))
    palette = {"agent": "tab:blue", "bc": "tab:orange", "baseline": "tab:grey"}
    colors = [palette[agg[n]["kind"]] for n in names]
    ax.bar(names, np.nan_to_num(means), yerr=halves, color=colors, capsize=3)
    ax.set_yscale("log")
    ax.set_ylabel(f"test {ndcg} (log scale)")
    ax.set_title("Test users, full ranking (95% CI over seeds)")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(folder / "bars.png", dpi=120)
    plt.close(fig)


def main(args: Args) -> Path:
    """Run the sweep, write runs.json, results.md and the plots; return the folder."""
    check_choice("tables", args.tables, TABLES)
    check_choice("splits", args.splits, SPLITS)
    if args.splits == "per-seed" and args.split_strategy != "user":
        raise ConfigError(
            f"--splits per-seed with --split-strategy {args.split_strategy}: only the user "
            "split is drawn at random (the temporal one is fixed by its cut-off times); use "
            "--splits one."
        )
    folder = Path(args.out) / args.dataset / (args.tag or args.split_strategy)
    folder.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        saved = json.loads((folder / "runs.json").read_text())
        # runs before --tables had one table for every run
        ran = Args(**{"tables": "one", **saved["args"], "report_only": True})
        write_report(folder, ran, saved["runs"], saved.get("wall_seconds", math.nan))
        return folder
    jobs = [
        Job("agent", a, s, recipe)
        for recipe in args.recipes
        for a in args.algos
        for s in range(args.seeds)
    ]
    jobs += [Job("bc", "bc", s) for s in range(args.seeds) if args.bc]
    jobs += [Job("baseline", b, s) for b in args.baselines for s in range(args.seeds)]
    kept = kept_records(folder, [j for j in jobs if j.label in args.keep], args.keep)
    other_split = sorted({r["name"] for r in kept
                          if r.get("split_seed", 0) != split_seed(args, r["seed"])})  # fmt: skip
    if other_split:
        raise ConfigError(
            f"--keep {' '.join(other_split)}: {folder / 'runs.json'} ran those rows on other user "
            f"splits than --splits {args.splits} gives their seeds, so they would be paired with "
            "other users; run them again (drop them from --keep) or keep --splits as it was."
        )
    jobs = [j for j in jobs if j.label not in args.keep]
    # the slowest first (sasrec trains for minutes), so parallel workers finish together
    jobs.sort(key=lambda j: j.name != "sasrec")
    start = time.perf_counter()
    for space, split in sorted({job_tables(args, j) for j in jobs}):
        t0 = time.perf_counter()
        resolved_env_kwargs(args, space, split)  # fits each sasrec table once, before the workers
        where = f" on the user split of split_seed {split}" if args.splits == "per-seed" else ""
        print(f"item space of embedding_seed {space}{where}: ready in "
              f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    records = kept + execute(jobs, args, folder)
    wall = time.perf_counter() - start
    runs = {"args": asdict(args), "wall_seconds": wall, "runs": records}
    (folder / "runs.json").write_text(json.dumps(runs, indent=1))
    print(write_report(folder, args, records, wall))
    failed = [r for r in records if r["status"] != "ok"]
    for r in failed:
        print(f"FAILED {r['name']} seed {r['seed']}: {r['error']}")
    return folder


def kept_records(folder: Path, jobs: list[Job], keep: list[str]) -> list[dict[str, Any]]:
    """The records of ``jobs`` from ``folder/runs.json``, each marked ``"kept": true``.

    Args:
        folder: The results folder.
        jobs: The jobs whose rows are kept.
        keep: The row labels asked for (``--keep``).

    Raises:
        ConfigError: If a label names no row of this run, or the file or a record is missing.
    """
    unknown = sorted(set(keep) - {j.label for j in jobs})
    if unknown:
        raise ConfigError(
            f"--keep {' '.join(unknown)}: no such row in this run; rows are labelled like "
            "'td3 (recipe)', 'td3 (sb3)', 'bc', 'sasrec'."
        )
    if not jobs:
        return []
    file = folder / "runs.json"
    if not file.is_file():
        raise ConfigError(f"--keep {' '.join(keep)}: {file} does not exist; run them instead.")
    saved = json.loads(file.read_text())["runs"]
    kept = []
    for job in jobs:
        found = [r for r in saved if job.owns(r)]
        if not found or any(r["status"] != "ok" for r in found):
            raise ConfigError(
                f"--keep {job.label}: {file} has no successful record of seed {job.seed}; run "
                "the row again (drop it from --keep)."
            )
        kept += [{**r, "kept": True} for r in found]
    return kept


if __name__ == "__main__":
    main(parse_args(Args))
