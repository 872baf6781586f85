"""Speed of the anchored recipe: the offline stages, and Wolpertinger against the plain decode.

1. **Offline stages** on every logged train transition of the dataset (81,404 on
   ml-latest-small): stepping them through the environment, then behaviour cloning with the
   recipe's defaults (:class:`agents.config.AnchorSettings`: early stopping on validation users
   included), then the critic warm-up. Target: actor pre-training <= 60 s on 2 CPU cores.
2. **Online fine-tuning updates** (the anchored actor loss, the critic, the targets), ms per
   gradient update, in fresh processes run in turn: with :func:`agents.allocator.keep_freed_memory`
   (what training does) and with glibc's own thresholds (``RECGYM_KEEP_FREED_MEMORY=0``),
   median of ``--repeats`` processes each.
3. **Evaluation** of the cloned agent on the test users, the plain decode against Wolpertinger
   re-ranking at ``K`` candidates, alternating, median of ``--repeats`` each. Target: the ratio
   <= 2.
4. **SASRec's full-softmax head** (stage 0: the item table's fit spends most of its time there),
   forward and backward of one training step's ``--head-targets`` targets over the whole
   catalogue: :func:`agents.sasrec.full_softmax_cross_entropy` in chunks of its default size
   against one chunk of every row (the same arithmetic on the whole ``(T, n_items)`` matrix),
   alternating, median of ``--head-repeats`` each.

Rerun (and write the ``recipe_speed`` section of ``benchmarks/RESULTS.md``)::

    python -m benchmarks.recipe_speed --write
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

from benchmarks.common import default_data_dir, machine, md_table, parse_args, report, stamp


@dataclass
class Args:
    """Time the anchored recipe's offline stages and Wolpertinger evaluation."""

    dataset: str = field(default="ml-latest-small", metadata={"help": "dataset name"})
    embedding: str = field(
        default="sasrec",
        metadata={"help": "embedding method (sasrec: the agents' default, fitted once, cached)"},
    )
    embedding_dim: int = field(default=32, metadata={"help": "embedding dimension"})
    algo: str = field(default="td3", metadata={"help": "algorithm"})
    k: int = field(default=100, metadata={"help": "Wolpertinger candidates"})
    repeats: int = field(default=3, metadata={"help": "evaluation repeats (median)"})
    threads: int = field(default=2, metadata={"help": "torch threads"})
    updates: int = field(default=150, metadata={"help": "fine-tuning updates timed per process"})
    head_targets: int = field(
        default=1500, metadata={"help": "targets per SASRec step (16 windows: about 1,500)"}
    )
    head_repeats: int = field(default=15, metadata={"help": "SASRec head repeats (median)"})
    write: bool = field(default=False, metadata={"help": "write RESULTS.md's section"})


def env_kwargs(args: Args) -> dict:
    """The environment arguments of every measurement (``sasrec`` resolved to its matrix)."""
    from agents.sasrec_embeddings import resolve_embedding

    kw = {"dataset": args.dataset, "embedding": args.embedding, "embedding_dim": args.embedding_dim}
    if default_data_dir():
        kw["data_dir"] = default_data_dir()
    return resolve_embedding("MovieRec-v0", kw)


def update_milliseconds(args: Args) -> float:
    """Milliseconds per online fine-tuning update of an anchored ``args.algo``, this process.

    The replay buffer holds the logged transitions and the anchor is attached, as after the
    recipe's offline stages (the weights are untrained: they do not change the time).
    """
    import gymnasium as gym
    import torch
    from stable_baselines3.common.logger import configure

    from agents import make_agent
    from agents.allocator import keep_freed_memory
    from agents.anchor import BCAnchor
    from agents.offline import fill_replay_buffer, logged_transitions
    from agents.threads import single_blas_thread

    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as prepare_anchored does (a no-op with the opt-out variable)
    kw = env_kwargs(args)
    train = gym.make("MovieRec-v0", split="train", **kw).unwrapped
    model = make_agent(args.algo, train, recipe="anchored", seed=0, device="auto")
    with single_blas_thread():
        transitions = logged_transitions(train, progress=False)
    model.set_anchor(BCAnchor(train, transitions, model.device, seed=0))
    fill_replay_buffer(model, transitions)
    model.set_logger(configure(None, []))
    model.train(10, model.batch_size)  # first-call allocations
    start = time.perf_counter()
    model.train(args.updates, model.batch_size)
    return (time.perf_counter() - start) / args.updates * 1000


def _updates_in_fresh_processes(args: Args) -> dict[str, list[float]]:
    """:func:`update_milliseconds` in new processes, kept memory and glibc's default in turn."""
    code = (
        "import json, sys; from benchmarks.recipe_speed import Args, update_milliseconds; "
        "print(json.dumps(update_milliseconds(Args(**json.loads(sys.argv[1])))))"
    )
    fields = {k: getattr(args, k) for k in ("dataset", "embedding", "embedding_dim", "algo",
                                             "threads", "updates")}  # fmt: skip
    times: dict[str, list[float]] = {"kept": [], "glibc": []}
    for _ in range(args.repeats):
        for name, opt_out in (("kept", "1"), ("glibc", "0")):
            env = {**os.environ, "RECGYM_KEEP_FREED_MEMORY": opt_out}
            out = subprocess.run([sys.executable, "-c", code, json.dumps(fields)], env=env,
                                 check=True, capture_output=True, text=True).stdout  # fmt: skip
            times[name].append(json.loads(out.strip().splitlines()[-1]))
    return times


def head_milliseconds(args: Args, n_items: int) -> dict[str, list[float]]:
    """Ms per forward + backward of SASRec's head, chunked (default) and whole, alternating."""
    import torch

    from agents.sasrec import HEAD_CHUNK, full_softmax_cross_entropy

    gen = torch.Generator().manual_seed(0)
    t, d = args.head_targets, args.embedding_dim
    z = torch.randn(t, d, generator=gen, requires_grad=True)
    w = (0.1 * torch.randn(n_items, d, generator=gen)).requires_grad_()
    b = torch.zeros(n_items, requires_grad=True)
    target = torch.randint(0, n_items, (t,), generator=gen)
    times: dict[str, list[float]] = {"chunked": [], "whole": []}
    for i in range(args.head_repeats + 1):  # the first round warms up
        for name, chunk in (("chunked", HEAD_CHUNK), ("whole", t)):
            start = time.perf_counter()
            full_softmax_cross_entropy(z, w, b, target, chunk=chunk).backward()
            if i:
                times[name].append((time.perf_counter() - start) * 1000)
    return times


def main(args: Args) -> str:
    """Run both measurements and report them."""
    import gymnasium as gym
    import torch

    from agents import evaluate, make_agent
    from agents.config import AnchorSettings
    from agents.policies import AgentPolicy
    from agents.recipe import prepare_anchored
    from agents.sasrec import HEAD_CHUNK
    from agents.wolpertinger import WolpertingerPolicy

    torch.set_num_threads(args.threads)
    kw = env_kwargs(args)
    envs = {s: gym.make("MovieRec-v0", split=s, **kw).unwrapped for s in ("train", "val", "test")}
    model = make_agent(args.algo, envs["train"], recipe="anchored", seed=0, device="auto")
    settings = AnchorSettings()
    start = time.perf_counter()
    offline = prepare_anchored(model, envs["train"], envs["val"], settings, progress=False)
    total = time.perf_counter() - start
    secs = offline.seconds
    rows = [
        ["logged transitions (stepped through the env)", f"{offline.transitions:,}",
         f"{secs['transitions']:.1f}"],
        [f"behaviour cloning ({offline.bc.epochs} epochs, val check each)", "",
         f"{secs['bc']:.1f}"],
        ["  per epoch, with its validation check", "", f"{secs['bc'] / offline.bc.epochs:.1f}"],
        [f"critic warm-up ({settings.warmup_steps} steps)", "", f"{secs['warmup']:.1f}"],
        ["actor pre-training: transitions + behaviour cloning", "",
         f"**{secs['transitions'] + secs['bc']:.1f}**"],
        ["all offline stages", "", f"{total:.1f}"],
    ]  # fmt: skip
    test = envs["test"]
    plain, wolp = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        evaluate(AgentPolicy(model), test, progress=False)
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        evaluate(WolpertingerPolicy(model, args.k), test, progress=False)
        wolp.append(time.perf_counter() - start)
    p, w = statistics.median(plain), statistics.median(wolp)
    updates = _updates_in_fresh_processes(args)
    n_items = envs["train"].context.dataset.n_items
    head = head_milliseconds(args, n_items)
    chunked, whole = statistics.median(head["chunked"]), statistics.median(head["whole"])
    kept, glibc = statistics.median(updates["kept"]), statistics.median(updates["glibc"])
    text = "\n".join(
        [
            "## Anchored recipe: offline stages and Wolpertinger evaluation",
            "",
            f"{stamp()}, {machine()}, torch {torch.__version__} ({args.threads} threads). "
            f"{args.dataset}, {args.embedding} embeddings dim {args.embedding_dim}, "
            f"{args.algo}; rerun: `python -m benchmarks.recipe_speed --write`.",
            "",
            md_table(["stage", "transitions", "seconds"], rows),
            "",
            f"Online fine-tuning ({args.algo}, anchored actor loss, batch {model.batch_size}), "
            f"ms per gradient update over {args.updates} updates, median of {args.repeats} "
            f"fresh processes each: **{kept:.1f} ms** with the freed memory kept "
            f"(`agents.allocator`), {glibc:.1f} ms with glibc's thresholds "
            f"(**{glibc / kept:.2f}x**). All: kept {[round(x, 1) for x in updates['kept']]}, "
            f"glibc {[round(x, 1) for x in updates['glibc']]}.",
            "",
            f"Evaluation of the {test.n_episodes} test users, median of {args.repeats}: plain "
            f"decode {p:.2f} s, Wolpertinger at K={args.k} {w:.2f} s: **{w / p:.2f}x** "
            f"(target <= 2x). All times: plain {[round(x, 2) for x in plain]}, Wolpertinger "
            f"{[round(x, 2) for x in wolp]}.",
            "",
            f"SASRec's full-softmax head, forward and backward of {args.head_targets:,} targets "
            f"over {n_items:,} items at dim {args.embedding_dim}, median of "
            f"{args.head_repeats}: **{chunked:.0f} ms** in chunks of {HEAD_CHUNK} rows, "
            f"{whole:.0f} ms on the whole matrix (**{whole / chunked:.2f}x**).",
        ]
    )
    report("recipe_speed", text, args.write)
    return text


if __name__ == "__main__":
    main(parse_args(Args))
