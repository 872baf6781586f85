"""The speed suite: data, environment and training speed, rewriting ``benchmarks/RESULTS.md``.

Runs :mod:`benchmarks.data_speed` and :mod:`benchmarks.env_speed`, then times DDPG training
on MovieRec-v0 (default settings of :mod:`agents.factory`) and measures the share of its wall
time spent inside the environment (decode, reward, transition, observation: every ``VecEnv``
call), the rest being SB3's own work (networks, replay buffer, logging). RESULTS.md is written
anew, headed by the machine, the library versions and the date.

Rerun: ``python -m benchmarks.speed`` (about 15 minutes; ``--quick`` for a short pass).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field

from benchmarks import data_speed, env_speed
from benchmarks.common import RESULTS, machine, md_table, parse_args, report, stamp


@dataclass
class Args:
    """Data, environment and training speed in one go."""

    quick: bool = field(default=False, metadata={"help": "fewer repeats, no 20M file"})
    train_steps: int = field(default=5_000, metadata={"help": "DDPG steps timed"})
    n_envs: list[int] = field(default_factory=lambda: [1, 8],
                              metadata={"help": "parallel users for the DDPG timing"})  # fmt: skip


def training_speed(steps: int, n_envs: int) -> dict[str, float]:
    """DDPG steps/s on MovieRec-v0 and the share of wall time spent in the environment."""
    from agents import make_agent
    from agents.sb3_env import RecVecEnv
    from agents.threads import single_blas_thread

    class TimedVecEnv(RecVecEnv):
        seconds = 0.0

        def step_wait(self):
            start = time.perf_counter()
            out = super().step_wait()
            TimedVecEnv.seconds += time.perf_counter() - start
            return out

        def reset(self):
            start = time.perf_counter()
            out = super().reset()
            TimedVecEnv.seconds += time.perf_counter() - start
            return out

    env = TimedVecEnv(n_envs, dataset="ml-latest-small")
    model = make_agent("ddpg", env, seed=0, device="cpu")
    model.learn(1_000)  # past learning_starts: every later step trains
    TimedVecEnv.seconds = 0.0
    start = time.perf_counter()
    with single_blas_thread():  # as agents.run.train does
        model.learn(steps, reset_num_timesteps=False)
    wall = time.perf_counter() - start
    return {"steps_per_s": steps / wall, "env_share": TimedVecEnv.seconds / wall}


def main(args: Args) -> None:
    """Run every suite and write RESULTS.md from scratch."""
    import gymnasium
    import numpy
    import stable_baselines3
    import torch

    RESULTS.write_text(
        "# Benchmark results\n\n"
        f"Written by `python -m benchmarks.speed` on {stamp()}.\n"
        f"Machine: {machine()}; {platform.platform()}.\n"
        f"Versions: gymnasium {gymnasium.__version__}, numpy {numpy.__version__}, "
        f"torch {torch.__version__}, stable-baselines3 {stable_baselines3.__version__}.\n"
    )
    data_speed.main(
        data_speed.Args(repeats=3 if args.quick else 5, large=not args.quick, write=True)
    )
    env_speed.main(
        env_speed.Args(
            repeats=3 if args.quick else 7,
            seconds=0.3 if args.quick else 0.5,
            large=not args.quick,
            write=True,
        )  # fmt: skip
    )
    rows = []
    for n in args.n_envs:
        r = training_speed(args.train_steps, n)
        rows.append([str(n), f"{r['steps_per_s']:,.0f}", f"{100 * r['env_share']:.1f}%"])
        print(rows[-1], flush=True)
    text = (
        f"## Training speed\n\n{stamp()}, {machine()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads). DDPG with the defaults of agents/factory.py "
        f"(MLP 256-256, batch 256, one gradient step per transition) on MovieRec-v0, "
        f"{args.train_steps} steps timed after 1,000 warm-up steps.\n\n"
        + md_table(["parallel users", "DDPG steps/s", "wall time in the env"], rows)
        + "\n\nRerun: `python -m benchmarks.speed`\n"
    )
    report("train_speed", text, True)


if __name__ == "__main__":
    main(parse_args(Args))
