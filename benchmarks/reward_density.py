"""How often does a random action earn a hit? The density of MovieRec's reward signal.

A step of MovieRec pays when a slate movie is anywhere in the user's remaining log. This script
plays uniformly random actions on train users and counts the share of steps with at least one
hit. For comparison it gives what ten movies drawn uniformly from the catalogue would get:
averaged over the same kind of steps, ``1 - (1 - L / n_items) ** slate_size`` with ``L`` the
user's remaining log at that step (every step of every train user, weighted as an episode
replays them). It also reports the random policy's next-item HR@10 (a hit on the user's actual
next movies), which is what the evaluation asks for.

Rerun: ``python -m benchmarks.reward_density``
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

import recgym  # noqa: F401  (registers the environments)
from benchmarks.common import machine, md_table, parse_args, report, stamp


@dataclass
class Args:
    """Share of random-action steps that earn a hit."""

    dataset: str = field(default="ml-latest-small", metadata={"help": "dataset name"})
    embeddings: list[str] = field(default_factory=lambda: ["svd", "implicit"],
                                  metadata={"help": "embedding methods"})  # fmt: skip
    steps: int = field(default=20_000, metadata={"help": "random steps per embedding"})
    seed: int = field(default=0, metadata={"help": "env and action seed"})
    write: bool = field(default=False, metadata={"help": "update benchmarks/RESULTS.md"})


def random_policy_hits(embedding: str, args: Args) -> tuple[float, float]:
    """Share of steps with any hit, and with a hit on the user's next items."""
    env = gym.make("MovieRec-v0", dataset=args.dataset, embedding=embedding)
    env.action_space.seed(args.seed)
    env.reset(seed=args.seed)
    any_hit = next_hit = 0
    for _ in range(args.steps):
        action = env.action_space.sample()
        _, _, terminated, truncated, info = env.step(action)
        slate = set(np.asarray(info["slate"]).tolist())
        any_hit += bool(np.any(info["hits"]))
        next_hit += bool(slate & set(info["next_items"]))
        if terminated or truncated:
            env.reset()
    env.close()
    return any_hit / args.steps, next_hit / args.steps


def uniform_slate_hits(args: Args) -> tuple[float, float]:
    """Expected hit share of a uniform random slate, and the mean remaining log per step."""
    env = gym.make("MovieRec-v0", dataset=args.dataset)
    ctx = env.unwrapped.context
    ds, ep = ctx.dataset, ctx.episodes
    remaining = np.concatenate(
        [np.arange(int(e - f), 0, -1) for f, e in zip(ep.future_start, ep.end, strict=True)]
    )
    k = env.unwrapped.slate_size
    env.close()
    return float(np.mean(1 - (1 - remaining / ds.n_items) ** k)), float(remaining.mean())


def main(args: Args) -> None:
    """Measure each embedding and print (or write) the table."""
    rows = []
    for embedding in args.embeddings:
        share, next_share = random_policy_hits(embedding, args)
        rows.append([embedding, f"{share:.1%}", f"{next_share:.4f}"])
        print(rows[-1], flush=True)
    expected, mean_left = uniform_slate_hits(args)
    table = md_table(["embedding", "steps with a hit", "next-item HR@10"], rows)
    text = (
        f"## Reward density\n\n{stamp()}, {machine()}. Uniformly random actions on the train "
        f"users of {args.dataset}, {args.steps:,} steps per embedding, seed {args.seed}.\n\n"
        f"{table}\n\nTen movies drawn uniformly would hit in {expected:.1%} of steps: the "
        f"remaining log averages {mean_left:.0f} movies per step.\n\n"
        "Rerun: `python -m benchmarks.reward_density --write`\n"
    )
    report("reward_density", text, args.write)


if __name__ == "__main__":
    main(parse_args(Args))
