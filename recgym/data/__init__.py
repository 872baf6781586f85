"""Data layer: MovieLens and custom ratings in one compact, time-sorted form, plus splits.

Main entry points:

* :func:`load_movielens` and :func:`load_ratings` return a :class:`Dataset`.
* :func:`split_users` and :func:`temporal_split` return a :class:`Split`.
* :mod:`recgym.data.synthetic` generates MovieLens-format data at any scale.
* :func:`cache_entries` and :func:`clear_cache` list and clear the cache folder.
"""

from recgym.data.cache import CacheEntry, cache_entries, clear_cache
from recgym.data.catalog import MOVIELENS, MovieLensSpec, get_spec
from recgym.data.dataset import Dataset
from recgym.data.fetch import download
from recgym.data.loaders import (
    clear_memory_cache,
    download_movielens,
    find_movielens,
    load_movielens,
    load_ratings,
)
from recgym.data.splits import Episodes, Split, make_split, split_users, temporal_split
from recgym.data.synthetic import generate, synthetic_dataset, write_movielens

__all__ = [
    "MOVIELENS",
    "CacheEntry",
    "Dataset",
    "Episodes",
    "MovieLensSpec",
    "Split",
    "cache_entries",
    "clear_cache",
    "clear_memory_cache",
    "download",
    "download_movielens",
    "find_movielens",
    "generate",
    "get_spec",
    "load_movielens",
    "load_ratings",
    "make_split",
    "split_users",
    "synthetic_dataset",
    "temporal_split",
    "write_movielens",
]
