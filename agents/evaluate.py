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
from agents.tables import LABELS, ci_cell, metric_labels, slate_size
from agents.threads import evaluation_threads
from recgym.envs import MovieRecEnv
from recgym.progress import tqdm_disable

#: Ranking metrics of each slate against the user's next items: name -> ``f(slate, relevant)``.
RANKING = {"hr": metrics.hit_rate, "ndcg": metrics.ndcg, "mrr": metrics.reciprocal_rank}
#: Per-step metrics (the ranking ones and precision@k), averaged over each user's steps.
PER_STEP = (*RANKING, "precision")
#: Per-user metrics summarised over users (mean and 95% CI), in the tables' order.
PER_USER = tuple(LABELS)


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
    episodes = [_Episode(uid, k, like_threshold, max_steps) for uid in users.tolist()]
    batched = getattr(policy, "batch_size", 1) > 1 and type(env) is MovieRecEnv
    replay = _lockstep if batched and len(episodes) > 1 else _one_by_one
    bar = tqdm(total=len(episodes), desc=f"eval {policy.name}", disable=tqdm_disable(progress))
    with evaluation_threads(), bar:  # a torch policy and the NumPy decode alternate every step
        replay(policy, env, episodes, bar)
    rows = [e.row() for e in episodes]
    slates = [s for e in episodes for s in e.slates]
    per_user = pd.DataFrame(rows, columns=["user_id", "steps", "return", *PER_STEP])
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

    def __init__(self, user_id: int, k: int, like_threshold: float, max_steps: int | None) -> None:
        self.user_id, self.k, self.like_threshold = user_id, k, like_threshold
        self.max_steps = max_steps
        self.per_step: dict[str, list[float]] = {m: [] for m in PER_STEP}
        self.ret, self.steps = 0.0, 0
        self.slates: list[np.ndarray] = []

    def step(self, env: MovieRecEnv, slate: np.ndarray) -> tuple[np.ndarray, bool]:
        """Show ``slate`` and record it; the next observation, and whether the episode is over."""
        obs, reward, terminated, truncated, info = env.step_slate(slate)
        self.record(reward, info)
        cut = self.max_steps is not None and self.steps >= self.max_steps
        return obs, terminated or truncated or cut

    def record(self, reward: float, info: dict) -> None:
        relevant = set(info["next_items"])
        shown = info["slate"].tolist()
        for name, metric in RANKING.items():
            self.per_step[name].append(metric(shown, relevant))
        liked = info["hits"] & (info["hit_ratings"] >= self.like_threshold)
        self.per_step["precision"].append(float(liked.sum()) / self.k)
        self.slates.append(info["slate"])
        self.ret += reward
        self.steps += 1

    def row(self) -> dict:
        return {"user_id": self.user_id, "steps": self.steps, "return": self.ret,
                **{m: float(np.mean(v)) for m, v in self.per_step.items()}}  # fmt: skip


def _one_by_one(policy: Policy, env: MovieRecEnv, episodes: list[_Episode], bar: tqdm) -> None:
    """Replay each user once with ``policy``, one user after the other."""
    for episode in episodes:
        obs, _ = env.reset(options={"user_id": episode.user_id})
        policy.reset(env)
        done = False
        while not done:
            obs, done = episode.step(env, policy.recommend(env, obs))
        bar.update()


def _lockstep(policy: ActionPolicy, env: MovieRecEnv, episodes: list[_Episode], bar: tqdm) -> None:
    """:func:`_one_by_one` for up to ``policy.batch_size`` users at once, one batch a step.

    Each user gets a slot (an environment sharing ``env``'s data) and, when they finish, the
    next user takes it. The batch always has ``batch_size`` rows (unused slots are zeros) and a
    user keeps their row, so a user's actions, and their metrics, do not depend on how many
    users are evaluated.
    """
    width = policy.batch_size
    envs = [env] + [env.sibling() for _ in range(min(width, len(episodes)) - 1)]
    queue = iter(episodes)
    slots: list[_Episode | None] = [None] * len(envs)
    batch = np.zeros((width, env.observation_space.shape[0]), dtype=np.float32)

    def start(s: int) -> None:
        slots[s] = episode = next(queue, None)
        batch[s] = 0.0
        if episode is not None:
            batch[s] = envs[s].reset(options={"user_id": episode.user_id})[0]
            policy.reset(envs[s])

    for s in range(len(envs)):
        start(s)
    while any(episode is not None for episode in slots):
        slates = policy.recommend_batch(envs, batch, [s for s, e in enumerate(slots) if e])
        for s, episode in enumerate(slots):
            if episode is None:
                continue
            batch[s], done = episode.step(envs[s], slates[s])
            if done:
                bar.update()
                start(s)


def results_table(results: list[EvalResult]) -> str:
    """A markdown table: mean ± 95% CI half-width of each metric, coverage, diversity, novelty."""
    labels = metric_labels(slate_size(r.k for r in results))
    header = ["policy", "users", *labels.values(), "coverage", "diversity", "novelty"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        cells = [r.policy, str(r.n_users)] + [ci_cell(*r.summary[m]) for m in labels]
        cells += [f"{r.coverage:.3f}", f"{r.diversity:.3f}", f"{r.novelty:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
