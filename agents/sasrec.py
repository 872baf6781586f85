r"""SASRec and GRU4Rec: next-item models with their own item embeddings, a full-softmax baseline.

The strongest supervised baseline of recgym: a sequence model that reads a user's consumed items
and scores every item of the catalogue as the next one. It ignores the environment's embedding
and action space (it ranks items itself, like ``itemknn``), so it shows what a plain supervised
recommender reaches under the same evaluation protocol as the RL agents.

**Architecture** (``arch="sasrec"``, Kang & McAuley 2018, "Self-Attentive Sequential
Recommendation", pre-LayerNorm blocks). For the ``T <= max_len`` consumed items of the model's
window ``i_1..i_T`` (oldest first) with ratings ``r_t`` scaled to [-1, 1]::

    x_t = sqrt(d) E[i_t] + P[t] (+ r_t w, with use_ratings)      # E: (n_items, d), P: (max_len, d)
    h^0 = Dropout(x)
    a   = h^{l-1} + Dropout(MultiHeadAttention(LN(h^{l-1})), causal: t attends to 1..t)
    h^l = a + Dropout(W_2 ReLU(W_1 LN(a) + b_1) + b_2)           # l = 1..n_blocks, W: d x d
    z_t = LN(h^L_t)
    logit_t(j) = z_t . E[j] + b_j                                # shared input/output embeddings

Positions count from the first item of the window (``P[0]`` is the oldest item shown to the
model), so a history shorter than ``max_len`` sits at the same positions as a training prefix.
``arch="gru"`` (GRU4Rec, Hidasi et al. 2016, with the same inputs and loss) replaces ``P`` and
the attention blocks with an ``n_blocks``-layer GRU of width ``d`` over ``x``.

**Training**: full-softmax cross-entropy over the whole catalogue (no sampled negatives), every
position of every sequence a target::

    L = - mean_{u, t} log softmax(logit_t)[i_{t+1}]

over the TRAIN split's interaction sequences only (``split.train_mask``: for the user split the
train users' logs, for the temporal split every user's interactions before ``t_val``; no val or
test interaction is ever a training input or target). Each epoch cuts every sequence into
windows of ``max_len`` inputs at a random offset (seeded), so each target is used once per
epoch with a varying amount of context. Adam, learning rate ``lr``.

**Early stopping** on VALIDATION users (the split's val episodes): after each epoch a batched
offline scorer replays their logs without the policy in the loop. For every logged item ``t``
of a val episode, the model reads the items before ``t`` in its window (:func:`window_start`:
all of them while they fit in ``max_len``, else the most recent ``max_len / 2`` to
``max_len``), every item the user consumed before ``t`` is excluded, and the top 10 are
compared with the user's actual next items (all items of ``t``'s second, as in the
environment): NDCG@10 per step, averaged per user, then over users. Training stops after
``patience`` epochs without a better validation NDCG@10 and keeps the best epoch's weights.
:func:`agents.evaluate.evaluate` on the val environment ranks models in the same order (it also
masks items already shown and consumes hits out of log order, so its numbers are lower).

**Policy**: :class:`SASRecPolicy` scores the catalogue from ``env.history()`` (the items of
the same window) and returns ``env.recommend_from_scores``. The window moves in steps of
``max_len / 2``, so between moves only the newly consumed items go through the network, on
cached keys and values (or the GRU state): one short forward pass per step. A fitted model is
cached in memory per (dataset fingerprint, split, val frame size, seed, configuration), so
benchmarks that evaluate it several times train it once, and it saves to and loads from a
file (:meth:`SASRecPolicy.save`, :meth:`SASRecPolicy.load`).

Example:
    >>> from recgym.envs import MovieRecEnv
    >>> from agents.sasrec import SASRecConfig, fit_sasrec
    >>> from recgym.data import synthetic_dataset
    >>> data = synthetic_dataset(n_users=60, n_items=200, n_ratings=3000)
    >>> env = MovieRecEnv(dataset=data, split="test", embedding_dim=8)
    >>> policy = fit_sasrec(env, SASRecConfig(dim=16, max_len=20, max_epochs=1, device="cpu"))
    >>> slate = policy.recommend(env, env.reset(seed=0)[0])
    >>> len(slate), policy.name
    (10, 'sasrec')
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from agents.allocator import keep_freed_memory
from agents.policies import Policy
from agents.threads import single_torch_thread
from recgym.data import Dataset, Split
from recgym.envs import MovieRecEnv
from recgym.errors import ConfigError, RecgymWarning, check_choice, check_int
from recgym.files import atomic_write
from recgym.progress import tqdm_disable

ARCHS = ("sasrec", "gru")
FORMAT_VERSION = 1
_CACHE: OrderedDict[tuple, SASRecPolicy] = OrderedDict()
_CACHE_SIZE = 8


# ============================================================================ configuration
@dataclass(frozen=True)
class SASRecConfig:
    """Hyperparameters of :func:`fit_sasrec` (validated on construction).

    Defaults, chosen on the 61 VALIDATION users of ml-latest-small (user split; NDCG@10 of
    :func:`agents.evaluate.evaluate`, one or two seeds, so differences under ~0.005 are noise;
    every run in ``benchmarks/results/ml-latest-small/user/sasrec.md``):

    ===========  ========  ========================================================================
    setting      value     reason
    ===========  ========  ========================================================================
    arch         sasrec    0.0489 (mean of 2 seeds) against 0.0478 for ``gru`` with the same
                           settings; offline scorer 0.084-0.088 against 0.081
    dim          64        the low end of SASRec's range: the full-softmax head costs
                           ``targets x n_items x dim`` and dominates training time
    n_blocks     2         SASRec's setting (one head)
    max_len      200       0.0505 against 0.0426 with 50
    dropout      0.3       without ratings: 0.0419 (0.3), 0.0401 (0.2), 0.0406 (0.4); with
                           ratings 0.5 gave 0.0395, still under-trained after 20 epochs
    use_ratings  True      0.0505 and 0.0472 (seeds 0, 1) against 0.0419 and 0.0398
    lr           3e-3      best validation epoch 8-13 instead of 15 at 1e-3, for as good a model
                           (0.0401 against 0.0414, dropout 0.2, within noise)
    batch_size   16        windows (about 1,500 targets) per step: 57 Adam steps per epoch
    max_epochs   20        the best epochs were 8-13; with ``patience`` 3 training takes 11-16
    ===========  ========  ========================================================================

    Attributes:
        arch: ``"sasrec"`` (causal self-attention) or ``"gru"`` (GRU4Rec-style).
        dim: Width ``d`` of the item embeddings and of the model.
        n_blocks: Attention blocks (``sasrec``) or GRU layers (``gru``).
        n_heads: Attention heads; must divide ``dim`` (``sasrec`` only).
        max_len: Longest window of recent items the model reads (:func:`window_start`), and
            the length of the training windows.
        dropout: Dropout rate on the inputs, attention weights, and block outputs, in [0, 1).
        use_ratings: Add ``r_t w`` (scaled rating times a learned vector) to each input.
        lr: Adam learning rate.
        weight_decay: Adam's L2 weight decay.
        batch_size: Training windows per gradient step.
        max_epochs: Most passes over the training sequences.
        patience: Epochs without a better validation NDCG@10 before stopping.
        device: ``"auto"`` (CUDA when torch sees a GPU), ``"cpu"``, ``"cuda"``, ...
    """

    arch: str = "sasrec"
    dim: int = 64
    n_blocks: int = 2
    n_heads: int = 1
    max_len: int = 200
    dropout: float = 0.3
    use_ratings: bool = True
    lr: float = 3e-3
    weight_decay: float = 0.0
    batch_size: int = 16
    max_epochs: int = 20
    patience: int = 3
    device: str = "auto"

    def __post_init__(self) -> None:
        """Check every value; raise :class:`ConfigError` naming the bad one."""
        check_choice("arch", self.arch, ARCHS)
        for name in ("dim", "n_blocks", "n_heads", "max_len", "batch_size", "max_epochs"):
            check_int(name, getattr(self, name), 1)
        check_int("patience", self.patience, 0)
        if self.arch == "sasrec" and self.dim % self.n_heads:
            raise ConfigError(
                f"n_heads={self.n_heads} does not divide dim={self.dim}; pick a dim that is a "
                f"multiple of n_heads (e.g. dim={self.n_heads * max(1, self.dim // self.n_heads)})."
            )
        _check_float("dropout", self.dropout, 0.0, 1.0, high_open=True)
        _check_float("lr", self.lr, 0.0, math.inf, low_open=True)
        _check_float("weight_decay", self.weight_decay, 0.0, math.inf)
        if not isinstance(self.use_ratings, (bool, np.bool_)):
            raise ConfigError(f"use_ratings={self.use_ratings!r} must be True or False.")
        if not isinstance(self.device, str):
            raise ConfigError(f"device={self.device!r} must be a string ('auto', 'cpu', 'cuda').")

    @classmethod
    def from_options(cls, **options: Any) -> SASRecConfig:
        """Build a configuration from keyword options, refusing unknown names.

        Raises:
            ConfigError: Naming an unknown option and listing the known ones.
        """
        known = [f.name for f in fields(cls)]
        unknown = [k for k in options if k not in known]
        if unknown:
            from recgym.errors import suggest

            raise ConfigError(
                f"Unknown sasrec option(s) {unknown}; known: {known}." + suggest(unknown[0], known)
            )
        return cls(**options)


def _check_float(
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > low if low_open else v >= low)
        ok = ok and (v < high if high_open else v <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ConfigError(f"{name}={value!r} must be a number in {lo}{low}, {high}{hi}.")


# ============================================================================ data
@dataclass(frozen=True)
class Sequences:
    """Interaction sequences in CSR form, each oldest first.

    Attributes:
        indptr: Offsets of each sequence in the flat arrays (``(n_sequences + 1,)``).
        items: Item index of each element (int64).
        ratings: Its rating scaled to [-1, 1] (float32).
        flat: Its index in the dataset's flat interaction arrays (int64), to check what a
            sequence was built from.
        users: User index of each sequence (int64).
    """

    indptr: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    flat: np.ndarray
    users: np.ndarray

    def __len__(self) -> int:
        """Number of sequences."""
        return len(self.users)


def train_sequences(dataset: Dataset, split: Split) -> Sequences:
    """Every user's TRAIN interactions (``split.train_mask``), in time order, as sequences.

    Users with fewer than two train interactions give no next-item target and are left out.

    Args:
        dataset: The dataset the split was made from.
        split: The split; only its ``train_mask`` is read.

    Returns:
        The sequences; ``flat`` holds only train-masked interaction indices.

    Raises:
        ConfigError: If the mask does not fit the dataset or selects fewer than two
            interactions of any user.
    """
    mask = np.asarray(split.train_mask)
    if mask.shape != (dataset.n_ratings,) or mask.dtype != bool:
        raise ConfigError(
            f"split.train_mask has shape {mask.shape} and dtype {mask.dtype}; expected a bool "
            f"mask of ({dataset.n_ratings},), one per rating of {dataset.name}."
        )
    flat = np.flatnonzero(mask)
    users = dataset.interaction_users[flat]
    counts = np.bincount(users, minlength=dataset.n_users)
    keep = counts[users] >= 2
    flat, users = flat[keep], users[keep]
    seq_users = np.flatnonzero(counts >= 2)
    if not len(seq_users):
        raise ConfigError(
            f"The train split of {dataset.name} has no user with two or more train "
            "interactions: there is nothing to learn a next item from."
        )
    indptr = np.concatenate([[0], np.cumsum(counts[seq_users])]).astype(np.int64)
    return Sequences(
        indptr=indptr,
        items=dataset.items[flat].astype(np.int64),
        ratings=dataset.scale_ratings(dataset.ratings[flat]),
        flat=flat.astype(np.int64),
        users=seq_users.astype(np.int64),
    )


def epoch_windows(indptr: np.ndarray, max_len: int, rng: np.random.Generator) -> np.ndarray:
    """Cut each sequence into training windows at a random offset.

    A sequence of ``L`` items has targets at positions ``1..L-1``. With an offset ``o`` drawn
    uniformly from ``[0, max_len)``, its windows start at ``0, o, o + max_len, ...``; a
    window's inputs are the flat range ``[a, b)`` (``b - a <= max_len``) and its targets
    ``[a + 1, b + 1)``, so every target appears in exactly one window.

    Args:
        indptr: Sequence offsets.
        max_len: Longest window.
        rng: Generator of the offsets.

    Returns:
        ``(n_windows, 2)`` int64 flat ``[a, b)`` input ranges.
    """
    out = []
    offsets = rng.integers(0, max_len, size=len(indptr) - 1)
    for s, e, o in zip(indptr[:-1].tolist(), indptr[1:].tolist(), offsets.tolist(), strict=True):
        last = e - 1  # inputs end before the last item, which is only a target
        if last > s:
            cuts = sorted({s, *range(s + o, last, max_len)})
            out += zip(cuts, [*cuts[1:], last], strict=True)
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def _batch(
    items: torch.Tensor, ratings: torch.Tensor, windows: np.ndarray, with_targets: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Right-padded ``(B, T)`` inputs (item + 1, 0 = padding), ratings and targets (-100 = pad)."""
    device = items.device
    w = torch.as_tensor(windows, device=device)
    a, b = w[:, 0], w[:, 1]
    length = int((b - a).max())
    idx = a[:, None] + torch.arange(length, device=device)
    valid = idx < b[:, None]
    safe = torch.where(valid, idx, torch.zeros_like(idx))
    inp = torch.where(valid, items[safe] + 1, torch.zeros_like(idx))
    rat = torch.where(valid, ratings[safe], torch.zeros((), device=device))
    tgt = None
    if with_targets:
        tgt = torch.where(valid, items[safe + 1], torch.full_like(idx, -100))
    return inp, rat, tgt


# ============================================================================ network
class _Block(nn.Module):
    """Pre-LN transformer block: causal self-attention, then a position-wise feed-forward.

    ``forward`` takes the block's input for new positions and, optionally, the keys and values
    of the positions before them (``past``), so inference can extend a sequence without
    recomputing it.
    """

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.p_attn = n_heads, dropout
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )
        self.drop = nn.Dropout(dropout)
        nn.init.xavier_uniform_(self.qkv.weight)  # as torch's MultiheadAttention
        nn.init.zeros_(self.qkv.bias)
        nn.init.zeros_(self.out.bias)

    def forward(
        self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``(B, T, d)`` outputs of ``T`` new positions, and the keys/values of all positions."""
        b, t, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        p_drop = self.p_attn if self.training else 0.0
        n_past = k.shape[2] - t
        if n_past == 0:
            a = F.scaled_dot_product_attention(q, k, v, dropout_p=p_drop, is_causal=True)
        else:  # new position j sees every past position and new positions up to j
            allowed = torch.arange(k.shape[2], device=x.device) <= (
                torch.arange(t, device=x.device)[:, None] + n_past
            )
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p_drop)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.ff(self.ln2(x))), (k, v)


class SASRecNet(nn.Module):
    """The network of the module docstring (``arch`` ``"sasrec"`` or ``"gru"``).

    Args:
        n_items: Catalogue size.
        config: Hyperparameters (``arch``, ``dim``, ``n_blocks``, ``n_heads``, ``max_len``,
            ``dropout``, ``use_ratings`` are read).
    """

    def __init__(self, n_items: int, config: SASRecConfig) -> None:
        """Build the layers; item and position embeddings start at N(0, 0.02^2)."""
        super().__init__()
        d = config.dim
        self.arch, self.dim, self.max_len = config.arch, d, config.max_len
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)  # row 0: padding
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.rating_vec = nn.Parameter(torch.zeros(d)) if config.use_ratings else None
        self.drop = nn.Dropout(config.dropout)
        if config.arch == "sasrec":
            self.pos_emb = nn.Embedding(config.max_len, d)
            self.blocks = nn.ModuleList(
                _Block(d, config.n_heads, config.dropout) for _ in range(config.n_blocks)
            )
            nn.init.normal_(self.pos_emb.weight, std=0.02)
        else:
            self.gru = nn.GRU(d, d, num_layers=config.n_blocks, batch_first=True,
                              dropout=config.dropout if config.n_blocks > 1 else 0.0)  # fmt: skip
        self.norm = nn.LayerNorm(d)
        nn.init.normal_(self.item_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def encode(
        self, items: torch.Tensor, ratings: torch.Tensor, past: Any = None
    ) -> tuple[torch.Tensor, Any]:
        """Hidden states ``z_t`` of right-padded inputs (item + 1, 0 = pad), and the state.

        Causal: ``z_t`` depends on inputs ``1..t`` only, so right padding never reaches a real
        position and needs no mask.

        Args:
            items: ``(B, T)`` item indices + 1 (0: padding).
            ratings: ``(B, T)`` scaled ratings.
            past: The state returned by an earlier call on the same sequence's beginning
                (``None``: the sequence starts here). The inputs then continue it.

        Returns:
            ``z``: ``(B, T, d)``; the state after the last position (per block keys and
            values for ``sasrec``, the hidden state for ``gru``).
        """
        x = self.item_emb(items) * math.sqrt(self.dim)
        if self.rating_vec is not None:
            x = x + ratings[..., None] * self.rating_vec
        length = items.shape[1]
        if self.arch == "sasrec":
            start = 0 if past is None else past[0][0].shape[2]
            x = self.drop(x + self.pos_emb.weight[start : start + length])
            state = []
            for i, block in enumerate(self.blocks):
                x, kv = block(x, None if past is None else past[i])
                state.append(kv)
        else:
            x, state = self.gru(self.drop(x), past)
        return self.norm(x), state

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Scores of every item, ``z . E[j] + b_j`` (``(..., n_items)``)."""
        return z @ self.item_emb.weight[1:].T + self.item_bias


#: Rows of the full-softmax head processed together: :func:`full_softmax_cross_entropy`.
HEAD_CHUNK = 128


class _FullSoftmaxCE(torch.autograd.Function):
    """Mean cross-entropy of ``z W^T + b`` against ``target``, gradients taken in the forward."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                target: torch.Tensor, chunk: int) -> torch.Tensor:  # fmt: skip
        need_grad = any(ctx.needs_input_grad[:3])
        grads = (torch.empty_like(z), torch.zeros_like(weight), torch.zeros_like(bias))
        total = z.new_zeros(())
        for r0 in range(0, len(target), chunk):
            zc, tc = z[r0 : r0 + chunk], target[r0 : r0 + chunk]
            logits = torch.addmm(bias, zc, weight.T)
            lse = torch.logsumexp(logits, dim=1)
            total += (lse - logits.gather(1, tc[:, None])[:, 0]).sum()
            if need_grad:  # d(sum of the chunk's losses)/d(logits) = softmax - onehot
                p = logits.sub_(lse[:, None]).exp_()
                p[torch.arange(len(tc), device=p.device), tc] -= 1.0
                grads[0][r0 : r0 + chunk] = p @ weight
                grads[1].addmm_(p.T, zc)
                grads[2].add_(p.sum(0))
        ctx.save_for_backward(*grads)
        ctx.n = len(target)
        return total / len(target)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        scale = grad / ctx.n
        return *(g * scale for g in ctx.saved_tensors), None, None


def full_softmax_cross_entropy(
    z: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    target: torch.Tensor,
    chunk: int | None = None,
) -> torch.Tensor:
    """``mean_t [logsumexp_j (z_t . W_j + b_j) - (z_t . W_{y_t} + b_{y_t})]`` over every item.

    Equal to ``F.cross_entropy(z @ W.T + b, target)``, computed ``chunk`` rows at a time: each
    chunk's logits become ``softmax - onehot`` in place and give the chunk's gradients at once,
    so the ``(T, n_items)`` logits never exist in full and stay in the CPU's cache. The
    gradients are kept for the backward pass, which only scales them. On the 2-core CPU, 1,500
    targets and 9,742 items at dim 32 (a SASRec training step): 82 ms against 102 ms with one
    chunk of every row (``python -m benchmarks.recipe_speed``); in a one-off run against the
    previous version (git ``21eac77``), which kept the whole logits matrix for its backward
    pass, 85 ms against 126 ms.

    Args:
        z: ``(T, d)`` hidden states.
        weight: ``(n_items, d)`` output item embeddings.
        bias: ``(n_items,)`` item biases.
        target: ``(T,)`` item indices.
        chunk: Rows per chunk (>= 1). ``None``: :data:`HEAD_CHUNK` on the CPU (cache-sized),
            every row at once on a GPU (fewer kernel launches; not measured).
    """
    if chunk is None:
        chunk = HEAD_CHUNK if z.device.type == "cpu" else max(len(target), 1)
    check_int("chunk", chunk, 1)
    return _FullSoftmaxCE.apply(z, weight, bias, target, chunk)


# ============================================================================ validation
class NextItemScorer:
    """Batched offline NDCG@10 / HR@10 of next-item prediction on a split's episodes.

    See the module docstring ("Early stopping"). Built once; each call scores a network.

    Args:
        dataset: The dataset.
        split: The split.
        name: Which split's episodes (``"val"`` for early stopping).
        frame_size: The environment's frame size (decides which users have episodes).
        max_len: The model's window.
        k: Cut-off of the metrics.
    """

    def __init__(
        self,
        dataset: Dataset,
        split: Split,
        name: str,
        frame_size: int,
        max_len: int,
        k: int = 10,
    ) -> None:
        """Lay out the windows, target rows and relevant sets."""
        ep = split.episodes(dataset, name, frame_size)
        self.k, self.n_items = k, dataset.n_items
        self.n_episodes = len(ep)
        self.items = dataset.items.astype(np.int64)
        self.ratings = dataset.scale_ratings(dataset.ratings)
        group_end = _same_second_group_end(dataset)
        stride = max(1, max_len // 2)
        windows, rows = [], []  # rows: (window, position in window, episode, flat target)
        for e, (u, fs, end) in enumerate(
            zip(ep.users.tolist(), ep.future_start.tolist(), ep.end.tolist(), strict=True)
        ):
            start = int(dataset.indptr[u])
            p = np.arange(fs, end) - start  # target positions within the user's log (>= 1)
            a = np.where(p <= max_len, 0, -((max_len - p) // stride) * stride)
            for a0 in np.unique(a).tolist():
                sel = p[a == a0]
                w = len(windows)
                windows.append((start + a0, start + int(sel.max())))
                for q in sel.tolist():
                    rows.append((w, q - a0 - 1, e, start + q))
        self.windows = np.asarray(windows, dtype=np.int64).reshape(-1, 2)
        r = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
        self.row_window, self.row_pos, self.row_episode, self.row_flat = r.T
        self.row_start = dataset.indptr[ep.users[self.row_episode]] if len(r) else r[:, 0]
        self.row_group_end = group_end[self.row_flat] if len(r) else r[:, 0]
        self.ep_start = dataset.indptr[ep.users]
        self.ep_end = ep.end

    def __len__(self) -> int:
        """Number of scored steps."""
        return len(self.row_flat)

    @torch.inference_mode()
    def __call__(self, net: SASRecNet, batch_size: int = 64, chunk: int = 512) -> dict[str, float]:
        """Mean over episodes of the per-step NDCG@k and HR@k of ``net`` (NaN without steps)."""
        if not len(self):
            return {"ndcg": math.nan, "hr": math.nan}
        was_training = net.training
        net.eval()
        device = next(net.parameters()).device
        items = torch.as_tensor(self.items, device=device)
        ratings = torch.as_tensor(self.ratings, device=device)
        z = torch.empty(len(self), net.dim, device=device)
        # hidden state of every target row, window batch by window batch
        order = np.argsort(self.row_window, kind="stable")
        bounds = np.searchsorted(self.row_window[order], np.arange(len(self.windows) + 1))
        for w0 in range(0, len(self.windows), batch_size):
            w1 = min(w0 + batch_size, len(self.windows))
            inp, rat, _ = _batch(items, ratings, self.windows[w0:w1], with_targets=False)
            h, _ = net.encode(inp, rat)
            sel = order[bounds[w0] : bounds[w1]]
            wi = torch.as_tensor(self.row_window[sel] - w0, device=device)
            pi = torch.as_tensor(self.row_pos[sel], device=device)
            z[torch.as_tensor(sel, device=device)] = h[wi, pi]
        ndcg = np.empty(len(self))
        hit = np.empty(len(self))
        disc = 1.0 / np.log2(np.arange(2, self.k + 2))
        for r0 in range(0, len(self), chunk):
            r1 = min(r0 + chunk, len(self))
            scores = net.logits(z[r0:r1])
            scores[self._consumed_mask(r0, r1, device)] = -math.inf
            top = torch.topk(scores, self.k, dim=1).indices.cpu().numpy()
            gains, n_rel = self._gains(r0, r1, top)
            ideal = np.cumsum(disc)[np.minimum(n_rel, self.k) - 1]
            ndcg[r0:r1] = gains @ disc / ideal
            hit[r0:r1] = gains.any(axis=1)
        net.train(was_training)
        counts = np.bincount(self.row_episode, minlength=self.n_episodes)
        per_ep = counts > 0

        def mean(v: np.ndarray) -> float:
            sums = np.bincount(self.row_episode, weights=v, minlength=self.n_episodes)
            return float((sums[per_ep] / counts[per_ep]).mean())

        return {"ndcg": mean(ndcg), "hr": mean(hit)}

    def _consumed_mask(self, r0: int, r1: int, device: torch.device) -> torch.Tensor:
        """``(rows, n_items)``: items the user consumed before each target row."""
        eps = self.row_episode[r0:r1]
        uniq, local = np.unique(eps, return_inverse=True)
        first = np.full((len(uniq), self.n_items), np.iinfo(np.int64).max, dtype=np.int64)
        for j, e in enumerate(uniq.tolist()):
            s, t = int(self.ep_start[e]), int(self.ep_end[e])
            first[j, self.items[s:t]] = np.arange(s, t)
        mask = first[local] < self.row_flat[r0:r1, None]
        return torch.as_tensor(mask, device=device)

    def _gains(self, r0: int, r1: int, top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which slate positions hold one of the row's next items, and how many those are."""
        flat, ge = self.row_flat[r0:r1], self.row_group_end[r0:r1]
        n_rel = ge - flat
        width = int(n_rel.max())
        idx = flat[:, None] + np.arange(width)
        valid = idx < ge[:, None]
        rel = np.where(valid, self.items[np.minimum(idx, len(self.items) - 1)], -1)
        gains = (top[:, :, None] == rel[:, None, :]).any(axis=2).astype(np.float64)
        return gains, n_rel


def _same_second_group_end(ds: Dataset) -> np.ndarray:
    """Per interaction, the flat index just past its (user, timestamp) group."""
    n = ds.n_ratings
    users = ds.interaction_users
    new = np.ones(n, dtype=bool)
    new[1:] = (users[1:] != users[:-1]) | (ds.timestamps[1:] != ds.timestamps[:-1])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    return ends[np.cumsum(new) - 1]


# ============================================================================ policy
def _one_thread_on_cpu(device: torch.device) -> contextlib.AbstractContextManager:
    """One torch thread on the CPU, nothing on a GPU.

    One sequence's forward pass is too small to split: on the shared 2-core machine it took
    1.1-2.1 ms on one thread and 10-22 ms on two (``max_len`` 50-200, ``dim`` 64).
    """
    return single_torch_thread() if device.type == "cpu" else contextlib.nullcontext()


def window_start(length: int, max_len: int) -> int:
    """Where the model's window starts in a history of ``length`` items.

    ``0`` while the history fits, else the smallest multiple of ``s = max(1, max_len // 2)``
    at or after ``length - max_len``: the model reads between ``max_len - s + 1`` and
    ``max_len`` of the most recent items, and the window moves in steps of ``s``, so a policy
    can extend it item by item between moves (the validation scorer reads the same windows).

    Examples:
        >>> [window_start(n, 4) for n in (3, 4, 5, 6, 7, 8)]
        [0, 0, 2, 2, 4, 4]
    """
    s = max(1, max_len // 2)
    return 0 if length <= max_len else -((max_len - length) // s) * s


class SASRecPolicy(Policy):
    """Recommends the catalogue's highest-scoring next items for the user's history.

    Each step reads ``env.history()``; the items since the window start
    (:func:`window_start`) are encoded. Between window moves only the newly consumed items
    are run through the network, on top of the cached keys and values (or GRU state) of the
    earlier ones; the cache is checked against the history, so it is never stale.

    Args:
        net: A trained :class:`SASRecNet`.
        config: Its hyperparameters.
        meta: What it was trained on and how (``fingerprint``, ``split_key``, ``seed``,
            ``n_items``, ``history`` of validation scores per epoch, ``best_epoch``,
            ``train_seconds``).
    """

    def __init__(self, net: SASRecNet, config: SASRecConfig, meta: dict[str, Any]) -> None:
        """Wrap a trained network (set to evaluation mode)."""
        self.net = net.eval()
        self.config = config
        self.meta = meta
        self.name = "sasrec" if config.arch == "sasrec" else "gru4rec"
        self.device = next(net.parameters()).device
        self._cache: tuple[int, np.ndarray, np.ndarray, Any, torch.Tensor] | None = None

    def reset(self, env: MovieRecEnv) -> None:
        """Forget the previous user's cached state."""
        self._cache = None

    @torch.inference_mode()
    def scores(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """Scores of every item as the next one after the history ``items``.

        Args:
            items: Consumed item indices, oldest first.
            ratings: Their ratings scaled to [-1, 1].

        Returns:
            ``(n_items,)`` float32 logits.
        """
        items = np.asarray(items, dtype=np.int64)
        ratings = np.asarray(ratings, dtype=np.float32)
        if not len(items):
            return self.net.item_bias.detach().float().cpu().numpy()
        a = window_start(len(items), self.config.max_len)
        with _one_thread_on_cpu(self.device):
            z, _ = self._encode(items[a:], ratings[a:], None)
            return self.net.logits(z).float().cpu().numpy()

    @torch.inference_mode()
    def recommend(self, env: MovieRecEnv, obs: np.ndarray) -> np.ndarray:
        """The top allowed items for ``env.history()`` (``obs`` is not read)."""
        items, ratings = env.history()
        a = window_start(len(items), self.config.max_len)
        c = self._cache
        with _one_thread_on_cpu(self.device):
            if (
                c is not None
                and c[0] == a
                and len(items) >= a + len(c[1])
                and np.array_equal(items[a : a + len(c[1])], c[1])
                and np.array_equal(ratings[a : a + len(c[2])], c[2])
            ):
                n = a + len(c[1])
                z, state = c[4], c[3]
                if len(items) > n:
                    z, state = self._encode(items[n:], ratings[n:], state)
            else:
                z, state = self._encode(items[a:], ratings[a:], None)
            self._cache = (a, items[a:].copy(), ratings[a:].copy(), state, z)
            scores = self.net.logits(z).float().cpu().numpy()
        return env.recommend_from_scores(scores)

    def _encode(self, items: np.ndarray, ratings: np.ndarray, past: Any) -> tuple[Any, Any]:
        """``z`` of the last of ``items`` (continuing ``past``), and the state after it."""
        inp = torch.as_tensor(items + 1, device=self.device)[None]
        rat = torch.as_tensor(ratings, device=self.device)[None]
        z, state = self.net.encode(inp, rat, past)
        return z[0, -1], state

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write weights, configuration and metadata to ``path`` atomically (torch format)."""
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        payload = {
            "format": FORMAT_VERSION,
            "config": asdict(self.config),
            "meta": self.meta,
            "state": state,
        }
        with atomic_write(Path(path)) as fh:
            torch.save(payload, fh)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        env: MovieRecEnv | None = None,
        device: str = "auto",
    ) -> SASRecPolicy:
        """Read a policy written by :meth:`save`.

        Args:
            path: The file.
            env: If given, the model must have been trained on this env's dataset and split.
            device: Where to put the network.

        Raises:
            ConfigError: For a file of another format, or a model of another dataset or split.
        """
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
            raise ConfigError(
                f"{path} is not a recgym sasrec checkpoint of format {FORMAT_VERSION}; "
                "write it with SASRecPolicy.save."
            )
        config = SASRecConfig(**{**payload["config"], "device": device})
        meta = payload["meta"]
        if env is not None:
            env = getattr(env, "unwrapped", env)
            ctx = env.context
            got = (ctx.dataset.fingerprint, ctx.split.key)
            want = (meta["fingerprint"], meta["split_key"])
            if got != want:
                raise ConfigError(
                    f"{path} was trained on dataset/split {want}, but the env has {got}; "
                    "train a model for this env (make_baseline('sasrec', env)) instead."
                )
        net = SASRecNet(int(meta["n_items"]), config)
        net.load_state_dict(payload["state"])
        return cls(net.to(_device(device)), config, meta)


# ============================================================================ training
def _device(device: str) -> torch.device:
    from agents.factory import resolve_device

    return torch.device(resolve_device(device))


def fit_sasrec(
    env: MovieRecEnv,
    config: SASRecConfig | None = None,
    seed: int = 0,
    progress: bool | None = None,
) -> SASRecPolicy:
    """Train a next-item model on ``env``'s TRAIN split, early-stopped on its VAL users.

    Whatever split ``env`` replays, the model is fitted on ``env.context.split.train_mask``
    and early-stopped on the val episodes of the same split (see the module docstring).
    Same seed, same configuration and same device: same weights.

    Args:
        env: Any environment of the dataset and split (usually the test env to evaluate on).
        config: Hyperparameters (default :class:`SASRecConfig`).
        seed: Seeds the initial weights, dropout, the window offsets and the batch order.
        progress: Show a progress bar over epochs (``None``: only on a terminal).

    Returns:
        The trained policy, with the best validation epoch's weights.
    """
    env = getattr(env, "unwrapped", env)
    config = config or SASRecConfig()
    check_int("seed", seed, 0)
    keep_freed_memory()  # the full-softmax head's (targets, n_items) tensors: agents.allocator
    ctx = env.context
    ds, split = ctx.dataset, ctx.split
    seqs = train_sequences(ds, split)
    device = _device(config.device)
    scorer = NextItemScorer(ds, split, "val", env.frame_size, config.max_len)
    if not len(scorer):
        warnings.warn(
            f"The {split.strategy} split of {ds.name} has no validation episode (frame_size="
            f"{env.frame_size}): no early stopping, the model trains all {config.max_epochs} "
            "epochs.",
            RecgymWarning,
            stacklevel=2,
        )
    start = time.perf_counter()
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        net = SASRecNet(ds.n_items, config).to(device)
        history, best_epoch = _train(net, seqs, scorer, config, seed, device, progress)
    meta = {
        "fingerprint": ds.fingerprint,
        "split_key": split.key,
        "split_strategy": split.strategy,
        "seed": int(seed),
        "n_items": int(ds.n_items),
        "history": history,
        "best_epoch": best_epoch,
        "train_seconds": time.perf_counter() - start,
    }
    return SASRecPolicy(net, config, meta)


def _train(
    net: SASRecNet,
    seqs: Sequences,
    scorer: NextItemScorer,
    config: SASRecConfig,
    seed: int,
    device: torch.device,
    progress: bool | None,
) -> tuple[list[dict[str, float]], int]:
    """The epoch loop with early stopping; leaves the best epoch's weights in ``net``."""
    rng = np.random.default_rng(seed)
    items = torch.as_tensor(seqs.items, device=device)
    ratings = torch.as_tensor(seqs.ratings, device=device)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history: list[dict[str, float]] = []
    best, best_epoch, best_state, waited = -math.inf, 0, None, 0
    bar = tqdm(
        range(1, config.max_epochs + 1), desc=f"fit {config.arch}", disable=tqdm_disable(progress)
    )
    for epoch in bar:
        net.train()
        windows = epoch_windows(seqs.indptr, config.max_len, rng)
        windows = windows[rng.permutation(len(windows))]
        total, count = 0.0, 0
        for b0 in range(0, len(windows), config.batch_size):
            inp, rat, tgt = _batch(items, ratings, windows[b0 : b0 + config.batch_size])
            z, _ = net.encode(inp, rat)
            valid = tgt >= 0
            loss = full_softmax_cross_entropy(z[valid], net.item_emb.weight[1:], net.item_bias,
                                              tgt[valid])  # fmt: skip
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n = int(valid.sum())
            total, count = total + float(loss.detach()) * n, count + n
        val = scorer(net)
        history.append({"epoch": epoch, "loss": total / max(count, 1), **val})
        bar.set_postfix(loss=f"{total / max(count, 1):.3f}", val_ndcg=f"{val['ndcg']:.4f}")
        score = val["ndcg"] if len(scorer) else float(epoch)  # no val users: the last epoch
        if score > best:
            best, best_epoch, waited = score, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            waited += 1
            if waited > config.patience:
                break
    bar.close()
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return history, best_epoch


def sasrec_policy(env: MovieRecEnv, seed: int = 0, **options: Any) -> SASRecPolicy:
    """A fitted policy for ``env``'s dataset and split, trained once per process and cached.

    Args:
        env: The environment (its train split trains, its val users early-stop).
        seed: Training seed.
        **options: Fields of :class:`SASRecConfig`, plus ``path`` (load weights from a file
            written by :meth:`SASRecPolicy.save` instead of training) and ``progress``.

    Raises:
        ConfigError: For an unknown option or a bad value, naming it.
    """
    env = getattr(env, "unwrapped", env)
    path = options.pop("path", None)
    progress = options.pop("progress", None)
    if path is not None:
        return SASRecPolicy.load(path, env, device=options.get("device", "auto"))
    config = SASRecConfig.from_options(**options)
    ctx = env.context
    key = (ctx.dataset.fingerprint, ctx.split.key, env.frame_size, int(seed), config)
    if ctx.split.key is not None and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    policy = fit_sasrec(env, config, seed=seed, progress=progress)
    if ctx.split.key is not None:
        _CACHE[key] = policy
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return policy


__all__ = [
    "ARCHS",
    "NextItemScorer",
    "SASRecConfig",
    "SASRecNet",
    "SASRecPolicy",
    "Sequences",
    "epoch_windows",
    "fit_sasrec",
    "full_softmax_cross_entropy",
    "sasrec_policy",
    "train_sequences",
    "window_start",
]
