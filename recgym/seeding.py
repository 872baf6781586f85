"""Randomness helpers: every recgym library function takes ``rng: int | Generator | None``."""

from __future__ import annotations

import numpy as np

RNGLike = int | np.random.Generator | None


def as_generator(rng: RNGLike) -> np.random.Generator:
    """Return a NumPy generator for a seed, a generator (returned as is) or ``None`` (fresh).

    Args:
        rng: Seed, generator or ``None``.

    Returns:
        A :class:`numpy.random.Generator`.

    Raises:
        TypeError: For anything else.

    Examples:
        >>> int(as_generator(3).integers(100)) == int(as_generator(3).integers(100))
        True
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be an int, a numpy Generator or None; got {type(rng).__name__}.")


def seed_key(rng: RNGLike) -> str | None:
    """A cache-key fragment for ``rng``: the seed for an int, ``None`` (uncacheable) otherwise."""
    return str(int(rng)) if isinstance(rng, (int, np.integer)) else None
