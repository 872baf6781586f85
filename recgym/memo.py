"""A small in-memory cache: the last few datasets and environment contexts built.

Building a dataset or an environment's shared data takes seconds, so the loaders
(:mod:`recgym.data.loaders`) and :func:`recgym.envs.build_context` keep the most recently
used ones in a :class:`Memo` (least recently used first out). Not thread-safe: two threads
asking for the same missing key both build it, and the later one is kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Memo(Generic[V]):
    """The ``size`` most recently used values, by key.

    Args:
        size: How many values to keep (at least 1).

    Raises:
        ValueError: For a ``size`` below 1.

    Examples:
        >>> memo = Memo(2)
        >>> memo.get_or_build("a", lambda: 1), memo.get_or_build("b", lambda: 2)
        (1, 2)
        >>> memo.get_or_build("a", lambda: 99)  # kept: not built again
        1
        >>> memo.get_or_build("c", lambda: 3)  # "b" is now the least recently used: dropped
        3
        >>> sorted(memo.keys())
        ['a', 'c']
    """

    def __init__(self, size: int) -> None:
        """Start empty."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"Memo size={size!r} must be an integer of at least 1.")
        self.size = size
        self._values: OrderedDict[Hashable, V] = OrderedDict()

    def get_or_build(self, key: Hashable, build: Callable[[], V]) -> V:
        """The value kept for ``key``, else ``build()``, kept (dropping the oldest if full).

        If ``build`` raises, nothing is kept and the error propagates.
        """
        if key in self._values:
            self._values.move_to_end(key)
            return self._values[key]
        value = build()
        self._values[key] = value
        while len(self._values) > self.size:
            self._values.popitem(last=False)
        return value

    def keys(self) -> list[Hashable]:
        """The keys held, least recently used first."""
        return list(self._values)

    def clear(self) -> None:
        """Forget every value."""
        self._values.clear()

    def __len__(self) -> int:
        """How many values are held."""
        return len(self._values)
