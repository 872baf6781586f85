"""The evaluation protocol: held-out users, full ranking, honest metrics.

Each user of the evaluation split (TEST by default) is replayed once, as one episode, in a fixed
order. At every step the policy ranks the whole catalogue (no sampled negatives); items the user
already consumed, and items already shown, are excluded by the environment. The slate is scored
against the user's actual next items (every item of the next logged timestamp: ratings within
a second have no known order) with HR@k, NDCG@k and MRR@k, and against the future items rated
at least ``like_threshold`` with precision@k (see :mod:`agents.metrics` for formulas).
Per-user values are the means over that user's steps; the table reports the mean and a 95%
Student-t interval over users, plus the episode return, coverage, intra-list diversity and
novelty over all slates shown. Deterministic for a deterministic policy.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from agents import metrics
from agents.policies import Policy
from agents.threads import evaluation_threads
from recgym.envs import MovieRecEnv

PER_USER = ("ndcg", "hr", "mrr", "precision", "return")


@dataclass
class EvalResult:
    """What :func:`evaluate` measured for one policy.

    Attributes:
        policy: The policy's name.
        per_user: One row per user: ``user_id, steps, return, hr, ndcg, mrr, precision``.
        summary: Metric -> ``(mean, ci_low, ci_high)`` over users, for :data:`PER_USER`.
        coverage: Distinct items recommended / catalogue size.
        diversity: Mean intra-list cosine distance.
        novelty: Mean self-information of recommended items.
        k: Slate size.
        seconds: Wall time of the evaluation.
    """

    policy: str
    per_user: pd.DataFrame
    summary: dict[str, tuple[float, float, float]]
    coverage: float
    diversity: float
    novelty: float
    k: int
    seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        """Users evaluated."""
        return len(self.per_user)

    def row(self) -> dict[str, object]:
        """A flat dict for tables: ``ndcg``, ``ndcg_lo``, ``ndcg_hi``, ..., ``coverage``."""
        out: dict[str, object] = {"policy": self.policy, "users": self.n_users}
        for name, (m, lo, hi) in self.summary.items():
            out[name], out[f"{name}_lo"], out[f"{name}_hi"] = m, lo, hi
        out.update(coverage=self.coverage, diversity=self.diversity, novelty=self.novelty)
        out["eval_seconds"] = self.seconds
        return out

    def to_dict(self) -> dict:
        """JSON-ready summary (per-user rows included)."""
        return {**self.row(), "k": self.k, "per_user": self.per_user.to_dict("list"), **self.extra}


def evaluate(
    policy: Policy,
    env: MovieRecEnv,
    *,
    max_users: int | None = None,
    max_steps: int | None = None,
    like_threshold: float = 4.0,
    progress: bool | None = None,
) -> EvalResult:
    """Replay every user of ``env``'s split with ``policy`` and measure it.

    Args:
        policy: Any :class:`agents.policies.Policy`.
        env: An unwrapped :class:`MovieRecEnv` on the evaluation split (usually ``"test"``).
        max_users: Evaluate only the first users in episode order (``None``: all).
        max_steps: Cut each user's episode after this many slates (``None``: whole log).
        like_threshold: Raw rating at which a future item counts as liked (precision).
        progress: Show a progress bar (``None``: only on a terminal).

    Returns:
        The result; metrics that are undefined (no users) are NaN with a warning.
    """
    env = getattr(env, "unwrapped", env)
    start = time.perf_counter()
    users = env.episode_user_ids
    if max_users is not None:
        users = users[:max_users]
    k = env.slate_size
    with evaluation_threads():  # a torch policy and the NumPy decode alternate every step
        rows, slates = _replay(policy, env, users, max_steps, like_threshold, progress)
    per_user = pd.DataFrame(rows, columns=["user_id", "steps", "return", *per_step_names()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.MetricWarning)
        summary = {m: metrics.mean_ci(per_user[m].tolist()) for m in PER_USER}
    if not len(per_user):
        warnings.warn(
            f"{policy.name}: no users to evaluate in the {env.context.split_name!r} split; "
            "all metrics are NaN.",
            metrics.MetricWarning,
            stacklevel=2,
        )
    all_slates = np.array(slates, dtype=np.int64).reshape(-1, k)
    ctx = env.context
    train_counts = ctx.dataset.item_popularity(ctx.split.train_mask)
    n_train_users = len(np.unique(ctx.dataset.interaction_users[ctx.split.train_mask]))
    quiet = len(all_slates) == 0
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore", metrics.MetricWarning)
        cov = (
            metrics.coverage(all_slates.ravel().tolist(), ctx.dataset.n_items)
            if not quiet
            else math.nan
        )
        div = metrics.intra_list_diversity(all_slates, ctx.embeddings)
        nov = metrics.novelty(all_slates, train_counts, n_train_users)
    return EvalResult(
        policy=policy.name,
        per_user=per_user,
        summary=summary,
        coverage=cov,
        diversity=div,
        novelty=nov,
        k=k,
        seconds=time.perf_counter() - start,
    )


def _replay(
    policy: Policy,
    env: MovieRecEnv,
    users: np.ndarray,
    max_steps: int | None,
    like_threshold: float,
    progress: bool | None,
) -> tuple[list[dict], list[np.ndarray]]:
    """Replay each user once with ``policy``: per-user metric rows and every slate shown."""
    k = env.slate_size
    rows, slates = [], []
    for uid in tqdm(users.tolist(), desc=f"eval {policy.name}", disable=_disable(progress)):
        obs, _ = env.reset(options={"user_id": uid})
        policy.reset(env)
        per_step: dict[str, list[float]] = {m: [] for m in ("hr", "ndcg", "mrr", "precision")}
        ret, steps, done = 0.0, 0, False
        while not done:
            slate = policy.recommend(env, obs)
            obs, reward, terminated, truncated, info = env.step_slate(slate)
            relevant = set(info["next_items"])
            shown = info["slate"].tolist()
            per_step["hr"].append(metrics.hit_rate(shown, relevant))
            per_step["ndcg"].append(metrics.ndcg(shown, relevant))
            per_step["mrr"].append(metrics.reciprocal_rank(shown, relevant))
            liked = info["hits"] & (info["hit_ratings"] >= like_threshold)
            per_step["precision"].append(float(liked.sum()) / k)
            slates.append(info["slate"])
            ret += reward
            steps += 1
            done = terminated or truncated or (max_steps is not None and steps >= max_steps)
        rows.append({"user_id": uid, "steps": steps, "return": ret,
                     **{m: float(np.mean(v)) for m, v in per_step.items()}})  # fmt: skip
    return rows, slates


def per_step_names() -> list[str]:
    """Per-step metric columns of ``EvalResult.per_user``."""
    return ["hr", "ndcg", "mrr", "precision"]


def _disable(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


COLUMNS = [
    ("ndcg", "NDCG@k"),
    ("hr", "HR@k"),
    ("mrr", "MRR@k"),
    ("precision", "P@k"),
    ("return", "return"),
]


def results_table(results: list[EvalResult]) -> str:
    """A markdown table: mean [95% CI] of each metric, plus coverage, diversity, novelty."""
    k = results[0].k if results else 10
    header = ["policy", "users"] + [n.replace("k", str(k)) if "@" in n else n for _, n in COLUMNS]
    header += ["coverage", "diversity", "novelty"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        cells = [r.policy, str(r.n_users)]
        for key, _ in COLUMNS:
            m, lo, hi = r.summary[key]
            cells.append(_fmt(m, lo, hi))
        cells += [f"{r.coverage:.3f}", f"{r.diversity:.3f}", f"{r.novelty:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(m: float, lo: float, hi: float) -> str:
    if math.isnan(m):
        return "nan"
    if math.isnan(lo):
        return f"{m:.4f}"
    return f"{m:.4f} [{lo:.4f}, {hi:.4f}]"
