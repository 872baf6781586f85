"""The registered environment ids (registered on ``import recgym``, idempotently)."""

from __future__ import annotations

import gymnasium as gym

ENTRY_POINT = "recgym.envs.movie_rec:MovieRecEnv"
VECTOR_ENTRY_POINT = "recgym.envs.vector:MovieRecVectorEnv"
DISCRETE_ENTRY_POINT = "recgym.envs.discrete:MovieRecDiscreteEnv"

#: id -> keyword arguments. Never change what an id means: a behaviour change gets a new -vN.
ENV_IDS: dict[str, dict[str, object]] = {
    "MovieRec-v0": {"dataset": "ml-latest-small"},
    "MovieRec-100k-v0": {"dataset": "ml-100k"},
    "MovieRec-1M-v0": {"dataset": "ml-1m"},
    "MovieRec-20M-v0": {"dataset": "ml-20m"},
    "MovieRec-25M-v0": {"dataset": "ml-25m"},
    "MovieRecSynthetic-v0": {"dataset": "synthetic"},
    "MovieRecDiscrete-v0": {"dataset": "ml-latest-small"},
}
DISCRETE_IDS = ("MovieRecDiscrete-v0",)


def register_envs() -> list[str]:
    """Register every id of :data:`ENV_IDS` not registered yet; return the ids registered."""
    added = []
    for env_id, kwargs in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        discrete = env_id in DISCRETE_IDS
        gym.register(
            id=env_id,
            entry_point=DISCRETE_ENTRY_POINT if discrete else ENTRY_POINT,
            vector_entry_point=None if discrete else VECTOR_ENTRY_POINT,
            kwargs=dict(kwargs),
        )
        added.append(env_id)
    return added
