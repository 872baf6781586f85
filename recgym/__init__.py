"""recgym: Gymnasium environments that replay real MovieLens users for RL recommenders.

``import recgym`` registers the environment ids with Gymnasium (``MovieRec-v0`` and friends);
``gym.make("recgym:MovieRec-v0")`` works without importing recgym first. recgym never imports
torch or Stable-Baselines3 (the decoder's torch backend imports torch only when asked).
"""

from recgym.envs.registration import ENV_IDS, register_envs
from recgym.lazy import lazy_exports

__version__ = "0.1.0"  # the one place the version is written (setup.cfg reads it)
__all__ = ["ENV_IDS", "MovieRecEnv", "MovieRecSeqEnv", "MovieRecVectorEnv", "register_envs"]

register_envs()

# the environment classes load pandas and SciPy: imported on first use (recgym.MovieRecEnv)
__getattr__, __dir__ = lazy_exports(
    __name__,
    {name: "recgym.envs" for name in ("MovieRecEnv", "MovieRecSeqEnv", "MovieRecVectorEnv")},
)
