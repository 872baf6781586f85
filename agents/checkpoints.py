"""Checkpoints of a training run: written atomically, read back with a fallback.

Every ``checkpoint_every`` steps :func:`save_checkpoint` writes ``model_<steps>.zip`` and
``buffer_<steps>.pkl`` (the replay buffer) into ``checkpoints/``, each through a temporary file
and a rename, then ``latest.json``; it keeps the two newest models and the newest buffer. A run
killed at any moment therefore leaves only complete files.

A file can still be damaged afterwards (a full disk, a partial copy). :func:`load_checkpoint`
tries the models newest first and resumes from the newest one that loads, saying which one it
skipped and why; it raises :class:`CheckpointError` only when none loads.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm

from recgym.errors import RecgymError
from recgym.files import atomic_write

log = logging.getLogger("agents")


class CheckpointError(RecgymError, ValueError):
    """No checkpoint of a run can be loaded."""


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
    for old in checkpoint_models(folder)[2:]:
        old.unlink(missing_ok=True)
    for old in folder.glob("buffer_*.pkl"):
        if old != buffer_path:
            old.unlink(missing_ok=True)
    return model_path


def steps_of(path: Path) -> int:
    """The step count in a checkpoint name (``model_2000.zip`` -> 2000; -1 if none)."""
    try:
        return int(path.stem.split("_")[1])
    except (IndexError, ValueError):
        return -1


def checkpoint_models(folder: Path) -> list[Path]:
    """The checkpoint models in ``folder``, newest first."""
    found = [p for p in folder.glob("model_*.zip") if steps_of(p) >= 0]
    return sorted(found, key=steps_of, reverse=True)


def latest_checkpoint(folder: Path) -> dict[str, Any] | None:
    """``{"steps", "model", "buffer"}`` of the newest checkpoint model on disk, or None.

    This names files only; :func:`load_checkpoint` is what checks that they load.
    """
    models = checkpoint_models(folder)
    if not models:
        return None
    steps = steps_of(models[0])
    return {"steps": steps, "model": models[0].name, "buffer": f"buffer_{steps}.pkl"}


def load_checkpoint(folder: Path, load: Callable[[Path], BaseAlgorithm]) -> BaseAlgorithm | None:
    """Load the newest checkpoint model of ``folder`` that loads, with its replay buffer.

    Files skipped, and why, are reported to the ``agents`` logger.

    Args:
        folder: The ``checkpoints/`` folder.
        load: Loads one model file (``DDPG.load`` with the env and device bound).

    Returns:
        The model (with its replay buffer when that file loads too), or None if ``folder``
        holds no checkpoint model.

    Raises:
        CheckpointError: If there are checkpoint models and none of them loads.
    """
    models = checkpoint_models(folder)
    failures = []
    for path in models:
        try:
            model = load(path)
        except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways
            failures.append(f"{path.name} ({_reason(exc)})")
            log.info(
                "checkpoint %s does not load (%s); trying an older one", path.name, _reason(exc)
            )
            continue
        if failures:
            log.info("resuming from the newest checkpoint that loads: %s", path.name)
        _load_buffer(model, folder / f"buffer_{steps_of(path)}.pkl")
        return model
    if failures:
        raise CheckpointError(
            f"No checkpoint in {folder} loads: {'; '.join(failures)}. Delete {folder} to "
            "start this run over, or train into another --out."
        )
    return None


def _load_buffer(model: BaseAlgorithm, path: Path) -> None:
    if getattr(model, "replay_buffer", None) is None:
        return
    if not path.is_file():
        log.info(
            "no replay buffer saved with this checkpoint (%s): starting an empty one", path.name
        )
        return
    try:
        model.load_replay_buffer(path)
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways
        log.info(
            "replay buffer %s does not load (%s): starting an empty one", path.name, _reason(exc)
        )


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
