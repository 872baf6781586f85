"""Stable-Baselines3 callbacks of a training run: progress, checkpoints, validation curve.

All three know where the run starts (``model.num_timesteps`` when ``learn`` begins), so a
resumed run continues their schedules instead of starting them again.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

from agents.checkpoints import save_checkpoint
from agents.evaluate import evaluate
from agents.policies import AgentPolicy
from recgym.progress import shows_bar

logger = logging.getLogger("agents.progress")

#: Seconds between plain progress lines when no progress bar is shown (piped, nohup).
LOG_EVERY_S = 30.0
CURVE_HEADER = "steps,ndcg,hr,return\n"


def next_multiple(steps: int, every: int) -> int:
    """The first multiple of ``every`` strictly after ``steps``."""
    return (steps // every + 1) * every


class ValidationCallback(BaseCallback):
    """Evaluates the policy on validation users every ``every`` steps and at the end.

    Each point is appended to ``curve.csv`` (``steps,ndcg,hr,return``) and logged to
    TensorBoard (``eval/val_ndcg``, ``eval/val_hr``, ``eval/val_return``). On a resumed run
    the points after the resumed step (written before the run was killed) are dropped first,
    and the schedule continues from the resumed step.

    Args:
        env: An unwrapped environment on the validation split.
        every: Steps between points.
        n_users: Users per evaluation (the first ones in episode order).
        path: The ``curve.csv`` file.
    """

    def __init__(self, env, every: int, n_users: int, path: Path) -> None:
        """Evaluate on ``env`` every ``every`` steps."""
        super().__init__()
        self.env, self.every, self.n_users, self.path = env, every, n_users, path
        self._next = every
        self.last: tuple[int, float] | None = None  # (steps, NDCG) of the latest point

    def _on_training_start(self) -> None:
        start = self.num_timesteps
        self._next = next_multiple(start, self.every)
        _drop_rows_after(self.path, start)

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self.record()
            self._next = next_multiple(self.num_timesteps, self.every)
        return True

    def _on_training_end(self) -> None:
        if self.last is None or self.last[0] != self.num_timesteps:
            self.record()

    def record(self) -> float:
        """Evaluate now; append ``steps,ndcg,hr,return`` to the curve and to TensorBoard."""
        r = evaluate(AgentPolicy(self.model), self.env, max_users=self.n_users, progress=False)
        s = r.summary
        new = not self.path.exists()
        with open(self.path, "a") as fh:
            if new:
                fh.write(CURVE_HEADER)
            fh.write(
                f"{self.num_timesteps},{s['ndcg'][0]:.6f},{s['hr'][0]:.6f},{s['return'][0]:.6f}\n"
            )
        self.logger.record("eval/val_ndcg", s["ndcg"][0])
        self.logger.record("eval/val_hr", s["hr"][0])
        self.logger.record("eval/val_return", s["return"][0])
        self.logger.dump(self.num_timesteps)
        self.last = (self.num_timesteps, s["ndcg"][0])
        return s["ndcg"][0]


def read_curve(path: Path) -> list[dict[str, float]]:
    """The points of a ``curve.csv``, oldest first: ``{"steps", "ndcg", "hr", "return"}``."""
    lines = Path(path).read_text().splitlines()
    names = lines[0].split(",")
    return [dict(zip(names, map(float, ln.split(",")), strict=True)) for ln in lines[1:] if ln]


def _drop_rows_after(path: Path, steps: int) -> None:
    """Remove curve rows beyond ``steps`` (left by a run killed after its last checkpoint)."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [ln for ln in lines[1:] if ln.strip() and int(ln.split(",")[0]) <= steps]
    if len(kept) != len(lines) - 1:
        path.write_text(CURVE_HEADER + "".join(kept))


class RunCheckpoints(BaseCallback):
    """Atomic model + replay-buffer checkpoints every ``every`` steps (see agents.checkpoints).

    Not SB3's ``CheckpointCallback``: it writes through a temporary file and a rename, saves the
    replay buffer with each model, keeps only the newest files, and continues its schedule from
    the step a resumed run starts at.
    """

    def __init__(self, folder: Path, every: int) -> None:
        """Write into ``folder`` every ``every`` environment steps."""
        super().__init__()
        self.folder, self.every = folder, every
        self._next = every

    def _on_training_start(self) -> None:
        self._next = next_multiple(self.num_timesteps, self.every)

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            save_checkpoint(self.model, self.folder)
            self._next = next_multiple(self.num_timesteps, self.every)
        return True


class ProgressCallback(BaseCallback):
    """Training progress: a tqdm bar on a terminal, plain log lines otherwise.

    Without a bar (output piped, under nohup, or ``progress=False``), a line goes to the
    ``agents.progress`` logger every :data:`LOG_EVERY_S` seconds and at the end: steps done,
    steps per second, time left, and the last validation NDCG when there is one.

    Args:
        total: Steps of the whole run.
        progress: Show the bar (``None``: when standard error is a terminal).
        validation: The run's validation callback, whose last point the lines report.
    """

    def __init__(
        self,
        total: int,
        progress: bool | None = None,
        validation: ValidationCallback | None = None,
    ) -> None:
        """A bar or log lines for ``total`` steps."""
        super().__init__()
        self.total = total
        self.show_bar = shows_bar(progress)
        self.validation = validation
        self.bar = None

    def _on_training_start(self) -> None:
        self._start_steps = self._last_steps = self.num_timesteps
        self._start_time = self._last_time = time.perf_counter()
        if self.show_bar:
            self.bar = tqdm(
                total=self.total, initial=self.num_timesteps, desc="training", unit="step"
            )
        else:
            logger.info("training: step %s of %s", f"{self.num_timesteps:,}", f"{self.total:,}")

    def _on_step(self) -> bool:
        if self.bar is not None:
            self.bar.update(self.model.n_envs)
            if self.validation is not None and self.validation.last is not None:
                self.bar.set_postfix(val_ndcg=f"{self.validation.last[1]:.4f}", refresh=False)
        elif time.perf_counter() - self._last_time >= LOG_EVERY_S:
            self._log_line()
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self._log_line()

    def _log_line(self) -> None:
        now, steps = time.perf_counter(), self.num_timesteps
        rate = (steps - self._start_steps) / max(now - self._start_time, 1e-9)
        left = (self.total - steps) / rate if rate > 0 else float("nan")
        line = (
            f"step {steps:,}/{self.total:,} ({100 * steps / self.total:.0f}%), "
            f"{rate:.{0 if rate >= 10 else 1}f} steps/s, {_duration(left)} left"
        )
        if self.validation is not None and self.validation.last is not None:
            at, ndcg = self.validation.last
            line += f", val NDCG {ndcg:.4f} (step {at:,})"
        logger.info(line)
        self._last_time, self._last_steps = now, steps


def _duration(seconds: float) -> str:
    if seconds != seconds:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
