r"""Tuning of the anchored recipe on VALIDATION users (Optuna), written to ``tuning.md``.

Two studies, in order, both scored on the validation users only (test users are never read):

1. **Space** (a grid): the action space and the state encoder, with behaviour cloning alone
   (the anchor, :func:`agents.anchor.pretrain_actor`): embedding method x dimension x encoder.
   Each cell is scored by the validation NDCG@10 of its best epoch.
2. **Fine-tuning** (Optuna's TPE sampler, ``--trials`` per algorithm): on the best space of
   study 1, each trial takes the behaviour-cloned actor (cloned once per seed and reused), warms
   up the critic, fine-tunes online for ``--timesteps`` steps and is scored by the validation
   NDCG@10 of the plain decode and of Wolpertinger re-ranking at each ``--ks``; the trial's
   score is the best of those, and the ``K`` that gave it is recorded. Searched: the actor loss
   (``td3bc`` or ``awr``), the critic weight lambda, AWR's temperature, gamma, the reward's
   ``hit_discount``, the exploration noise (DDPG/TD3; SAC's entropy coefficient), the critic
   warm-up steps and the actor's learning rate.

Output: ``<out>/<dataset>/tuning.json`` (every run) and ``tuning.md`` (tables, the best
configuration per algorithm, the machine and the command). Rerun::

    python -m benchmarks.tune --dataset ml-latest-small --algos ddpg td3 sac --trials 12
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import default_data_dir, machine, md_table, parse_args, stamp


@dataclass
class Args:
    """Tune the anchored recipe on validation users (space grid, then Optuna per algorithm)."""

    dataset: str = field(default="ml-latest-small", metadata={"help": "dataset name"})
    split_strategy: str = field(default="user", metadata={"help": "user or temporal"})
    algos: list[str] = field(default_factory=lambda: ["ddpg", "td3", "sac"],
                             metadata={"help": "algorithms of the fine-tuning study"})  # fmt: skip
    embeddings: list[str] = field(default_factory=lambda: ["implicit", "svd"],
                                  metadata={"help": "embedding methods (space study)"})  # fmt: skip
    dims: list[int] = field(default_factory=lambda: [32, 64, 128],
                            metadata={"help": "embedding dimensions (space study)"})  # fmt: skip
    encoders: list[str] = field(default_factory=lambda: ["mlp", "gru", "attention"],
                                metadata={"help": "state encoders (space study)"})  # fmt: skip
    bc_epochs: int = field(default=6, metadata={"help": "most behaviour-cloning epochs"})
    trials: int = field(default=12, metadata={"help": "Optuna trials per algorithm"})
    timesteps: int = field(default=10_000, metadata={"help": "online steps per trial"})
    n_envs: int = field(default=4, metadata={"help": "parallel users while fine-tuning"})
    ks: list[int] = field(default_factory=lambda: [20, 50, 100],
                          metadata={"help": "Wolpertinger candidate counts scored"})  # fmt: skip
    seed: int = field(default=0, metadata={"help": "seed of every run"})
    skip_space: bool = field(default=False, metadata={"help": "reuse the space study's result"})
    space: str | None = field(
        default=None, metadata={"help": "fix the space as JSON, e.g. '{\"embedding\": ...}'"}
    )
    threads: int = field(default=2, metadata={"help": "torch threads"})
    out: str = field(default="benchmarks/results", metadata={"help": "output folder"})
    data_dir: str | None = field(default=None, metadata={"help": "where the dataset is"})


def env_kwargs(args: Args, space: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Environment arguments of a space (embedding, dimension) and this dataset."""
    kw = {
        "dataset": args.dataset,
        "split_strategy": args.split_strategy,
        "embedding": space["embedding"],
        "embedding_dim": space["dim"],
        **extra,
    }
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
        kwargs["features_extractor_kwargs"] = {"embedding_dim": space["dim"]}
    return kwargs


class Spaces:
    """Environments, logged transitions and behaviour-cloned actors, built once per space."""

    def __init__(self, args: Args) -> None:
        """Nothing is built until asked for."""
        self.args = args
        self._envs: dict[str, Any] = {}
        self._bc: dict[str, Any] = {}

    def envs(self, space: dict[str, Any]) -> tuple[Any, Any, Any]:
        """``(train env, val env, anchor)`` of a space (kept for the last space asked)."""
        import gymnasium as gym

        from agents.anchor import BCAnchor
        from agents.offline import logged_transitions

        key = json.dumps({k: space[k] for k in ("embedding", "dim")}, sort_keys=True)
        if key not in self._envs:
            self._envs.clear()
            kw = env_kwargs(self.args, space)
            train = gym.make("MovieRec-v0", split="train", **kw).unwrapped
            val = gym.make("MovieRec-v0", split="val", **kw).unwrapped
            transitions = logged_transitions(train, progress=False)
            self._envs[key] = (train, val, BCAnchor(train, transitions, seed=self.args.seed))
        return self._envs[key]

    def behaviour_clone(self, space: dict[str, Any], algo: str) -> tuple[dict, Any]:
        """Clone the actor of ``algo`` in ``space``; cached: ``(state of model, result)``."""
        from agents import make_agent
        from agents.anchor import pretrain_actor

        key = json.dumps({**space, "algo": algo}, sort_keys=True)
        if key not in self._bc:
            train, val, anchor = self.envs(space)
            anchor.rng = np.random.default_rng(self.args.seed)
            model = make_agent(algo, train, recipe="anchored", seed=self.args.seed,
                               device="auto", policy_kwargs=policy_kwargs(space))  # fmt: skip
            result = pretrain_actor(model, anchor, epochs=self.args.bc_epochs, val_env=val,
                                    progress=False)  # fmt: skip
            state = {
                "actor": copy.deepcopy(model.actor.state_dict()),
                "log_scale": float(anchor.log_scale.item()),
            }
            self._bc[key] = (state, result)
        return self._bc[key]


def space_study(args: Args, spaces: Spaces) -> list[dict[str, Any]]:
    """Study 1: behaviour cloning in every (embedding, dim, encoder) cell, TD3's actor."""
    records = []
    for embedding in args.embeddings:
        for dim in args.dims:
            for encoder in args.encoders:
                space = {"embedding": embedding, "dim": dim, "encoder": encoder}
                start = time.perf_counter()
                _, result = spaces.behaviour_clone(space, "td3")
                record = {
                    **space,
                    "val_ndcg": max(result.val_ndcg),
                    "curve": result.val_ndcg,
                    "best_epoch": result.best_epoch,
                    "seconds": time.perf_counter() - start,
                }
                print(json.dumps(record), flush=True)
                records.append(record)
    return records


def fine_tune_trial(
    args: Args, spaces: Spaces, space: dict[str, Any], algo: str, params: dict[str, Any]
) -> dict[str, Any]:
    """One fine-tuning run: the cloned actor, critic warm-up, online steps, val scores."""
    import torch
    from stable_baselines3.common.noise import NormalActionNoise

    from agents import evaluate, make_agent, make_env
    from agents.anchor import warm_up_critic
    from agents.policies import AgentPolicy
    from agents.threads import single_blas_thread
    from agents.wolpertinger import WolpertingerPolicy

    start = time.perf_counter()
    train, val, anchor = spaces.envs(space)
    state, _ = spaces.behaviour_clone(space, algo)
    dim = space["dim"]
    hyper: dict[str, Any] = {
        "gamma": params["gamma"],
        "learning_starts": 0,
        "policy_kwargs": policy_kwargs(space),
        "critic_weight": params["critic_weight"],
        "actor_loss": params["actor_loss"],
        "awr_temperature": params.get("awr_temperature", 1.0),
        "actor_learning_rate": params["actor_lr"],
    }
    if algo in ("ddpg", "td3"):
        sigma = params["noise"] / np.sqrt(dim)  # noise of norm ~params["noise"]
        hyper["action_noise"] = NormalActionNoise(np.zeros(dim), sigma * np.ones(dim))
    if algo == "td3":
        hyper["target_policy_noise"] = params["noise"] / np.sqrt(dim)
        hyper["target_noise_clip"] = 2.5 * params["noise"] / np.sqrt(dim)
    if algo == "sac":
        hyper["ent_coef"] = params["ent_coef"]
    kw = env_kwargs(args, space, hit_discount=params["hit_discount"])
    env = make_env("MovieRec-v0", n_envs=args.n_envs, **kw)
    model = make_agent(algo, env, recipe="anchored", seed=args.seed, device="auto", **hyper)
    model.actor.load_state_dict(state["actor"])
    if getattr(model, "actor_target", None) is not None:
        model.actor_target.load_state_dict(state["actor"])
    anchor.rng = np.random.default_rng(args.seed)
    with torch.no_grad():
        anchor.log_scale.fill_(state["log_scale"])
    with single_blas_thread():
        warm_up_critic(model, anchor, params["warmup_steps"], progress=False)
        model.set_anchor(anchor)
        model.learn(args.timesteps)
        model.set_anchor(None)
        scores = {"plain": evaluate(AgentPolicy(model), val, progress=False)}
        for k in args.ks:
            scores[f"K={k}"] = evaluate(WolpertingerPolicy(model, k), val, progress=False)
    best = max(scores, key=lambda name: scores[name].summary["ndcg"][0])
    env.close()
    return {
        "algo": algo,
        **params,
        "val_ndcg": {n: r.summary["ndcg"][0] for n, r in scores.items()},
        "val_return": {n: r.summary["return"][0] for n, r in scores.items()},
        "best": best,
        "score": scores[best].summary["ndcg"][0],
        "seconds": time.perf_counter() - start,
    }


def suggest(trial: Any, algo: str) -> dict[str, Any]:
    """The fine-tuning search space (see the module docstring)."""
    params: dict[str, Any] = {
        "actor_loss": trial.suggest_categorical("actor_loss", ["td3bc", "awr"]),
        "critic_weight": trial.suggest_float("critic_weight", 0.05, 10.0, log=True),
        "gamma": trial.suggest_categorical("gamma", [0.0, 0.5, 0.9]),
        "hit_discount": trial.suggest_categorical("hit_discount", [1.0, 0.9, 0.7]),
        "warmup_steps": trial.suggest_categorical("warmup_steps", [0, 2000, 5000]),
        "actor_lr": trial.suggest_float("actor_lr", 1e-5, 1e-3, log=True),
    }
    if params["actor_loss"] == "awr":
        params["awr_temperature"] = trial.suggest_float("awr_temperature", 0.3, 3.0, log=True)
    if algo in ("ddpg", "td3"):
        params["noise"] = trial.suggest_float("noise", 0.05, 0.5, log=True)
    else:
        params["ent_coef"] = trial.suggest_float("ent_coef", 1e-4, 0.05, log=True)
    return params


def markdown(args: Args, space_records: list[dict], trials: list[dict], wall: float) -> str:
    """``tuning.md``."""
    lines = [
        f"# Tuning of the anchored recipe, {args.dataset} ({args.split_strategy} split)",
        "",
        f"{stamp()}, {machine()}. Wall time {wall / 60:.0f} min. Validation users only; seed "
        f"{args.seed}. Written by `python -m benchmarks.tune " + " ".join(sys.argv[1:]) + "`.",
        "",
    ]
    if space_records:
        rows = sorted(space_records, key=lambda r: -r["val_ndcg"])
        lines += [
            "## 1. Space: behaviour cloning alone (TD3's actor)",
            "",
            md_table(
                ["embedding", "dim", "encoder", "val NDCG@10 (best epoch)", "per epoch", "s"],
                [
                    [
                        r["embedding"],
                        r["dim"],
                        r["encoder"],
                        f"{r['val_ndcg']:.4f}",
                        " ".join(f"{v:.4f}" for v in r["curve"]),
                        f"{r['seconds']:.0f}",
                    ]
                    for r in rows
                ],
            ),  # fmt: skip
            "",
        ]
    for algo in args.algos:
        runs = sorted((t for t in trials if t["algo"] == algo), key=lambda t: -t["score"])
        if not runs:
            continue
        keys = [k for k in runs[0] if k not in ("algo", "val_ndcg", "val_return", "best",
                                                "score", "seconds")]  # fmt: skip
        rows = []
        for t in runs:
            rows.append(
                [f"{t['score']:.4f}", t["best"], f"{t['val_ndcg']['plain']:.4f}",
                 f"{t['val_return'][t['best']]:.3f}"]
                + [_fmt(t.get(k)) for k in keys]
            )  # fmt: skip
        lines += [
            f"## 2. Fine-tuning: {algo}",
            "",
            md_table(["val NDCG@10", "decode", "plain", "val return", *keys], rows),
            "",
        ]
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return "" if v is None else str(v)


def main(args: Args) -> Path:
    """Run both studies, write tuning.json and tuning.md; return the folder."""
    import optuna
    import torch

    torch.set_num_threads(args.threads)
    folder = Path(args.out) / args.dataset
    folder.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.split_strategy == "user" else f"-{args.split_strategy}"
    json_path = folder / f"tuning{suffix}.json"
    start = time.perf_counter()
    spaces = Spaces(args)
    previous = json.loads(json_path.read_text()) if json_path.exists() else {}
    if args.space:
        space_records = previous.get("space", [])
        space = json.loads(args.space)
    elif args.skip_space and previous.get("space"):
        space_records = previous["space"]
        best = max(space_records, key=lambda r: r["val_ndcg"])
        space = {k: best[k] for k in ("embedding", "dim", "encoder")}
    else:
        space_records = space_study(args, spaces)
        best = max(space_records, key=lambda r: r["val_ndcg"])
        space = {k: best[k] for k in ("embedding", "dim", "encoder")}
    print(f"space: {space}", flush=True)
    trials: list[dict[str, Any]] = []
    for algo in args.algos:
        sampler = optuna.samplers.TPESampler(seed=args.seed)
        study = optuna.create_study(direction="maximize", sampler=sampler)

        def objective(trial: Any, algo: str = algo) -> float:
            record = fine_tune_trial(args, spaces, space, algo, suggest(trial, algo))
            print(json.dumps(record), flush=True)
            trials.append(record)
            return record["score"]

        study.optimize(objective, n_trials=args.trials)
    wall = time.perf_counter() - start
    json_path.write_text(
        json.dumps(
            {"args": asdict(args), "space": space_records, "chosen_space": space, "trials": trials},
            indent=1,
        )  # fmt: skip
    )
    (folder / f"tuning{suffix}.md").write_text(markdown(args, space_records, trials, wall) + "\n")
    return folder


if __name__ == "__main__":
    main(parse_args(Args))
