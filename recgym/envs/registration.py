"""The registered environment ids (registered on ``import recgym``, idempotently)."""

from __future__ import annotations

import gymnasium as gym

ENTRY_POINT = "recgym.envs.movie_rec:MovieRecEnv"
VECTOR_ENTRY_POINT = "recgym.envs.vector:MovieRecVectorEnv"
DISCRETE_ENTRY_POINT = "recgym.envs.discrete:MovieRecDiscreteEnv"
SEQ_ENTRY_POINT = "recgym.envs.movie_rec_seq:MovieRecSeqEnv"
SEQ_VECTOR_ENTRY_POINT = "recgym.envs.vector:MovieRecSeqVectorEnv"

#: id -> keyword arguments. Never change what an id means: a behaviour change gets a new -vN.
ENV_IDS: dict[str, dict[str, object]] = {
    "MovieRec-v0": {"dataset": "ml-latest-small"},
    "MovieRec-100k-v0": {"dataset": "ml-100k"},
    "MovieRec-1M-v0": {"dataset": "ml-1m"},
    "MovieRec-20M-v0": {"dataset": "ml-20m"},
    "MovieRec-25M-v0": {"dataset": "ml-25m"},
    "MovieRecSynthetic-v0": {"dataset": "synthetic"},
    "MovieRecDiscrete-v0": {"dataset": "ml-latest-small"},
    "MovieRecSeq-v0": {"dataset": "ml-latest-small"},
}
DISCRETE_IDS = ("MovieRecDiscrete-v0",)
SEQ_IDS = ("MovieRecSeq-v0",)


def entry_points(env_id: str) -> tuple[str, str | None]:
    """The (single, vector) entry points of a registered id (no vector env: ``None``)."""
    if env_id in DISCRETE_IDS:
        return DISCRETE_ENTRY_POINT, None
    if env_id in SEQ_IDS:
        return SEQ_ENTRY_POINT, SEQ_VECTOR_ENTRY_POINT
    return ENTRY_POINT, VECTOR_ENTRY_POINT


def register_envs() -> list[str]:
    """Register every id of :data:`ENV_IDS` not registered yet; return the ids registered."""
    added = []
    for env_id, kwargs in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        entry_point, vector_entry_point = entry_points(env_id)
        gym.register(
            id=env_id,
            entry_point=entry_point,
            vector_entry_point=vector_entry_point,
            kwargs=dict(kwargs),
        )
        added.append(env_id)
    return added
