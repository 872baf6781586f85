"""Training runs: one folder per run, trained, checkpointed, resumed and evaluated.

A run folder holds:

* ``config.json``: the :class:`~agents.config.RunConfig` (everything needed to rebuild the
  environment and the agent; an anchored run writes out every anchor setting, defaults
  included), with library versions and the machine;
* ``hyperparameters.json``: the hyperparameters the model actually used, read back from it
  (defaults, caps and SB3's own values included, see
  :func:`agents.factory.effective_hyperparameters`);
* ``checkpoints/``: the model and its replay buffer every ``checkpoint_every`` steps (see
  :mod:`agents.checkpoints`), so a killed run resumes from them (``resume=True``; the
  environment and noise random states restart from the seed, so a resumed run is not
  bit-identical to an uninterrupted one);
* ``anchor.json``: for the anchored recipe (:mod:`agents.recipe`), what its offline stages did
  (logged transitions, behaviour-cloning epochs and validation NDCG, critic warm-up, seconds);
* ``tb/``: TensorBoard logs (SB3's training statistics and ``eval/val_ndcg``);
  ``curve.csv``: validation NDCG@k, HR@k and return during training;
* ``model.zip``: the final model; ``train.json``: steps, gradient updates and seconds;
* ``eval-<split>-<users>-users.json`` / ``.md``: one file pair per evaluation (for example
  ``eval-test-all-users.md``), recording split, users, seed and date.

:func:`train` is a pipeline of small steps (config, environment, model, learn, save) so that
stages such as pre-training slot in between. The folder is created only once the environment
and the model are built, so a run that fails at start (data not found) leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from agents.anchored import load_agent, saved_recipe
from agents.callbacks import ProgressCallback, RunCheckpoints, ValidationCallback
from agents.checkpoints import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from agents.config import DEFAULT_BASELINES, RunConfig, config_differences
from agents.evaluate import EvalResult, evaluate, results_table
from agents.factory import (
    default_buffer_size,
    default_hyperparameters,
    effective_hyperparameters,
    make_agent,
    make_env,
    resolve_device,
)
from agents.offline import fill_replay_buffer, logged_transitions, pretrain
from agents.policies import AgentPolicy, make_baseline
from agents.recipe import attach_anchor, prepare_anchored
from agents.threads import single_blas_thread, single_torch_thread
from agents.wolpertinger import WolpertingerPolicy, value_gap
from recgym.errors import ConfigError, RecgymError
from recgym.files import atomic_write
from recgym.progress import shows_bar

__all__ = [
    "CheckpointError",
    "RunConfig",
    "RunError",
    "evaluate_run",
    "evaluation_name",
    "latest_checkpoint",
    "load_model",
    "read_config",
    "resolved_config",
    "run_hyperparameters",
    "save_checkpoint",
    "train",
]

log = logging.getLogger("agents")  # what a run did (the CLI prints it)
progress_log = logging.getLogger("agents.progress")  # progress lines where no bar is shown
OFFLINE_TRANSITIONS = 200_000  # logged transitions sampled for offline pre-training
LEARNING_STARTS_SHARE = 10  # the default learning_starts is at most 1/10 of the run


class RunError(RecgymError, ValueError):
    """A run directory is missing, incomplete or inconsistent."""


# --------------------------------------------------------------------------- run folder
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
    with atomic_write(run_dir / "config.json", "w") as fh:
        json.dump({"config": asdict(config), "versions": meta}, fh, indent=2)


def write_hyperparameters(run_dir: Path, model: BaseAlgorithm) -> dict[str, Any]:
    """Save ``hyperparameters.json``: what ``model`` actually uses; return it."""
    used = effective_hyperparameters(model)
    with atomic_write(run_dir / "hyperparameters.json", "w") as fh:
        json.dump(used, fh, indent=2)
    return used


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
        return RunConfig.from_dict(data, source=str(path)).validate()
    except (json.JSONDecodeError, KeyError, TypeError, ConfigError) as exc:
        raise RunError(f"{path} is not a valid run config: {exc}") from exc


# ------------------------------------------------------------------------------- train
def train(
    config: RunConfig,
    run_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool | None = None,
) -> BaseAlgorithm:
    """Train an agent as ``config`` says, in ``run_dir`` (see module docs).

    What the run does (resumed from which step, the offline stages, where TensorBoard logs go,
    the gradient updates done) is reported to the ``agents`` logger.

    Args:
        config: The run.
        run_dir: Its directory (created once training starts).
        resume: Continue from the newest checkpoint in ``run_dir`` that loads, if any.
        progress: Show a progress bar (``None``: only on a terminal; otherwise plain lines go
            to the ``agents.progress`` logger).

    Returns:
        The trained model (also saved as ``run_dir/model.zip``).

    Raises:
        RunError: If ``run_dir`` already holds a run and ``resume`` is False.
        ConfigError: For a bad configuration, e.g. ``learning_starts`` not below
            ``timesteps``.
    """
    run_dir = Path(run_dir)
    config = _run_config(config, run_dir, resume)  # validated
    env = make_env(config.env_id, n_envs=config.n_envs, **config.training_env_kwargs())
    val_env = config.make_eval_env("val") if config.eval_every else None
    model, final = _resume_model(config, env, run_dir) if resume else (None, False)
    if model is None:
        model = _new_model(config, env, run_dir)
    elif model.num_timesteps >= config.timesteps:
        log.info("the run is finished (%d steps): nothing to train", model.num_timesteps)
        if not final:  # its model.zip was missing or damaged: the last checkpoint replaces it
            _save_final(model, run_dir, 0.0, 0)
        return model
    # training starts: only now does the run folder exist
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, config)
    write_hyperparameters(run_dir, model)
    if config.offline_steps and model.num_timesteps == 0:
        _offline_pretraining(model, config)
    if config.recipe == "anchored":
        _anchor(model, config, run_dir, progress)
    seconds, updates = _learn(model, config, run_dir, val_env, progress)
    _save_final(model, run_dir, seconds, updates)
    return model


def _run_config(config: RunConfig, run_dir: Path, resume: bool) -> RunConfig:
    """The configuration to train with: a resumed run keeps the one it was started with.

    A new anchored run writes every :class:`AnchorSettings` field out (not only the ones
    given), so that its ``config.json`` says what it ran and a later change of a default does
    not change the rest of the run when it is resumed.
    """
    config = resolved_config(config)
    saved = run_dir / "config.json"
    if saved.is_file() and not resume:
        raise RunError(
            f"{run_dir} already holds a run: pass --resume to continue it, or another --out."
        )
    if resume and saved.is_file():
        kept = read_config(run_dir)
        ignored = config_differences(config, kept)
        if ignored:
            log.info("note: resuming with the run's saved configuration; ignored: %s",
                     "; ".join(ignored))  # fmt: skip
        return kept
    return config


def resolved_config(config: RunConfig) -> RunConfig:
    """``config`` validated, with every anchor setting written out for an anchored run.

    This is the form a run saves in its ``config.json``.
    """
    config = config.validate()
    if config.recipe == "anchored":
        config = replace(config, anchor=asdict(config.anchor_settings()))
    return config


def run_hyperparameters(config: RunConfig, obs_dim: int) -> dict[str, Any]:
    """The SB3 overrides a new run passes to :func:`agents.factory.make_agent`.

    ``config.hyperparameters``, plus two caps on the defaults that a run needs: the replay
    buffer holds no more than the run can fill, and ``learning_starts`` (1,000 by default) is
    at most a tenth of the run, so that a short run still trains.

    Raises:
        ConfigError: If an explicit ``learning_starts`` is not below ``timesteps``: the agent
            would only ever act at random.
    """
    hyper = dict(config.hyperparameters)
    if "buffer_size" not in hyper:  # no larger than what this run can fill
        fill = config.timesteps + (OFFLINE_TRANSITIONS if config.offline_steps else 0)
        hyper["buffer_size"] = max(1, min(default_buffer_size(obs_dim), fill))
    if "learning_starts" in hyper:
        starts = hyper["learning_starts"]
        if isinstance(starts, int) and starts >= config.timesteps:
            raise ConfigError(
                f"learning_starts={starts} is not below timesteps={config.timesteps}: the agent "
                "would never be trained. Lower learning_starts (--set learning_starts=N) or "
                "raise --timesteps."
            )
    else:
        defaults = default_hyperparameters(config.algo, obs_dim, None, config.recipe)
        default = defaults["learning_starts"]
        hyper["learning_starts"] = min(default, max(1, config.timesteps // LEARNING_STARTS_SHARE))
    return hyper


def _new_model(config: RunConfig, env, run_dir: Path) -> BaseAlgorithm:
    hyper = run_hyperparameters(config, int(np.prod(env.observation_space.shape)))
    return make_agent(
        config.algo,
        env,
        device=config.device,
        seed=config.seed,
        tensorboard_log=run_dir / "tb",
        recipe=config.recipe,
        **hyper,
    )


def _anchor(model: BaseAlgorithm, config: RunConfig, run_dir: Path, progress) -> None:
    """The anchored recipe's offline stages for a new model; the anchor back for a resumed one."""
    train_env = config.make_eval_env("train", **config.train_env_kwargs)
    settings = config.anchor_settings()
    if model.num_timesteps:
        attach_anchor(model, train_env, settings, seed=config.seed)
        return
    log.info("anchored recipe: behaviour cloning, critic warm-up, then online fine-tuning")
    report = prepare_anchored(
        model, train_env, config.make_eval_env("val"), settings, seed=config.seed,
        progress=progress,
    )  # fmt: skip
    bc = report.bc
    best = f" (validation NDCG {bc.val_ndcg[bc.best_epoch]:.4f})" if bc.val_ndcg else ""
    log.info(
        "behaviour cloning on %s logged transitions: %.0f s",
        f"{report.transitions:,}",
        report.seconds["bc"],
    )
    log.info("  kept epoch %d of %d%s", bc.best_epoch + 1, bc.epochs, best)
    log.info("critic warm-up: %d steps, %.0f s", settings.warmup_steps, report.seconds["warmup"])
    if model.hits is not None:
        log.info(
            "hit term (weight %g): %s of %s exploring slates paid",
            model.hit_weight,
            f"{len(model.hits):,}",
            f"{report.transitions:,}",
        )
    with atomic_write(run_dir / "anchor.json", "w") as fh:
        json.dump(report.to_dict(), fh, indent=1)


def _resume_model(config: RunConfig, env, run_dir: Path) -> tuple[BaseAlgorithm | None, bool]:
    """The final model of a finished run, else the newest checkpoint that loads, else None.

    Returns:
        The model, and whether it is the run's ``model.zip``.
    """
    device = resolve_device(config.device)

    def load(path: Path) -> BaseAlgorithm:
        return load_run_model(path, config, env=env, device=device)

    final = run_dir / "model.zip"
    if final.is_file():
        try:
            return load(final), True
        except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways
            log.info(
                "model.zip does not load (%s: %s); trying the checkpoints", type(exc).__name__, exc
            )
    model = load_checkpoint(run_dir / "checkpoints", load)
    if model is None:
        log.info("no checkpoint found: starting from scratch")
    else:
        log.info("resuming from step %d", model.num_timesteps)
    return model, False


def _offline_pretraining(model: BaseAlgorithm, config: RunConfig) -> None:
    train_env = config.make_eval_env("train", **config.train_env_kwargs)
    transitions = logged_transitions(train_env, OFFLINE_TRANSITIONS, rng=config.seed)
    n = fill_replay_buffer(model, transitions)
    log.info("offline pre-training: %d gradient steps on %d transitions", config.offline_steps, n)
    with single_blas_thread():
        pretrain(model, config.offline_steps)


def _learn(
    model: BaseAlgorithm,
    config: RunConfig,
    run_dir: Path,
    val_env,
    progress: bool | None,
) -> tuple[float, int]:
    """Online training up to ``config.timesteps``; returns seconds and gradient updates."""
    callbacks: list[BaseCallback] = []
    validation = None
    if val_env is not None:
        validation = ValidationCallback(
            val_env, config.eval_every, config.eval_users, run_dir / "curve.csv"
        )
        callbacks.append(validation)
    if config.checkpoint_every:
        callbacks.append(RunCheckpoints(run_dir / "checkpoints", config.checkpoint_every))
    callbacks.append(ProgressCallback(config.timesteps, progress, validation))
    before = _n_updates(model)
    start = time.perf_counter()
    log.info("TensorBoard: tensorboard --logdir %s", run_dir / "tb")
    with single_blas_thread():  # one limit for the whole run: no per-step thread toggling
        model.learn(
            config.timesteps - model.num_timesteps,
            callback=CallbackList(callbacks),
            reset_num_timesteps=model.num_timesteps == 0,
            tb_log_name="run",
        )
    updates = _n_updates(model) - before
    if updates == 0:
        log.warning(
            "no gradient update was done: learning_starts (%s) was never reached",
            getattr(model, "learning_starts", "?"),
        )
    return time.perf_counter() - start, updates


def _n_updates(model: BaseAlgorithm) -> int:
    return int(getattr(model, "_n_updates", 0))


def _save_final(model: BaseAlgorithm, run_dir: Path, seconds: float, updates: int) -> None:
    tmp, path = run_dir / ".model.tmp.zip", run_dir / "model.zip"
    model.save(tmp)
    os.replace(tmp, path)
    record = {
        "timesteps": int(model.num_timesteps),
        "gradient_updates": _n_updates(model),
        "gradient_updates_this_session": updates,
        "seconds": seconds,
    }
    with atomic_write(run_dir / "train.json", "w") as fh:
        json.dump(record, fh)
    log.info(
        "trained %d steps with %d gradient updates (%d in this session) in %.0f s",
        record["timesteps"],
        record["gradient_updates"],
        updates,
        seconds,
    )
    log.info("model: %s", path)


# --------------------------------------------------------------------------- load, eval
def load_model(run_dir: str | os.PathLike[str], device: str = "auto") -> BaseAlgorithm:
    """Load ``run_dir/model.zip``, or the newest checkpoint that loads of an unfinished run.

    Which checkpoint was used, and which were skipped, is reported to the ``agents`` logger.

    Raises:
        RunError: If the run holds no model, or its ``model.zip`` does not load.
        CheckpointError: If the run is unfinished and none of its checkpoints loads.
    """
    config = read_config(run_dir)
    run_dir = Path(run_dir)
    device = resolve_device(device)
    path = run_dir / "model.zip"
    if path.is_file():
        try:
            return load_run_model(path, config, device=device)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways
            raise RunError(
                f"{path} does not load ({type(exc).__name__}: {exc}); it is damaged. Train "
                f"again, or remove it and resume from the checkpoints: 'recgym train --out "
                f"{run_dir} --resume'."
            ) from exc
    model = load_checkpoint(
        run_dir / "checkpoints", lambda p: load_run_model(p, config, device=device)
    )
    if model is None:
        raise RunError(
            f"{str(run_dir)!r} holds no trained model yet (no model.zip or checkpoint): "
            "finish it with 'recgym train --out DIR --resume'."
        )
    log.info("%s is unfinished: using its checkpoint at step %d", run_dir, model.num_timesteps)
    return model


def load_run_model(path: Path, config: RunConfig, **kwargs: Any) -> BaseAlgorithm:
    """Load a model file of a run, checking that it was saved by the run's recipe.

    Raises:
        ConfigError: If the file holds a model of another recipe or algorithm.
    """
    recipe, algorithm = saved_recipe(path)
    if recipe != config.recipe or (algorithm is not None and algorithm != config.algo):
        saved = f"{recipe} {algorithm or ''}".strip()
        raise ConfigError(
            f"{path} holds a model of recipe {saved!r}, but the run's config.json says "
            f"recipe={config.recipe!r}, algo={config.algo!r}: the file belongs to another run. "
            "Use that run's folder, or train this one again with another --out."
        )
    return load_agent(path, config.algo, **kwargs)


def check_compatible(model: BaseAlgorithm, env) -> None:
    """Raise a ConfigError if ``model`` cannot act in ``env`` (other embedding dim, frame...)."""
    want, got = model.observation_space.shape, env.observation_space.shape
    if want != got or model.action_space.shape != env.action_space.shape:
        raise ConfigError(
            f"The model expects observations of shape {want} and actions of shape "
            f"{model.action_space.shape}, but the environment has {got} and "
            f"{env.action_space.shape} (embedding_dim={env.embedding_dim}, frame_size="
            f"{env.frame_size}). Use the run's embedding_dim and frame_size."
        )


def agent_policies(model: BaseAlgorithm, config: RunConfig) -> list:
    """The agent's rows of an evaluation: its plain decode, and Wolpertinger re-ranking if set."""
    policies = [AgentPolicy(model, name=config.algo)]
    if config.wolpertinger_k:
        name = f"{config.algo}+W{config.wolpertinger_k}"
        policies.append(WolpertingerPolicy(model, config.wolpertinger_k, name=name))
    return policies


def evaluation_name(split: str, max_users: int | None) -> str:
    """The file stem of an evaluation: ``eval-test-all-users``, ``eval-val-20-users``."""
    return f"eval-{split}-{'all' if max_users is None else max_users}-users"


def evaluate_run(
    run_dir: str | os.PathLike[str],
    *,
    baselines: tuple[str, ...] = DEFAULT_BASELINES,
    split: str = "test",
    max_users: int | None = None,
    env_overrides: dict[str, Any] | None = None,
    device: str = "auto",
    progress: bool | None = None,
    write: bool = True,
) -> list[EvalResult]:
    """Evaluate a run's agent next to the baselines on ``split`` users.

    Returns:
        One result per policy, agent first. With ``write``, also saved to
        ``run_dir/<evaluation_name(split, max_users)>.json`` (split, users, seed, date, the
        baselines and every result) and ``.md`` (the table); other evaluations are kept.
    """
    config = read_config(run_dir)
    model = load_model(run_dir, device)
    env = config.make_eval_env(split, **(env_overrides or {}))
    check_compatible(model, env)
    policies = agent_policies(model, config)
    policies += [make_baseline(name, env, seed=config.seed) for name in baselines]
    results = []
    bars = shows_bar(progress)
    with single_torch_thread():
        for policy in policies:
            results.append(evaluate(policy, env, max_users=max_users, progress=progress))
            if hasattr(model, "critic") and policy in policies[: len(policies) - len(baselines)]:
                # the critic's predicted return against the realised one (over-estimation)
                results[-1].extra["value_gap"] = value_gap(model, env, policy, max_users)
            if not bars:  # a line per policy where there is no progress bar
                progress_log.info(
                    "evaluated %s: %d %s users in %.1f s",
                    policy.name,
                    results[-1].n_users,
                    split,
                    results[-1].seconds,
                )
    if write:
        run_dir = Path(run_dir)
        stem = evaluation_name(split, max_users)
        header = {
            "split": split,
            "split_strategy": env.context.split.strategy,
            "users": max_users,
            "n_users": results[0].n_users if results else 0,
            "seed": config.seed,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model_steps": int(model.num_timesteps),
            "baselines": list(baselines),
            "env_overrides": env_overrides or {},
        }
        with atomic_write(run_dir / f"{stem}.json", "w") as fh:
            payload = {**header, "results": [r.to_dict() for r in results]}
            json.dump(payload, fh, default=_json_default, indent=1)
        with atomic_write(run_dir / f"{stem}.md", "w") as fh:
            users = "all" if max_users is None else f"the first {max_users}"
            fh.write(
                f"{split} users ({users}: {header['n_users']}), seed {config.seed}, "
                f"model at step {header['model_steps']}, {header['date']}\n\n"
                + results_table(results)
                + "\n"
            )
    return results


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)
