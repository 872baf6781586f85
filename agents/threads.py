"""Keep NumPy's BLAS threads and torch's threads out of each other's way.

An agent step interleaves the environment's NumPy decode (OpenBLAS threads) with torch's
networks (OpenMP threads). Both pools spin-wait on the same cores between calls, and on a
2-core machine a TD3 transition took 30.7 ms instead of 9.0 ms (measured, 4 environments).
Inside :func:`single_blas_thread` NumPy's BLAS uses one thread; outside, nothing changes.
:func:`agents.run.train` holds it around the whole training run (9 ms per transition),
:class:`agents.sb3_env.RecVecEnv` around each step for code that calls ``model.learn`` directly
(11 ms: switching the pool back and forth costs a little), and evaluation around the replay.

Evaluation also runs torch on one thread (:func:`single_torch_thread`): a policy predicts one
small observation at a time, and a multi-threaded forward pass of a 256-256 MLP is slower
than a single-threaded one (``predict`` took 11 ms with two threads and 0.12 ms with one on
a busy 2-core machine). One large batched pass inside it, such as Wolpertinger's critic over
every candidate of every user, can take back the threads from before the outermost block
(:func:`outer_torch_threads`): at 61 users and 100 candidates each, two threads scored them in
6.9 ms against 14.7 ms on one (``python -m benchmarks.recipe_speed`` times the whole
evaluation).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

_CONTROLLER = None
_OUTER_TORCH_THREADS: int | None = None  # torch's threads outside the outermost single block


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Limit NumPy's BLAS to one thread inside the block (a no-op without threadpoolctl)."""
    global _CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with the agents extra
        yield
        return
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()  # inspecting the libraries is the slow part
    with _CONTROLLER.limit(limits=1, user_api="blas"):
        yield


@contextlib.contextmanager
def single_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block; restore the previous count after.

    Does nothing (and imports nothing) when torch has not been imported.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    global _OUTER_TORCH_THREADS
    before = torch.get_num_threads()
    outermost = _OUTER_TORCH_THREADS is None
    if outermost:
        _OUTER_TORCH_THREADS = before
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if outermost:
            _OUTER_TORCH_THREADS = None


@contextlib.contextmanager
def outer_torch_threads() -> Iterator[None]:
    """Inside :func:`single_torch_thread`: torch's thread count from before its outermost block.

    For one pass large enough to split across threads. Outside any such block, and without
    torch imported, it does nothing; the count inside it is restored after.
    """
    torch = sys.modules.get("torch")
    if torch is None or _OUTER_TORCH_THREADS is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(_OUTER_TORCH_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def evaluation_threads() -> Iterator[None]:
    """One BLAS thread and one torch thread: what replaying users one step at a time needs."""
    with single_blas_thread(), single_torch_thread():
        yield
