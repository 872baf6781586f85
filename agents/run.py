"""Training runs: configuration, checkpoints, resume, evaluation against baselines.

A run directory holds:

* ``config.json``: everything needed to rebuild the environment and the agent;
* ``checkpoints/``: the model and its replay buffer every ``checkpoint_every`` steps, written
  atomically (temporary file, then rename), with ``latest.json`` naming the newest complete
  pair, so a killed run resumes from it (``resume=True``; the environment and noise random
  states restart from the seed, so a resumed run is not bit-identical to an uninterrupted one);
* ``tb/``: TensorBoard logs; ``curve.csv``: validation NDCG@k during training;
* ``model.zip``: the final model; ``eval.json``/``eval.md``: the final evaluation.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from tqdm.auto import tqdm

from agents.evaluate import EvalResult, evaluate, results_table
from agents.factory import ALGOS, default_buffer_size, make_agent, make_env
from agents.offline import fill_replay_buffer, logged_transitions, pretrain
from agents.policies import BASELINES, AgentPolicy, make_baseline
from agents.threads import single_blas_thread
from recgym.data.paths import atomic_write
from recgym.envs import MovieRecEnv
from recgym.errors import ConfigError, RecgymError

OFFLINE_TRANSITIONS = 200_000  # logged transitions sampled for offline pre-training


class RunError(RecgymError, ValueError):
    """A run directory is missing, incomplete or inconsistent."""


@dataclass
class RunConfig:
    """A training run, fully specified.

    Attributes:
        algo: ``"ddpg"``, ``"td3"`` or ``"sac"`` (``"dqn"`` on discrete ids).
        env_id: Registered environment id.
        env_kwargs: Overrides of the id's arguments (``dataset``, ``embedding_dim``...).
        timesteps: Online environment steps.
        seed: Seed of agent, exploration and environment.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        n_envs: Parallel users during training.
        offline_steps: Gradient steps of offline pre-training on logged train transitions
            (0: none) before online training.
        checkpoint_every: Steps between checkpoints (0: only at the end).
        eval_every: Steps between validation evaluations for ``curve.csv`` (0: none).
        eval_users: Users per validation evaluation (first ones in episode order).
        hyperparameters: SB3 overrides (JSON-serialisable).
    """

    algo: str = "ddpg"
    env_id: str = "MovieRec-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    timesteps: int = 20_000
    seed: int = 0
    device: str = "auto"
    n_envs: int = 1
    offline_steps: int = 0
    checkpoint_every: int = 5_000
    eval_every: int = 0
    eval_users: int = 30
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> RunConfig:
        """Check the values; raises ConfigError naming the bad one."""
        if self.algo not in ALGOS:
            from recgym.errors import suggest

            raise ConfigError(
                f"Unknown algorithm {self.algo!r}; choose from {list(ALGOS)}."
                + suggest(self.algo, ALGOS)
            )
        if self.env_id not in gym.registry:
            raise ConfigError(f"Unknown environment id {self.env_id!r}.")
        for name in ("timesteps", "n_envs"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be >= 1.")
        for name in ("offline_steps", "checkpoint_every", "eval_every"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be >= 0.")
        return self

    def env_arguments(self, **overrides: Any) -> dict[str, Any]:
        """The :class:`MovieRecEnv` arguments: the id's, then ``env_kwargs``, then overrides."""
        return {**gym.spec(self.env_id).kwargs, **self.env_kwargs, **overrides}

    def make_eval_env(self, split: str = "test", **overrides: Any) -> MovieRecEnv:
        """An unwrapped environment on ``split`` with this run's settings."""
        env = gym.make(self.env_id, **{**self.env_kwargs, "split": split, **overrides})
        return env.unwrapped


# ------------------------------------------------------------------------------ callbacks
class ProgressCallback(BaseCallback):
    """A tqdm bar over environment steps (shown on a terminal)."""

    def __init__(self, total: int, initial: int = 0, disable: bool | None = None) -> None:
        """Bar for ``total`` steps, starting at ``initial``."""
        super().__init__()
        self.bar = tqdm(total=total, initial=initial, desc="training", unit="step", disable=disable)

    def _on_step(self) -> bool:
        self.bar.update(self.model.n_envs)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


class CheckpointCallback(BaseCallback):
    """Atomic model + replay-buffer checkpoints every ``every`` steps (see module docs)."""

    def __init__(self, folder: Path, every: int) -> None:
        """Write into ``folder`` every ``every`` environment steps."""
        super().__init__()
        self.folder, self.every = folder, every
        self._next = None

    def _on_step(self) -> bool:
        if self._next is None:
            self._next = (self.num_timesteps // self.every + 1) * self.every
        if self.num_timesteps >= self._next:
            save_checkpoint(self.model, self.folder)
            self._next += self.every
        return True


class ValidationCallback(BaseCallback):
    """Evaluates the current policy on validation users; appends to ``curve.csv``."""

    def __init__(self, env: MovieRecEnv, every: int, n_users: int, path: Path) -> None:
        """Evaluate on ``env`` every ``every`` steps."""
        super().__init__()
        self.env, self.every, self.n_users, self.path = env, every, n_users, path
        self._next = every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self.record()
            self._next += self.every
        return True

    def record(self) -> float:
        """Evaluate now; append ``steps,ndcg,hr,return`` to the curve."""
        r = evaluate(AgentPolicy(self.model), self.env, max_users=self.n_users, progress=False)
        new = not self.path.exists()
        with open(self.path, "a") as fh:
            if new:
                fh.write("steps,ndcg,hr,return\n")
            s = r.summary
            fh.write(
                f"{self.num_timesteps},{s['ndcg'][0]:.6f},{s['hr'][0]:.6f},{s['return'][0]:.6f}\n"
            )
        self.logger.record("eval/val_ndcg", s["ndcg"][0])
        return s["ndcg"][0]


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(model: BaseAlgorithm, folder: Path) -> Path:
    """Save model and replay buffer atomically; update ``latest.json``; keep the last two."""
    folder.mkdir(parents=True, exist_ok=True)
    steps = model.num_timesteps
    model_path = folder / f"model_{steps}.zip"
    buffer_path = folder / f"buffer_{steps}.pkl"
    tmp_model = folder / f".model_{steps}.tmp.zip"
    model.save(tmp_model)
    os.replace(tmp_model, model_path)
    if getattr(model, "replay_buffer", None) is not None:
        tmp_buffer = folder / f".buffer_{steps}.tmp.pkl"
        model.save_replay_buffer(tmp_buffer)
        os.replace(tmp_buffer, buffer_path)
    with atomic_write(folder / "latest.json", "w") as fh:
        json.dump({"steps": steps, "model": model_path.name, "buffer": buffer_path.name}, fh)
    # keep the last two models, and only the newest replay buffer (they are large)
    for old in sorted(folder.glob("model_*.zip"), key=_steps_of)[:-2]:
        old.unlink(missing_ok=True)
    for old in folder.glob("buffer_*.pkl"):
        if old != buffer_path:
            old.unlink(missing_ok=True)
    return model_path


def _steps_of(path: Path) -> int:
    return int(path.stem.split("_")[1])


def latest_checkpoint(folder: Path) -> dict[str, Any] | None:
    """``{"steps", "model", "buffer"}`` of the newest complete checkpoint, or None."""
    marker = folder / "latest.json"
    if not marker.is_file():
        return None
    info = json.loads(marker.read_text())
    if not (folder / info["model"]).is_file():
        return None
    return info


# ---------------------------------------------------------------------------------- runs
def write_config(run_dir: Path, config: RunConfig) -> None:
    """Save ``config.json`` (with library versions and the machine)."""
    import stable_baselines3
    import torch

    import recgym

    meta = {
        "recgym": recgym.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.platform(),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(run_dir / "config.json", "w") as fh:
        json.dump({"config": asdict(config), "versions": meta}, fh, indent=2)


def read_config(run_dir: str | os.PathLike[str]) -> RunConfig:
    """Load the ``RunConfig`` of a run directory.

    Raises:
        RunError: If the directory or its ``config.json`` is missing or unreadable.
    """
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise RunError(f"Run directory {str(run_dir)!r} does not exist.")
    if not path.is_file():
        raise RunError(
            f"{str(run_dir)!r} has no config.json: is it a recgym run directory (made by "
            "'recgym train --out DIR')?"
        )
    try:
        data = json.loads(path.read_text())["config"]
        return RunConfig(**data).validate()
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise RunError(f"{path} is not a valid run config: {exc}") from exc


def train(
    config: RunConfig,
    run_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool | None = None,
    log=print,
) -> BaseAlgorithm:
    """Train an agent as ``config`` says, in ``run_dir`` (see module docs).

    Args:
        config: The run.
        run_dir: Its directory (created).
        resume: Continue from the latest checkpoint in ``run_dir`` if there is one.
        progress: Show a progress bar (``None``: only on a terminal).
        log: Where to print status lines.

    Returns:
        The trained model (also saved as ``run_dir/model.zip``).
    """
    config.validate()
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    if resume and (run_dir / "config.json").is_file():
        saved = read_config(run_dir)
        if asdict(saved) != asdict(config):
            log("note: resuming with the run's saved configuration (command-line values ignored)")
        config = saved
    write_config(run_dir, config)
    env = make_env(config.env_id, n_envs=config.n_envs, **config.env_kwargs)
    latest = latest_checkpoint(ckpt_dir) if resume else None
    if latest is not None:
        algo = ALGOS[config.algo]
        from agents.factory import resolve_device

        model = algo.load(ckpt_dir / latest["model"], env=env, device=resolve_device(config.device))
        if (ckpt_dir / latest["buffer"]).is_file():
            model.load_replay_buffer(ckpt_dir / latest["buffer"])
        log(f"resuming from step {model.num_timesteps} ({latest['model']})")
    else:
        if resume:
            log("no checkpoint found: starting from scratch")
        hyper = dict(config.hyperparameters)
        if "buffer_size" not in hyper:  # no larger than what this run can fill
            default = default_buffer_size(int(np.prod(env.observation_space.shape)))
            fill = config.timesteps + (OFFLINE_TRANSITIONS if config.offline_steps else 0)
            hyper["buffer_size"] = max(1, min(default, fill))
        model = make_agent(
            config.algo,
            env,
            device=config.device,
            seed=config.seed,
            tensorboard_log=run_dir / "tb",
            **hyper,
        )
        if config.offline_steps:
            train_env = config.make_eval_env("train")
            transitions = logged_transitions(train_env, OFFLINE_TRANSITIONS, rng=config.seed)
            n = fill_replay_buffer(model, transitions)
            log(f"offline pre-training: {config.offline_steps} gradient steps on {n} transitions")
            with single_blas_thread():
                pretrain(model, config.offline_steps)
    done = model.num_timesteps
    remaining = config.timesteps - done
    callbacks: list[BaseCallback] = [
        ProgressCallback(config.timesteps, done, None if progress is None else not progress)
    ]
    if config.checkpoint_every:
        callbacks.append(CheckpointCallback(ckpt_dir, config.checkpoint_every))
    if config.eval_every:
        val_env = config.make_eval_env("val")
        callbacks.append(
            ValidationCallback(val_env, config.eval_every, config.eval_users, run_dir / "curve.csv")
        )
    start = time.perf_counter()
    if remaining > 0:
        with single_blas_thread():  # one limit for the whole run: no per-step thread toggling
            model.learn(
                remaining,
                callback=CallbackList(callbacks),
                reset_num_timesteps=latest is None,
                tb_log_name="run",
            )
    seconds = time.perf_counter() - start
    tmp = run_dir / ".model.tmp.zip"
    model.save(tmp)
    os.replace(tmp, run_dir / "model.zip")
    with atomic_write(run_dir / "train.json", "w") as fh:
        json.dump({"timesteps": int(model.num_timesteps), "seconds": seconds}, fh)
    log(f"trained {model.num_timesteps} steps in {seconds:.0f} s -> {run_dir / 'model.zip'}")
    return model


def load_model(run_dir: str | os.PathLike[str], device: str = "auto") -> BaseAlgorithm:
    """Load ``run_dir/model.zip`` (or the latest checkpoint of an unfinished run)."""
    from agents.factory import resolve_device

    config = read_config(run_dir)
    run_dir = Path(run_dir)
    path = run_dir / "model.zip"
    if not path.is_file():
        latest = latest_checkpoint(run_dir / "checkpoints")
        if latest is None:
            raise RunError(
                f"{str(run_dir)!r} holds no trained model yet (no model.zip or checkpoint): "
                "finish it with 'recgym train --out DIR --resume'."
            )
        path = run_dir / "checkpoints" / latest["model"]
    return ALGOS[config.algo].load(path, device=resolve_device(device))


def check_compatible(model: BaseAlgorithm, env: MovieRecEnv) -> None:
    """Raise a ConfigError if ``model`` cannot act in ``env`` (other embedding dim, frame...)."""
    want, got = model.observation_space.shape, env.observation_space.shape
    if want != got or model.action_space.shape != env.action_space.shape:
        raise ConfigError(
            f"The model expects observations of shape {want} and actions of shape "
            f"{model.action_space.shape}, but the environment has {got} and "
            f"{env.action_space.shape} (embedding_dim={env.embedding_dim}, frame_size="
            f"{env.frame_size}). Use the run's embedding_dim and frame_size."
        )


def evaluate_run(
    run_dir: str | os.PathLike[str],
    *,
    baselines: tuple[str, ...] = BASELINES,
    split: str = "test",
    max_users: int | None = None,
    env_overrides: dict[str, Any] | None = None,
    device: str = "auto",
    progress: bool | None = None,
    write: bool = True,
) -> list[EvalResult]:
    """Evaluate a run's agent next to the baselines on ``split`` users.

    Returns:
        One result per policy, agent first; also written to ``eval.json`` and ``eval.md``.
    """
    config = read_config(run_dir)
    model = load_model(run_dir, device)
    env = config.make_eval_env(split, **(env_overrides or {}))
    check_compatible(model, env)
    policies = [AgentPolicy(model, name=config.algo)]
    policies += [make_baseline(name, env, seed=config.seed) for name in baselines]
    results = [evaluate(p, env, max_users=max_users, progress=progress) for p in policies]
    if write:
        run_dir = Path(run_dir)
        with atomic_write(run_dir / "eval.json", "w") as fh:
            json.dump([r.to_dict() for r in results], fh, default=_json_default)
        with atomic_write(run_dir / "eval.md", "w") as fh:
            fh.write(results_table(results) + "\n")
    return results


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)
