"""Recommend movies to one user as they are now (or as they were on a given date).

The agent sees what the environment would show it: the embeddings and scaled ratings of the
user's latest ``frame_size`` movies, oldest first. Every movie the user has rated up to that
point is excluded from the ranking, and the catalogue is ranked against the agent's action
exactly as the environment decodes it. Unlike an episode of the environment, which starts
from a user's *first* movies and replays the rest, this uses the user's whole log (their
split does not matter: the model is only asked for an action).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np

from recgym.errors import ConfigError


@dataclass
class UserState:
    """A user at one point of their log.

    Attributes:
        user_id: Original MovieLens userId.
        items: Item indices rated up to that point, oldest first.
        ratings: Their raw ratings.
        timestamps: Their Unix times.
        observation: The agent's observation (the environment's layout).
        rated: Boolean ``(n_items,)``: True for every item in ``items``.
        as_of: The date the state was cut at (None: the whole log).
    """

    user_id: int
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    observation: np.ndarray
    rated: np.ndarray
    as_of: date | None = None

    def describe(self) -> str:
        """``"as of their latest rating (2000-07-08)"`` or ``"as of 1999-12-31"``."""
        last = format_day(self.timestamps[-1]) if len(self.timestamps) else "-"
        if self.as_of is None:
            return f"now: their latest rating, {last}"
        return f"as of {self.as_of.isoformat()} (their latest rating by then: {last})"


def parse_date(text: str) -> date:
    """A ``YYYY-MM-DD`` date; ConfigError naming the value otherwise."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--as-of {text!r} is not a date; write it as YYYY-MM-DD.") from exc


def user_state(env: Any, user_id: int, as_of: date | None = None) -> UserState:
    """The state of ``user_id`` after all their ratings (up to the end of ``as_of``, UTC).

    Args:
        env: An unwrapped :class:`recgym.envs.MovieRecEnv` with the run's settings (any split).
        user_id: Original userId.
        as_of: Only ratings made up to the end of this day count.

    Raises:
        UnknownUserError: For a user not in the dataset.
        ConfigError: If the user has fewer than ``frame_size`` ratings by then.
    """
    ctx, ds, f = env.context, env.dataset, env.frame_size
    u = ds.user_index(user_id)
    sl = ds.user_slice(u)
    times = ds.timestamps[sl]
    n = len(times)
    if as_of is not None:
        end_of_day = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), timezone.utc)
        n = int(np.searchsorted(times, end_of_day.timestamp(), side="left"))
    if n < f:
        when = "" if as_of is None else f" up to {as_of.isoformat()}"
        first = format_day(times[0]) if len(times) else "-"
        raise ConfigError(
            f"User {user_id} has {n} ratings{when} (first on {first}); the agent's state needs "
            f"frame_size={f}. Pick a later --as-of date or another user."
        )
    items = ds.items[sl][:n].astype(np.int64)
    scaled = ctx.scaled_ratings[sl][:n]
    observation = np.concatenate([ctx.embeddings[items[-f:]].ravel(), scaled[-f:]])
    rated = np.zeros(ds.n_items, dtype=bool)
    rated[items] = True
    return UserState(
        user_id=int(user_id),
        items=items,
        ratings=ds.ratings[sl][:n],
        timestamps=times[:n],
        observation=observation.astype(np.float32),
        rated=rated,
        as_of=as_of,
    )


def recommend(
    model: Any, env: Any, state: UserState, k: int = 10, wolpertinger_k: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` items for ``state`` and their scores, best first (rated items excluded).

    With ``wolpertinger_k``, the actor's ``max(k, wolpertinger_k)`` nearest unrated items are
    re-ranked by the critic (:mod:`agents.wolpertinger`) and the scores are the critic's Q.

    Raises:
        ConfigError: If ``k`` is not between 1 and the number of items the user has not rated.
    """
    allowed = int((~state.rated).sum())
    if not 1 <= k <= allowed:
        raise ConfigError(f"-k {k} must be between 1 and {allowed} (the movies not yet rated).")
    action = np.asarray(model.predict(state.observation, deterministic=True)[0])
    n = min(max(k, wolpertinger_k), allowed)
    items, scores = env.context.ranker.topk(action, n, state.rated)
    items, scores = items[0], scores[0]
    if wolpertinger_k:
        import torch

        from agents.wolpertinger import critic_values, ranking_heads

        device = model.device
        obs = torch.as_tensor(np.repeat(state.observation[None], len(items), 0), device=device)
        emb = torch.as_tensor(env.context.embeddings[items], device=device)
        q = critic_values(model, obs, emb, ranking_heads(model))
        scores = q.cpu().numpy().astype(np.float64)
        order = np.argsort(-scores, kind="stable")
        items, scores = items[order], scores[order]
    return items[:k], scores[:k]


def format_day(timestamp: int | np.integer) -> str:
    """A Unix time as its UTC date, ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(int(timestamp), timezone.utc).date().isoformat()
