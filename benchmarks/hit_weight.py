r"""The hit term's weight on VALIDATION users: NDCG@10 against the episode return.

The anchored recipe's fine-tuning keeps the next-item cross-entropy (:mod:`agents.anchor`);
``hit_weight = h`` adds ``h`` times the hit term of :mod:`agents.hits`, a policy gradient of
the environment's reward: the slate items that paid in the exploring transitions (any hit of
the user's future, weighted by what it added to the reward) pull the actor's policy. This
script trains the full recipe (``recgym train``'s: behaviour cloning, critic warm-up, online
fine-tuning) for each ``h`` and seed, and scores the final agent on ALL validation users
(test users are never read), next to the validation rows of item-kNN and popularity. ``h =
0`` is the recipe without the term. Runs are ordinary run folders,
``<runs>/<env>__<algo>__hits<h>__seed<seed>``; finished ones are read back, not retrained
(:func:`benchmarks.rating_weight.sweep`, which this sweep shares).

Output: ``<out>/<dataset>/hit_weight-<algo>.md`` (and ``.json``), one per algorithm. Rerun::

    python -m benchmarks.hit_weight --weights 0 1 3 --seeds 2 --algo ddpg
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from benchmarks.common import parse_args
from benchmarks.rating_weight import SweepArgs, run_config, sweep, write_sweep


@dataclass
class Args(SweepArgs):
    """Sweep the hit term's weight; score each run on the validation users."""

    weights: list[float] = field(default_factory=lambda: [0.0, 1.0, 3.0],
                                 metadata={"help": "hit weights to train"})  # fmt: skip
    runs: str = field(default="runs/hit_weight", metadata={"help": "folder of run folders"})


def main(args: Args) -> str:
    """Train the sweep, score it and write the table."""
    start = time.perf_counter()
    results, base = sweep(
        args,
        args.weights,
        lambda h, seed: run_config(args, seed, hyperparameters={"hit_weight": h}),
        "hits",
    )
    weights = " ".join(f"{h:g}" for h in args.weights)
    return write_sweep(
        args,
        "hit_weight",
        results,
        base,
        title="Weight of the hit term",
        what="the model's `hit_weight` set (0: no hit term)",
        rerun=f"python -m benchmarks.hit_weight --weights {weights} --seeds {args.seeds} "
        f"--algo {args.algo}",
        seconds=time.perf_counter() - start,
        stem=f"hit_weight-{args.algo}",
    )


if __name__ == "__main__":
    main(parse_args(Args))
