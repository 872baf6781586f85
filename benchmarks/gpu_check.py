"""GPU check: DDPG training speed on CUDA and on the CPU, same settings, same run.

Trains DDPG on MovieRec-v0 for ``--steps`` environment steps (after ``learning_starts``
random ones) on each device available and prints steps/s and the device's name. Without a GPU
it runs the CPU alone and says so. With ``--write`` the table goes into
``benchmarks/RESULTS.md``.

Rerun: ``python -m benchmarks.gpu_check --steps 3000``
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from agents import make_agent
from benchmarks.common import machine, md_table, parse_args, report, stamp


@dataclass
class Args:
    """DDPG steps/s on CUDA and on the CPU."""

    steps: int = field(default=3000, metadata={"help": "training steps timed per device"})
    n_envs: int = field(default=8, metadata={"help": "parallel users"})
    env_id: str = field(default="MovieRec-v0", metadata={"help": "environment id"})
    batch_size: int = field(default=256, metadata={"help": "SB3 batch size"})
    write: bool = field(default=False, metadata={"help": "update benchmarks/RESULTS.md"})


def steps_per_second(device: str, args: Args) -> float:
    """Build a DDPG agent on ``device`` and time ``args.steps`` training steps."""
    model = make_agent("ddpg", args.env_id, device=device, seed=0, n_envs=args.n_envs,
                       learning_starts=500, batch_size=args.batch_size)  # fmt: skip
    model.learn(500)  # fill the buffer, compile kernels
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    model.learn(args.steps, reset_num_timesteps=False)
    if device == "cuda":
        torch.cuda.synchronize()
    return args.steps / (time.perf_counter() - start)


def main(args: Args) -> None:
    """Time each available device and print the table."""
    devices = (["cuda"] if torch.cuda.is_available() else []) + ["cpu"]
    rows = []
    for device in devices:
        name = torch.cuda.get_device_name(0) if device == "cuda" else machine().split(";")[0]
        rate = steps_per_second(device, args)
        rows.append([device, name, f"{rate:,.0f}"])
        print(rows[-1], flush=True)
    table = md_table(["device", "name", "DDPG train steps/s"], rows)
    no_gpu = (
        ""
        if "cuda" in devices
        else "**CUDA was not available on this machine: CPU only; the GPU figure is still to "
        "be measured.**\n\n"
    )
    text = (
        f"## GPU check\n\n{no_gpu}{stamp()}, torch {torch.__version__}. DDPG on {args.env_id}, "
        f"{args.n_envs} envs, batch {args.batch_size}, {args.steps} timed steps.\n\n{table}\n\n"
        "Rerun: `python -m benchmarks.gpu_check --steps 3000 --write`\n"
    )
    report("gpu_check", text, args.write)


if __name__ == "__main__":
    main(parse_args(Args))
