"""Keep NumPy's BLAS threads out of torch's way while agents train or evaluate.

An agent step interleaves the environment's NumPy decode (OpenBLAS threads) with torch's
networks (OpenMP threads). Both pools spin-wait on the same cores between calls, and on a
2-core machine a TD3 transition took 30.7 ms instead of 9.0 ms (measured, 4 environments).
Inside :func:`single_blas_thread` NumPy's BLAS uses one thread; outside, nothing changes.
:func:`agents.run.train` holds it around the whole training run (9 ms per transition),
:class:`agents.sb3_env.RecVecEnv` around each step for code that calls ``model.learn`` directly
(11 ms: switching the pool back and forth costs a little), and evaluation around the replay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

_CONTROLLER = None


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
