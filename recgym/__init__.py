"""recgym: Gymnasium environments that replay real MovieLens users for RL recommenders.

``import recgym`` registers the environment ids with Gymnasium (``MovieRec-v0`` and friends);
``gym.make("recgym:MovieRec-v0")`` works without importing recgym first. recgym never imports
torch or Stable-Baselines3 (the decoder's torch backend imports torch only when asked).
"""

from recgym.envs.registration import ENV_IDS, register_envs

__version__ = "0.1.0"
__all__ = ["ENV_IDS", "MovieRecEnv", "MovieRecSeqEnv", "MovieRecVectorEnv", "register_envs"]

register_envs()


def __getattr__(name: str):
    """Import the environment classes lazily (``recgym.MovieRecEnv``)."""
    if name in ("MovieRecEnv", "MovieRecSeqEnv", "MovieRecVectorEnv"):
        from recgym import envs

        return getattr(envs, name)
    raise AttributeError(f"module 'recgym' has no attribute {name!r}")
