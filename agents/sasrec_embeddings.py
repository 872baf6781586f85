r"""``embedding="sasrec"``: SASRec's learned item table as the environment's embedding space.

The environment decodes an action ``a`` by ranking the catalogue with ``score(E, a)``
(``metric="dot"``: ``E[j] . a``). With ``E`` the item table of a SASRec model
(:mod:`agents.sasrec`; its output layer is ``logit(j) = z . E[j] + b_j``), decoding a point is
SASRec's own output layer without the item bias: an actor that outputs SASRec's hidden state
``z`` ranks as SASRec does. The observation (the last ``frame_size`` items' rows of ``E``)
then carries what SASRec learned about each item, and every agent, baseline that reads the
embeddings (``embedding-mean``) and critic works in that space.

The model is fitted exactly as the ``sasrec`` baseline is (:func:`agents.sasrec.fit_sasrec`:
full-softmax cross-entropy on the TRAIN split's sequences, early-stopped on VALIDATION users,
seeded), with ``dim = embedding_dim`` (default :data:`DEFAULT_EMBEDDING_DIM`) and seed
``embedding_seed``. Test users are never read. Rows are scaled by one constant so that the
longest has norm 1 (a dot-product ranking is unchanged by it, and observations stay within
[-1, 1]); the norms are kept, not made 1, since a row's length is part of its score. Items no
train user rated keep their small random initial rows (norm about ``0.02 sqrt(d)`` before the
scaling), so the decoder ranks them low but not last.

Measured on ml-latest-small (user split, seed 0, one behaviour-cloning run of the anchored
recipe's actor per space, NDCG@10 on validation / test users; one-off runs of
``benchmarks/_scratch``, not part of the repository): the 32-d ``implicit`` space 0.0421 / 0.044;
SASRec's table at 32 dimensions 0.0534 / 0.0678 (fit 3.3 min on the 2-core CPU), at 64
0.0536 / 0.0706 (4.8 min); rows scaled to norm 1 instead of keeping their lengths 0.0511 /
0.0604 (64-d); the item bias as a 65th column 0.0515 / 0.0628; a fit stopped after 8 epochs
(32-d) 0.0414 / 0.0657. Hence the defaults: 32 dimensions (the environment's default width,
and validation cannot tell 64 apart), lengths kept, no bias column, the baseline's full fit.

:func:`resolve_embedding` turns ``{"embedding": "sasrec", ...}`` environment arguments into the
matrix (the environment itself, which never imports torch, accepts any ``(n_items, dim)``
matrix); :func:`agents.factory.make_env`, :meth:`agents.config.RunConfig.make_eval_env` and the
benchmarks call it, so run configurations, ``recgym train`` and ``benchmarks.quality`` take
``embedding: sasrec`` like any other method. The table is cached on disk (atomically) per
dataset content (:attr:`recgym.data.Dataset.content_digest`: the same ratings copied or
downloaded again keep their table), split, frame size, dimension, seed, device type, model
settings and torch version; a cached table is read back in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from recgym.data.paths import cache_dir, safe_name
from recgym.embeddings import read_cached, write_cached
from recgym.envs import MovieRecEnv
from recgym.envs.context import AGENTS_EMBEDDING, DEFAULT_EMBEDDING_DIM
from recgym.errors import check_int

if TYPE_CHECKING:
    from agents.sasrec import SASRecConfig

log = logging.getLogger("agents")  # what a run did (the CLI prints it)

#: The ``embedding`` name this module provides.
SASREC_EMBEDDING = AGENTS_EMBEDDING  # the name recgym's own error points to


def sasrec_item_embeddings(
    env: MovieRecEnv,
    dim: int = DEFAULT_EMBEDDING_DIM,
    seed: int = 0,
    *,
    device: str = "auto",
    config: SASRecConfig | None = None,
    progress: bool | None = None,
    cache: bool = True,
) -> np.ndarray:
    """SASRec's item table fitted on ``env``'s train split, scaled to a longest row of norm 1.

    Args:
        env: Any environment of the dataset and split (only its data, split and
            ``frame_size`` are read: they fix the train sequences and the validation users).
        dim: Width of the table (SASRec's ``dim``).
        seed: Seed of the fit.
        device: Where to fit (``"auto"``: CUDA when torch sees one). CPU and CUDA fits differ
            in their last digits, so the cache keeps them apart.
        config: The model's other settings (default :class:`agents.sasrec.SASRecConfig`, the
            ``sasrec`` baseline's); its ``dim`` and ``device`` are replaced by the arguments.
        progress: Show a progress bar over epochs (``None``: only on a terminal).
        cache: Read and write the on-disk cache.

    Returns:
        ``(n_items, dim)`` float32 matrix whose longest row has norm 1.

    Raises:
        ConfigError: For a bad ``dim`` or ``seed``.
    """
    from agents.sasrec import SASRecConfig, _device, fit_sasrec

    env = getattr(env, "unwrapped", env)
    check_int("embedding_dim", dim, 1)
    check_int("embedding_seed", seed, 0)
    config = replace(config or SASRecConfig(), dim=dim, device=device)
    ctx = env.context
    key = _cache_key(env, config, seed, _device(device).type)
    name = f"{safe_name(ctx.dataset.name)}-sasrec-{dim}-{key}.npy"
    file = cache_dir() / "embeddings" / name if cache and key else None
    emb = read_cached(file, (ctx.dataset.n_items, dim))
    if emb is not None:
        return emb
    log.info(
        "item space: fitting a %d-d SASRec table on %s (train users; cached)",
        dim,
        ctx.dataset.name,
    )
    start = time.perf_counter()
    policy = fit_sasrec(env, config, seed=seed, progress=progress)
    log.info(
        "item space: fitted in %.0f s (best validation epoch %d)",
        time.perf_counter() - start,
        policy.meta["best_epoch"],
    )
    table = policy.net.item_emb.weight[1:].detach().float().cpu().numpy().astype(np.float64)
    longest = float(np.linalg.norm(table, axis=1).max())
    emb = (table / (longest if longest > 0 else 1.0)).astype(np.float32)
    write_cached(file, emb)
    return emb


def _cache_key(env: MovieRecEnv, config: Any, seed: int, device_type: str) -> str | None:
    split_key = env.context.split.key
    if split_key is None:
        return None
    import torch

    parts = [env.context.dataset.content_digest, split_key, env.frame_size, seed, device_type,
             asdict(config) | {"device": None}, torch.__version__]  # fmt: skip
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def resolve_embedding(
    env_id: str, env_kwargs: dict[str, Any], progress: bool | None = None
) -> dict[str, Any]:
    """Environment arguments with ``embedding="sasrec"`` replaced by the fitted matrix.

    Other arguments pass through unchanged (a copy is returned).

    Args:
        env_id: The registered id the arguments are for.
        env_kwargs: Arguments to ``gym.make`` (``embedding_dim`` is the table's width,
            default :data:`DEFAULT_EMBEDDING_DIM`; ``embedding_seed`` its seed, default 0).
        progress: Show the fit's progress bar (``None``: only on a terminal).

    Returns:
        The arguments, with ``embedding`` an ``(n_items, dim)`` matrix and ``embedding_dim``
        its width when ``embedding`` was ``"sasrec"``.
    """
    kwargs = dict(env_kwargs)
    if not is_sasrec(kwargs):
        return kwargs
    import gymnasium as gym

    dim = kwargs.get("embedding_dim") or DEFAULT_EMBEDDING_DIM
    seed = kwargs.get("embedding_seed", 0)
    # a cheap stand-in space: the fit reads only the data, the split and the frame size
    scaffold = {**kwargs, "embedding": "random", "embedding_dim": 2, "split": "train"}
    scaffold.pop("render_mode", None)
    env = gym.make(env_id, **scaffold).unwrapped
    kwargs["embedding"] = sasrec_item_embeddings(env, dim, seed, progress=progress)
    kwargs["embedding_dim"] = dim
    return kwargs


def is_sasrec(env_kwargs: dict[str, Any]) -> bool:
    """Whether ``env_kwargs`` ask for the SASRec space."""
    value = env_kwargs.get("embedding")
    return isinstance(value, str) and value == SASREC_EMBEDDING


__all__ = [
    "SASREC_EMBEDDING",
    "is_sasrec",
    "resolve_embedding",
    "sasrec_item_embeddings",
]
