r"""Tuning of the anchored recipe on VALIDATION users (Optuna), written to ``tuning.md``.

Studies scored on the validation users only (test users are never read):

1. **Space** (grids of behaviour cloning alone, the anchor of
   :func:`agents.anchor.pretrain_actor`, TD3's actor, scored by the validation NDCG@10 of the
   best epoch): (a) embedding method x dimension, with the MLP on MovieRec-v0's frame; then
   (b) at the best of (a), state encoder (MLP, GRU, self-attention) x state: the 10-item frame
   of ``MovieRec-v0`` or the ``--histories`` of ``MovieRecSeq-v0`` (the last 50 items, masked).
2. **Fine-tuning** (Optuna's TPE sampler, ``--trials`` per algorithm): on the best space of
   study 1, each trial runs the recipe's own stages as ``recgym train`` does
   (:func:`agents.recipe.prepare_anchored`: behaviour cloning with the trial's anchor
   settings, the critic warm-up, then ``--timesteps`` online steps) and is scored by the
   validation NDCG@10 of the plain decode and of Wolpertinger re-ranking at each ``--ks``;
   the trial's score is the best of those, and the decode that gave it is recorded. Searched:
   the anchor's ``rating_weight``, the actor loss (``td3bc`` or ``awr``), the critic weight
   lambda, AWR's temperature, gamma, the reward's ``hit_discount`` (of the online steps; the
   critic warm-up's transitions keep the original reward, whereas ``recgym train
   --train-env hit_discount=...`` warms up on the variant too), the exploration noise (its
   norm: DDPG/TD3's Gaussian noise, SAC's initial standard deviation; the warm-up's noise
   stays the recipe's), SAC's entropy coefficient, the critic warm-up steps and the actor's
   learning rate. Each algorithm's first trial is the recipe's defaults; its reference row is
   the recipe's behaviour-cloned actor alone (default settings, no fine-tuning). Every trial
   is written to ``tuning.json`` as it finishes, so studies of different algorithms can run as
   parallel processes (``--algos td3`` in one, ``--algos sac`` in another) on one file.
3. **Confirmation** (``--confirm-seeds``): the study's best trial and its defaults trial rerun
   with other seeds (after the study, or with ``--trials 0`` on the saved one), since one seed
   on the validation users cannot tell settings a few thousandths of NDCG apart.

Output: ``<out>/<dataset>/tuning.json`` (every run; a later run with other ``--algos`` adds its
studies to the file's) and ``tuning.md`` (tables, machine, the commands). Rerun::

    python -m benchmarks.tune --dataset ml-latest-small --algos td3 ddpg sac --trials 8
    python -m benchmarks.tune --skip-space --algos td3 ddpg --trials 0 --confirm-seeds 1 2
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import default_data_dir, machine, md_table, parse_args, stamp
from recgym.files import atomic_write


@dataclass
class Args:
    """Tune the anchored recipe on validation users (space grids, then Optuna per algorithm)."""

    dataset: str = field(default="ml-latest-small", metadata={"help": "dataset name"})
    split_strategy: str = field(default="user", metadata={"help": "user or temporal"})
    algos: list[str] = field(default_factory=lambda: ["td3", "ddpg", "sac"],
                             metadata={"help": "algorithms of the fine-tuning study"})  # fmt: skip
    embeddings: list[str] = field(default_factory=lambda: ["implicit", "svd"],
                                  metadata={"help": "embedding methods (space study)"})  # fmt: skip
    dims: list[int] = field(default_factory=lambda: [32, 64, 128],
                            metadata={"help": "embedding dimensions (space study)"})  # fmt: skip
    encoders: list[str] = field(default_factory=lambda: ["mlp", "gru", "attention"],
                                metadata={"help": "state encoders (space study)"})  # fmt: skip
    histories: list[int] = field(default_factory=lambda: [0, 50],
                                 metadata={"help": "state: 0 = MovieRec-v0's frame, N = "
                                           "MovieRecSeq-v0 with history_size N"})  # fmt: skip
    bc_epochs: int = field(default=6, metadata={"help": "most behaviour-cloning epochs"})
    trials: int = field(default=8, metadata={"help": "Optuna trials per algorithm"})
    timesteps: int = field(default=10_000, metadata={"help": "online steps per trial"})
    n_envs: int = field(default=4, metadata={"help": "parallel users while fine-tuning"})
    ks: list[int] = field(default_factory=lambda: [10, 20, 50],
                          metadata={"help": "Wolpertinger candidate counts scored"})  # fmt: skip
    warmups: list[int] = field(default_factory=lambda: [0, 2000, 5000],
                               metadata={"help": "critic warm-up steps searched"})  # fmt: skip
    rating_weights: list[float] = field(default_factory=lambda: [0.5, 1.0, 1.5, 2.0],
                                        metadata={"help": "rating weights searched"})  # fmt: skip
    seed: int = field(default=0, metadata={"help": "seed of every run"})
    val_users: int | None = field(
        default=None, metadata={"help": "validation users scored, None for all (fewer is noisier)"}
    )
    defaults_first: bool = field(
        default=True,
        metadata={
            "help": "each algorithm's first trial is the recipe's defaults (agents/factory.py)"
        },
    )
    confirm_seeds: list[int] = field(default_factory=list, metadata={
        "help": "rerun the best trial and the defaults with these seeds (with --trials 0: "
                "those of the saved study)"})  # fmt: skip
    skip_space: bool = field(default=False, metadata={"help": "reuse the saved space study"})
    space: str | None = field(
        default=None, metadata={"help": "fix the space as JSON, e.g. '{\"embedding\": ...}'"}
    )
    threads: int = field(default=2, metadata={"help": "torch threads"})
    out: str = field(default="benchmarks/results", metadata={"help": "output folder"})
    data_dir: str | None = field(default=None, metadata={"help": "where the dataset is"})


SPACE_KEYS = ("embedding", "dim", "encoder", "history")


def env_id(space: dict[str, Any]) -> str:
    """``MovieRec-v0`` for the frame, ``MovieRecSeq-v0`` for a history."""
    return "MovieRecSeq-v0" if space.get("history") else "MovieRec-v0"


def env_kwargs(args: Args, space: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Environment arguments of a space and this dataset."""
    kw = {
        "dataset": args.dataset,
        "split_strategy": args.split_strategy,
        "embedding": space["embedding"],
        "embedding_dim": space["dim"],
        **extra,
    }
    if space.get("history"):
        kw["history_size"] = space["history"]
    data_dir = args.data_dir or default_data_dir()
    if data_dir:
        kw["data_dir"] = data_dir
    return kw


def policy_kwargs(space: dict[str, Any]) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` of a space's encoder."""
    from agents.encoders import ENCODERS

    kwargs: dict[str, Any] = {"net_arch": [256, 256]}
    encoder = ENCODERS[space["encoder"]]
    if encoder is not None:
        kwargs["features_extractor_class"] = encoder
        kwargs["features_extractor_kwargs"] = {
            "embedding_dim": space["dim"],
            "layout": "history" if space.get("history") else "frame",
        }
    return kwargs


class Spaces:
    """Environments, the space study's anchor and behaviour-cloned actors, built once per space."""

    def __init__(self, args: Args) -> None:
        """Nothing is built until asked for."""
        self.args = args
        self._envs: dict[str, Any] = {}
        self._anchors: dict[str, Any] = {}
        self._bc: dict[str, Any] = {}

    def envs(self, space: dict[str, Any]) -> tuple[Any, Any]:
        """``(train env, val env)`` of a space (kept for the last space asked)."""
        import gymnasium as gym

        from agents.sasrec_embeddings import resolve_embedding

        key = _env_key(space)
        if key not in self._envs:
            self._envs.clear()
            kw = resolve_embedding(env_id(space), env_kwargs(self.args, space))
            train = gym.make(env_id(space), split="train", **kw).unwrapped
            val = gym.make(env_id(space), split="val", **kw).unwrapped
            self._envs[key] = (train, val)
        return self._envs[key]

    def anchor(self, space: dict[str, Any]) -> Any:
        """The space study's anchor on the train env's logged transitions (last space asked).

        The fine-tuning trials do not use it: the recipe builds its own.
        """
        from agents.anchor import BCAnchor
        from agents.offline import logged_transitions

        key = _env_key(space)
        if key not in self._anchors:
            self._anchors.clear()
            train, _ = self.envs(space)
            transitions = logged_transitions(train, progress=False)
            self._anchors[key] = BCAnchor(train, transitions, seed=self.args.seed)
        return self._anchors[key]

    def behaviour_clone(self, space: dict[str, Any], algo: str) -> dict[str, Any]:
        """Clone the actor of ``algo`` in ``space`` (the space study's record), cached.

        The record holds the validation NDCG per epoch and the kept actor's validation NDCG
        and return.
        """
        from agents import evaluate, make_agent
        from agents.anchor import pretrain_actor
        from agents.policies import AgentPolicy

        key = json.dumps({**space, "algo": algo}, sort_keys=True)
        if key not in self._bc:
            start = time.perf_counter()
            train, val = self.envs(space)
            anchor = self.anchor(space)
            anchor.rng = np.random.default_rng(self.args.seed)
            model = make_agent(algo, train, recipe="anchored", seed=self.args.seed,
                               device="auto", policy_kwargs=policy_kwargs(space))  # fmt: skip
            result = pretrain_actor(model, anchor, epochs=self.args.bc_epochs, val_env=val,
                                    val_users=self.args.val_users,
                                    progress=False)  # fmt: skip
            kept = evaluate(
                AgentPolicy(model), val, max_users=self.args.val_users, progress=False
            ).summary
            self._bc[key] = {
                **space,
                "val_ndcg": kept["ndcg"][0],
                "val_return": kept["return"][0],
                "curve": result.val_ndcg,
                "best_epoch": result.best_epoch,
                "val_users": self.args.val_users,
                "seconds": time.perf_counter() - start,
            }
        return self._bc[key]

    def recipe_bc(self, space: dict[str, Any], algo: str) -> dict[str, Any]:
        """The recipe's own behaviour cloning (default :class:`AnchorSettings`), scored on val.

        The fine-tuning study's reference row: what ``recgym train`` fine-tunes from.
        """
        from agents import evaluate, make_agent
        from agents.config import AnchorSettings
        from agents.policies import AgentPolicy
        from agents.recipe import prepare_anchored

        key = json.dumps({**space, "algo": algo, "recipe": True}, sort_keys=True)
        if key not in self._bc:
            start = time.perf_counter()
            train, val = self.envs(space)
            model = make_agent(algo, train, recipe="anchored", seed=self.args.seed,
                               device="auto", policy_kwargs=policy_kwargs(space))  # fmt: skip
            settings = AnchorSettings(bc_epochs=self.args.bc_epochs, val_users=self.args.val_users)
            report = prepare_anchored(model, train, val, settings, seed=self.args.seed,
                                      stop_after_bc=True, progress=False)  # fmt: skip
            kept = evaluate(
                AgentPolicy(model), val, max_users=self.args.val_users, progress=False
            ).summary
            self._bc[key] = {
                **space,
                "rating_weight": settings.rating_weight,
                "val_ndcg": kept["ndcg"][0],
                "val_return": kept["return"][0],
                "curve": report.bc.val_ndcg,
                "seconds": time.perf_counter() - start,
            }
        return self._bc[key]


def space_study(
    args: Args,
    spaces: Spaces,
    saved: list[dict[str, Any]] | None = None,
    save: Any = None,
) -> list[dict[str, Any]]:
    """Study 1: (a) embedding x dim, frame and MLP; (b) encoder x state at the best of (a).

    Args:
        args: The run's arguments.
        spaces: Builds and caches environments and cloned actors.
        saved: Records of an earlier run; one of the same space, ``bc_epochs`` and seed is
            reused instead of cloning again (a killed study resumes where it stopped).
        save: Called with the records after each one, to keep them on disk.
    """
    records: list[dict[str, Any]] = []

    def run(space: dict[str, Any], stage: str) -> None:
        this = space_key(
            {**space, "bc_epochs": args.bc_epochs, "seed": args.seed, "val_users": args.val_users}
        )
        old = [r for r in saved or [] if space_key(r) == this]
        if old:
            record = {**old[-1], "stage": stage}
        else:
            record = spaces.behaviour_clone(space, "td3")
            record = {**record, "stage": stage, "bc_epochs": args.bc_epochs, "seed": args.seed}
        print(json.dumps(record), flush=True)
        records.append(record)
        if save is not None:
            save(records)

    for embedding in args.embeddings:
        for dim in args.dims:
            run({"embedding": embedding, "dim": dim, "encoder": "mlp", "history": 0}, "a")
    best = max(records, key=lambda r: r["val_ndcg"])
    for history in args.histories:
        for encoder in args.encoders:
            space = {"embedding": best["embedding"], "dim": best["dim"], "encoder": encoder,
                     "history": history}  # fmt: skip
            if any(all(r[k] == space[k] for k in SPACE_KEYS) for r in records):
                continue  # the MLP on the frame ran in (a)
            run(space, "b")
    return records


def fine_tune_trial(
    args: Args, spaces: Spaces, space: dict[str, Any], algo: str, params: dict[str, Any]
) -> dict[str, Any]:
    """One run of the recipe (:func:`agents.recipe.prepare_anchored`, then online steps).

    The same stages as ``recgym train``: behaviour cloning with the trial's anchor settings,
    the critic warm-up on the cloned actor's noisy actions, fine-tuning for ``--timesteps``
    online steps; then the validation scores of the plain decode and of Wolpertinger at each
    ``--ks``.
    """
    import torch

    from agents import evaluate, make_agent, make_env
    from agents.config import AnchorSettings
    from agents.policies import AgentPolicy
    from agents.recipe import prepare_anchored
    from agents.wolpertinger import WolpertingerPolicy

    start = time.perf_counter()
    train, val = spaces.envs(space)
    kw = env_kwargs(args, space, hit_discount=params["hit_discount"])
    env = make_env(env_id(space), n_envs=args.n_envs, **kw)
    model = make_agent(algo, env, recipe="anchored", seed=args.seed, device="auto",
                       **trial_hyperparameters(algo, space, params))  # fmt: skip
    settings = AnchorSettings(
        bc_epochs=args.bc_epochs,
        val_users=args.val_users,
        warmup_steps=params["warmup_steps"],
        rating_weight=params["rating_weight"],
    )
    report = prepare_anchored(model, train, val, settings, seed=args.seed, progress=False)
    if algo == "sac":  # the cloned mean, with exploration noise of the trial's norm
        with torch.no_grad():
            model.actor.log_std.bias.fill_(math.log(params["noise"] / math.sqrt(space["dim"])))
    model.learn(args.timesteps)
    model.set_anchor(None)
    scores = {"plain": evaluate(AgentPolicy(model), val, max_users=args.val_users, progress=False)}
    for k in args.ks:
        policy = WolpertingerPolicy(model, k)
        scores[f"K={k}"] = evaluate(policy, val, max_users=args.val_users, progress=False)
    best = max(scores, key=lambda name: scores[name].summary["ndcg"][0])
    env.close()
    bc = report.bc
    return {
        "algo": algo,
        **params,
        "bc_val_ndcg": bc.val_ndcg[bc.best_epoch] if bc.val_ndcg else None,
        "val_ndcg": {n: r.summary["ndcg"][0] for n, r in scores.items()},
        "val_return": {n: r.summary["return"][0] for n, r in scores.items()},
        "best": best,
        "score": scores[best].summary["ndcg"][0],
        "seconds": time.perf_counter() - start,
    }


def trial_hyperparameters(
    algo: str, space: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """The SB3 arguments of a trial: the recipe's defaults with the trial's values."""
    from agents.factory import anchored_noise

    hyper: dict[str, Any] = {
        "gamma": params["gamma"],
        "policy_kwargs": policy_kwargs(space),
        "critic_weight": params["critic_weight"],
        "actor_loss": params["actor_loss"],
        "awr_temperature": params.get("awr_temperature", 1.0),
        "actor_learning_rate": params["actor_lr"],
    }
    hyper.update(anchored_noise(algo, space["dim"], params["noise"]))  # of norm ~params["noise"]
    if algo == "sac":
        hyper["ent_coef"] = params["ent_coef"]
    return hyper


def default_params(algo: str) -> dict[str, Any]:
    """The recipe's defaults as a point of the search space (enqueued as the first trial)."""
    from agents import factory
    from agents.config import AnchorSettings

    params: dict[str, Any] = {
        "actor_loss": factory.ANCHORED_ACTOR_LOSS,
        "critic_weight": factory.ANCHORED_CRITIC_WEIGHT,
        "gamma": factory.ANCHORED_GAMMA,
        "hit_discount": 1.0,
        "warmup_steps": AnchorSettings().warmup_steps,
        "rating_weight": AnchorSettings().rating_weight,
        "actor_lr": factory.ANCHORED_ACTOR_LR,
        "noise": factory.ANCHORED_NOISE,
    }
    if params["actor_loss"] == "awr":
        params["awr_temperature"] = factory.ANCHORED_AWR_TEMPERATURE
    if algo == "sac":
        params["ent_coef"] = factory.ANCHORED_ENT_COEF
    return params


def suggest(
    trial: Any, algo: str, warmups: list[int], rating_weights: list[float]
) -> dict[str, Any]:
    """The fine-tuning search space (see the module docstring)."""
    params: dict[str, Any] = {
        "actor_loss": trial.suggest_categorical("actor_loss", ["td3bc", "awr"]),
        "critic_weight": trial.suggest_float("critic_weight", 0.05, 10.0, log=True),
        "gamma": trial.suggest_categorical("gamma", [0.0, 0.5, 0.9]),
        "hit_discount": trial.suggest_categorical("hit_discount", [1.0, 0.9, 0.7]),
        "warmup_steps": trial.suggest_categorical("warmup_steps", warmups),
        "rating_weight": trial.suggest_categorical("rating_weight", rating_weights),
        "actor_lr": trial.suggest_float("actor_lr", 1e-5, 1e-3, log=True),
        "noise": trial.suggest_float("noise", 0.05, 0.5, log=True),
    }
    if params["actor_loss"] == "awr":
        params["awr_temperature"] = trial.suggest_float("awr_temperature", 0.3, 3.0, log=True)
    if algo == "sac":
        params["ent_coef"] = trial.suggest_float("ent_coef", 1e-4, 0.05, log=True)
    return params


def markdown(data: dict[str, Any]) -> str:
    """``tuning.md`` from ``tuning.json``'s content."""
    args = data["args"]
    # a study run with --trials 0 holds only its reference (the cloned actor): not a study
    studies = {a: s for a, s in data.get("studies", {}).items() if s["trials"]}
    lines = [
        f"# Tuning of the anchored recipe, {args['dataset']} ({args['split_strategy']} split)",
        "",
        f"Validation users only; seed {args['seed']}"
        + (
            f"; {args['timesteps']:,} online steps per fine-tuning trial"
            if studies
            else "; no fine-tuning study yet"
        )  # fmt: skip
        + ". Written by `python -m benchmarks.tune`; its runs:",
        "",
        *[f"* {run}" for run in data["runs"]],
        "",
    ]
    space = data.get("space", [])
    if space:
        header = ["stage", "embedding", "dim", "encoder", "state", "val NDCG@10",
                  "val return", "NDCG per epoch", "s"]  # fmt: skip
        rows = [
            [r["stage"], r["embedding"], r["dim"], r["encoder"],
             f"history {r['history']}" if r["history"] else "frame 10", f"{r['val_ndcg']:.4f}",
             f"{r['val_return']:.3f}", " ".join(f"{v:.4f}" for v in r["curve"]),
             f"{r['seconds']:.0f}"]
            for r in sorted(space, key=lambda r: (r["stage"], -r["val_ndcg"]))
        ]  # fmt: skip
        chosen = data.get("chosen_space")
        lines += [
            "## 1. Space: behaviour cloning alone (TD3's actor)",
            "",
            md_table(header, rows),
            "",
            f"Chosen: `{json.dumps(chosen)}`. {environment_default()}",
            "",
        ]
    for algo, study in studies.items():
        runs = sorted(study["trials"], key=lambda t: -t["score"])
        keys = ["rating_weight", "actor_loss", "critic_weight", "awr_temperature", "gamma",
                "hit_discount", "warmup_steps", "actor_lr", "noise", "ent_coef"]  # fmt: skip
        keys = [k for k in keys if any(k in t for t in runs)]
        ks = [n for n in runs[0]["val_ndcg"] if n != "plain"] if runs else []
        bc = study["bc"]
        rows = [["bc (no fine-tuning)", "", f"{bc['val_ndcg']:.4f}", "",
                 f"{bc['val_return']:.3f}"] + [""] * len(ks) + [""] * len(keys)]  # fmt: skip
        for t in runs:
            rows.append(
                [t["best"] + (" (the defaults)" if t.get("defaults") else ""),
                 _fmt(t.get("bc_val_ndcg"), 4), f"{t['val_ndcg']['plain']:.4f}",
                 f"{t['score']:.4f}", f"{t['val_return']['plain']:.3f}"]
                + [f"{t['val_ndcg'][n]:.4f}" for n in ks]
                + [_fmt(t.get(k)) for k in keys]
            )  # fmt: skip
        header = ["best decode", "its bc NDCG@10", "plain NDCG@10", "best NDCG@10",
                  "plain return", *[f"{n} NDCG" for n in ks], *keys]  # fmt: skip
        lines += [f"## 2. Fine-tuning: {algo}", "", md_table(header, rows), ""]
        if study.get("confirm"):
            lines += confirm_lines(study, args["seed"])
    if studies:
        lines += [
            "Reading: each trial is one seed on the validation users, best first. `its bc "
            "NDCG@10` is the trial's behaviour-cloned actor before fine-tuning, at its best "
            "epoch, and that epoch was chosen on these same validation users, so it is biased "
            "upwards against the fine-tuned `plain NDCG@10`, which is not chosen. The "
            "`bc (no fine-tuning)` row is the recipe's default cloning, scored the same way.",
            "",
        ]
    lines += [f"Machine: {data['machine']}."]
    return "\n".join(lines)


def trials_to_confirm(study: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"best": trial}``, plus ``"defaults"`` when the defaults trial is another one."""
    trials = study["trials"]
    chosen = {"best": max(trials, key=lambda t: t["score"])}
    defaults = [t for t in trials if t.get("defaults")]
    if defaults and defaults[0] is not chosen["best"]:
        chosen["defaults"] = defaults[0]
    return chosen


def confirm_lines(study: dict[str, Any], study_seed: int) -> list[str]:
    """The confirmation table: best trial and defaults over the study's seed and the others."""
    rows = []
    for which, trial in trials_to_confirm(study).items():
        runs = [(study_seed, trial["val_ndcg"]["plain"], trial["val_return"]["plain"])]
        runs += sorted((r["seed"], r["val_ndcg"], r["val_return"])
                       for r in study["confirm"] if r["which"] == which)  # fmt: skip
        label = "best trial" if which == "best" else "the defaults"
        if which == "best" and trial.get("defaults"):
            label = "best trial (the defaults)"
        rows.append(
            [label, " ".join(str(r[0]) for r in runs),
             f"{np.mean([r[1] for r in runs]):.4f} ({', '.join(f'{r[1]:.4f}' for r in runs)})",
             f"{np.mean([r[2] for r in runs]):.3f} ({', '.join(f'{r[2]:.3f}' for r in runs)})"]
        )  # fmt: skip
    header = ["trial", "seeds", "val NDCG@10 (each seed)", "val return (each seed)"]
    return [
        "Confirmation (`--confirm-seeds`): the best trial and the defaults rerun with other "
        "seeds, plain decode.",
        "",
        md_table(header, rows),
        "",
    ]


def _fmt(v: Any, digits: int | None = None) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}f}" if digits else f"{v:.3g}"
    return "" if v is None else str(v)


def environment_default() -> str:
    """MovieRec-v0's default embedding and dimension, as a sentence for tuning.md."""
    import inspect

    from agents.config import DEFAULT_ENV_KWARGS
    from recgym.envs import MovieRecEnv
    from recgym.envs.context import DEFAULT_EMBEDDING_DIM

    method = inspect.signature(MovieRecEnv.__init__).parameters["embedding"].default
    agents = DEFAULT_ENV_KWARGS.get("embedding", method)
    return (
        f"MovieRec-v0's default: embedding `{method}`, dim {DEFAULT_EMBEDDING_DIM} (where it "
        "differs from the choice, its docstring's Version History says why); the agents' runs "
        f"(`recgym train`, `benchmarks.quality`) default to `{agents}` "
        "(`agents.config.DEFAULT_ENV_KWARGS`)."
    )


def _env_key(space: dict[str, Any]) -> str:
    """What fixes a space's environments (not the encoder)."""
    return json.dumps({k: space.get(k) for k in ("embedding", "dim", "history")})


def space_key(record: dict[str, Any]) -> str:
    """What makes two space-study records the same measurement."""
    return json.dumps([record.get(k) for k in (*SPACE_KEYS, "bc_epochs", "seed", "val_users")])


def update_json(path: Path, change: Any) -> dict[str, Any]:
    """Re-read ``path``, apply ``change``, write atomically, all under a lock.

    Studies of different algorithms may run as parallel processes on the same file; the lock
    (POSIX ``flock`` on the file's folder, which leaves no lock file behind; none where
    ``fcntl`` is missing) keeps one process from writing over another's update.
    """
    with _locked(path.parent):
        saved = json.loads(path.read_text()) if path.exists() else {"runs": []}
        change(saved)
        with atomic_write(path, "w") as fh:
            json.dump(saved, fh, indent=1)
    return saved


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no lock (run the studies one after the other there)
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def run_study(
    args: Args,
    spaces: Spaces,
    space: dict[str, Any],
    algo: str,
    study: dict[str, Any],
    save: Any,
) -> None:
    """Optuna's trials for ``algo``, appended to ``study["trials"]`` and saved one by one."""
    import optuna

    sampler = optuna.samplers.TPESampler(seed=args.seed)
    optuna_study = optuna.create_study(direction="maximize", sampler=sampler)
    defaults = default_params(algo)
    enqueue = args.defaults_first and (
        defaults["warmup_steps"] in args.warmups
        and defaults["rating_weight"] in args.rating_weights
    )
    if enqueue:
        optuna_study.enqueue_trial(defaults)
    elif args.defaults_first:
        print(f"the default warm-up ({defaults['warmup_steps']}) or rating weight "
              f"({defaults['rating_weight']}) is not searched: the defaults are not a trial",
              flush=True)  # fmt: skip

    def objective(trial: Any) -> float:
        params = suggest(trial, algo, args.warmups, args.rating_weights)
        record = fine_tune_trial(args, spaces, space, algo, params)
        record["defaults"] = enqueue and trial.number == 0
        print(json.dumps(record), flush=True)
        study["trials"].append(record)
        save(study)
        return record["score"]

    optuna_study.optimize(objective, n_trials=args.trials)


def confirm(args: Args, spaces: Spaces, algo: str, study: dict[str, Any], json_path: Path) -> None:
    """Rerun the study's best trial and its defaults trial with each of ``--confirm-seeds``.

    One seed on 61 validation users cannot tell settings a few thousandths apart; the other
    seeds show whether the best trial's lead holds. Records (which, seed, validation NDCG@10
    and return of the plain decode) are merged into ``study["confirm"]`` in the file, so
    processes confirming different seeds can run in parallel.
    """
    keys = [*default_params(algo), "awr_temperature", "ent_coef"]
    for seed in args.confirm_seeds:
        for which, trial in trials_to_confirm(study).items():
            params = {k: trial[k] for k in keys if k in trial}
            run = replace(args, seed=seed, ks=[])  # the plain decode only
            result = fine_tune_trial(run, spaces, study["space"], algo, params)
            record = {
                "which": which,
                "seed": seed,
                "bc_val_ndcg": result["bc_val_ndcg"],
                "val_ndcg": result["val_ndcg"]["plain"],
                "val_return": result["val_return"]["plain"],
                "seconds": result["seconds"],
            }
            print(json.dumps(record), flush=True)
            _merge_confirmed(study.setdefault("confirm", []), record)  # for finish() in main
            update_json(
                json_path,
                lambda saved, r=record: _merge_confirmed(
                    saved["studies"][algo].setdefault("confirm", []), r
                ),
            )


def _merge_confirmed(records: list[dict[str, Any]], record: dict[str, Any]) -> None:
    """Put ``record`` in ``records``, replacing one of the same (which, seed)."""
    key = (record["which"], record["seed"])
    records[:] = [r for r in records if (r["which"], r["seed"]) != key] + [record]


def main(args: Args) -> Path:
    """Run the studies, update tuning.json, rewrite tuning.md; return the folder."""
    import torch

    torch.set_num_threads(args.threads)
    folder = Path(args.out) / args.dataset
    folder.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.split_strategy == "user" else f"-{args.split_strategy}"
    json_path = folder / f"tuning{suffix}.json"
    data = json.loads(json_path.read_text()) if json_path.exists() else {"runs": []}
    start = time.perf_counter()
    spaces = Spaces(args)

    def save_space(records: list[dict[str, Any]]) -> None:
        def change(saved: dict[str, Any]) -> None:
            mine = {space_key(r) for r in records}
            others = [r for r in saved.get("space", []) if space_key(r) not in mine]
            saved["space"] = others + records

        update_json(json_path, change)

    if args.space:
        space = {"history": 0, **json.loads(args.space)}
    elif args.skip_space and data.get("space"):
        space = data["chosen_space"]
    else:
        records = space_study(args, spaces, saved=data.get("space"), save=save_space)
        best = max(records, key=lambda r: r["val_ndcg"])
        space = {k: best[k] for k in SPACE_KEYS}
    print(f"space: {space}", flush=True)
    studies: dict[str, Any] = {}

    def save_study(algo: str, study: dict[str, Any]) -> None:  # after every trial
        update_json(json_path, lambda saved: saved.setdefault("studies", {}).update({algo: study}))

    for algo in args.algos:
        saved_study = data.get("studies", {}).get(algo)
        if args.trials == 0 and saved_study and saved_study["trials"]:
            study = saved_study  # no new trials: the saved study stays as it is (or confirmed)
        else:
            study = {"bc": spaces.recipe_bc(space, algo), "trials": [], "space": space}
            studies[algo] = study
            run_study(args, spaces, space, algo, study, lambda s, a=algo: save_study(a, s))
        if args.confirm_seeds:
            confirm(args, spaces, algo, study, json_path)
    wall = time.perf_counter() - start

    def finish(saved: dict[str, Any]) -> None:  # other runs' studies are kept
        saved.setdefault("studies", {}).update(studies)
        saved["chosen_space"] = space
        saved["args"] = asdict(args)
        saved["machine"] = machine()
        saved.setdefault("runs", []).append(
            f"{stamp()}: `python -m benchmarks.tune {' '.join(sys.argv[1:])}` ({wall / 60:.0f} min)"
        )

    data = update_json(json_path, finish)
    (folder / f"tuning{suffix}.md").write_text(markdown(data) + "\n")
    return folder


if __name__ == "__main__":
    main(parse_args(Args))
