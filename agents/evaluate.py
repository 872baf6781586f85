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

Speed: the replay runs NumPy's BLAS and torch on one thread each (:mod:`agents.threads`), and
a policy with ``batch_size > 1`` (a trained agent: :class:`agents.policies.AgentPolicy`) is
asked for the actions of that many users at once, one forward pass per step. Each user keeps
one row of a fixed-size batch, so their numbers do not depend on how many users are evaluated
(a batched forward pass may round the last bits of an action differently from a one-row one).
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
from agents.policies import ActionPolicy, Policy
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


class _Episode:
    """The metrics of one user's episode as it is replayed."""

    def __init__(self, user_id: int, k: int, like_threshold: float) -> None:
        self.user_id, self.k, self.like_threshold = user_id, k, like_threshold
        self.per_step: dict[str, list[float]] = {m: [] for m in per_step_names()}
        self.ret, self.steps = 0.0, 0
        self.slates: list[np.ndarray] = []

    def record(self, reward: float, info: dict) -> None:
        relevant = set(info["next_items"])
        shown = info["slate"].tolist()
        self.per_step["hr"].append(metrics.hit_rate(shown, relevant))
        self.per_step["ndcg"].append(metrics.ndcg(shown, relevant))
        self.per_step["mrr"].append(metrics.reciprocal_rank(shown, relevant))
        liked = info["hits"] & (info["hit_ratings"] >= self.like_threshold)
        self.per_step["precision"].append(float(liked.sum()) / self.k)
        self.slates.append(info["slate"])
        self.ret += reward
        self.steps += 1

    def row(self) -> dict:
        return {"user_id": self.user_id, "steps": self.steps, "return": self.ret,
                **{m: float(np.mean(v)) for m, v in self.per_step.items()}}  # fmt: skip


def _replay(
    policy: Policy,
    env: MovieRecEnv,
    users: np.ndarray,
    max_steps: int | None,
    like_threshold: float,
    progress: bool | None,
) -> tuple[list[dict], list[np.ndarray]]:
    """Replay each user once with ``policy``: per-user metric rows and every slate shown."""
    width = getattr(policy, "batch_size", 1)
    if width > 1 and type(env) is MovieRecEnv and len(users) > 1:
        return _replay_batched(policy, env, users, max_steps, like_threshold, progress)
    episodes = []
    for uid in tqdm(users.tolist(), desc=f"eval {policy.name}", disable=_disable(progress)):
        obs, _ = env.reset(options={"user_id": uid})
        policy.reset(env)
        episode = _Episode(uid, env.slate_size, like_threshold)
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step_slate(policy.recommend(env, obs))
            episode.record(reward, info)
            done = terminated or truncated or (max_steps is not None and episode.steps >= max_steps)
        episodes.append(episode)
    return _results(episodes)


def _results(episodes: list[_Episode]) -> tuple[list[dict], list[np.ndarray]]:
    """Per-user rows and every slate shown, in user order."""
    return [e.row() for e in episodes], [s for e in episodes for s in e.slates]


def _replay_batched(
    policy: ActionPolicy,
    env: MovieRecEnv,
    users: np.ndarray,
    max_steps: int | None,
    like_threshold: float,
    progress: bool | None,
) -> tuple[list[dict], list[np.ndarray]]:
    """:func:`_replay` for up to ``policy.batch_size`` users at once, one batch a step.

    Each user gets a slot (an environment sharing ``env``'s data) and, when they finish, the
    next user takes it. The batch always has ``batch_size`` rows (unused slots are zeros) and a
    user keeps their row, so a user's actions, and their metrics, do not depend on how many
    users are evaluated. Rows and slates come back in ``users`` order, as :func:`_replay`'s.
    """
    width = policy.batch_size
    envs = [env] + [env.sibling() for _ in range(min(width, len(users)) - 1)]
    queue = iter(enumerate(users.tolist()))
    slots: list[tuple[int, _Episode] | None] = [None] * len(envs)
    batch = np.zeros((width, env.observation_space.shape[0]), dtype=np.float32)
    episodes: list[_Episode | None] = [None] * len(users)
    bar = tqdm(total=len(users), desc=f"eval {policy.name}", disable=_disable(progress))

    def start(s: int) -> None:
        nxt = next(queue, None)
        slots[s] = None if nxt is None else (nxt[0], _Episode(nxt[1], env.slate_size,
                                                                 like_threshold))  # fmt: skip
        batch[s] = 0.0
        if nxt is not None:
            batch[s] = envs[s].reset(options={"user_id": nxt[1]})[0]
            policy.reset(envs[s])

    for s in range(len(envs)):
        start(s)
    while any(slot is not None for slot in slots):
        slates = policy.recommend_batch(envs, batch, [s for s, x in enumerate(slots) if x])
        for s, slot in enumerate(slots):
            if slot is None:
                continue
            index, episode = slot
            e = envs[s]
            obs, reward, terminated, truncated, info = e.step_slate(slates[s])
            episode.record(reward, info)
            batch[s] = obs
            if terminated or truncated or (max_steps is not None and episode.steps >= max_steps):
                episodes[index] = episode
                bar.update()
                start(s)
    bar.close()
    return _results(episodes)


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
