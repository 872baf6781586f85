"""``MovieRecSeq-v0``: MovieRec with the user's longer history as the state (RecNN's SeqEnv)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from recgym.envs.core import ReplayCore
from recgym.envs.movie_rec import MovieRecEnv
from recgym.errors import ConfigError, check_int


class MovieRecSeqEnv(MovieRecEnv):
    """MovieRec whose observation is the last ``history_size`` consumed movies, padded.

    ## Description

    The same users, replay, decoding, rewards, transitions and episode ends as
    :class:`MovieRecEnv` (``MovieRec-v0``): the same actions give the same slates, rewards,
    infos and next states. Only the observation differs: instead of a fixed frame of the last
    ``frame_size`` movies it holds up to the last ``history_size`` (default 50), padded to a
    fixed shape with a mask channel, for sequence encoders (RecNN's ``SeqEnv``). SB3's MLP
    policies accept it as a flat vector.

    ## Action Space

    As ``MovieRec-v0``: ``Box(-1, 1, (embedding_dim,), float32)``, decoded by
    nearest-embedding ranking (``metric``: dot, cosine, euclidean or correlation) with consumed
    and shown movies masked.

    ## Observation Space

    ``Box(shape=(history_size * (embedding_dim + 2),), float32)``, with ``H = history_size``
    and ``d = embedding_dim``, in three blocks:

    1. ``H * d`` values: the embeddings of ``H`` slots, oldest first, flattened;
    2. ``H`` values: the slots' ratings scaled linearly from the dataset's rating range to
       [-1, 1];
    3. ``H`` values: the mask, 1.0 for a consumed movie and 0.0 for padding.

    The slots are right-aligned: the most recently consumed movie is always in the last slot.
    While the user has consumed fewer than ``H`` movies, the first slots are padding (zero
    embedding, zero rating, mask 0). So whenever the user has consumed at least
    ``frame_size`` movies (always, with the default ``min_history``), the last ``frame_size``
    slots of blocks 1 and 2 are exactly the ``MovieRec-v0`` observation:
    ``obs[(H - f) * d : H * d]`` is its embedding part and ``obs[H * d + H - f : H * (d + 1)]``
    its ratings (``f = frame_size``). 1,700 values for ``H = 50`` and the default ``d = 32``
    (6,500 with RecNN's ``d = 128``). Bounds are [-1, 1] for unit-norm embeddings.

    ## Rewards

    As ``MovieRec-v0`` (``reward="rating"``: the position-weighted scaled ratings of the hits,
    in [-1, 1]; ``reward="simulator"``: predicted ratings).

    ## Starting State

    As ``MovieRec-v0``, except that users need ``min_history`` interactions before the window
    (default: ``frame_size``, so the same users form the episodes and the same test users are
    evaluated as in ``MovieRec-v0``). With the user split the first ``min_history``
    interactions seed the state; with the temporal split everything before the window does.

    ## Transition

    As ``MovieRec-v0``: hits are consumed and appended to the history in log order; with no hit
    the user consumes their next logged movie.

    ## Episode End

    As ``MovieRec-v0``: truncated when the user's log in the window is exhausted (or at
    ``max_episode_steps``); terminated after ``patience`` slates without a hit.

    ## Info

    As ``MovieRec-v0``.

    ## Arguments

    Those of :class:`MovieRecEnv`, plus:

    * ``history_size``: slots of the observation (50); at least 1 and at most the longest user
      log of the dataset.
    * ``min_history``: interactions a user needs before the window for an episode (``None``:
      ``frame_size``, i.e. 10); at least 1 and at most ``history_size``.

    ``frame_size`` does not shape the observation here; it is the default of ``min_history``
    and the frame that the last slots reproduce.

    ## Version History

    * v0: initial release.

    ## Registered Configurations

    =======================  ===================  ==========================================
    id                       dataset              notes
    =======================  ===================  ==========================================
    MovieRecSeq-v0           ml-latest-small      defaults above (``history_size=50``)
    =======================  ===================  ==========================================

    ``gym.make_vec("MovieRecSeq-v0", num_envs=N)`` gives
    :class:`recgym.envs.MovieRecSeqVectorEnv`, batched as :class:`recgym.envs.MovieRecVectorEnv`.

    Example:
        >>> import gymnasium as gym, recgym
        >>> env = gym.make("MovieRecSeq-v0", dataset="synthetic", embedding_dim=8, history_size=20)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, env.action_space.shape
        ((200,), (8,))
        >>> mask = obs[-20:]
        >>> int(mask.sum()) == min(info["n_history"], 20), mask[-1]
        (True, np.float32(1.0))
        >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        >>> len(info["slate"])
        10
    """

    def __init__(
        self,
        *,
        history_size: int = 50,
        min_history: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Validate ``history_size`` and ``min_history``, then build the ``MovieRec`` env."""
        check_int("history_size", history_size)
        check_int("min_history", min_history, optional=True)
        frame_size = kwargs.get("frame_size", 10)
        check_int("frame_size", frame_size)
        need = frame_size if min_history is None else min_history
        if need > history_size:
            given = f"min_history={need}"
            if min_history is None:
                given = f"min_history (default: frame_size={need})"
            raise ConfigError(
                f"{given} exceeds history_size={history_size}: the state could not hold the "
                f"history an episode starts with. Use min_history <= {history_size} or a larger "
                "history_size."
            )
        self.history_size = int(history_size)
        self.min_history = int(need)
        super().__init__(**kwargs, _min_history=self.min_history)
        ds = self.dataset
        longest = int(ds.user_lengths.max())
        if history_size > longest:
            raise ConfigError(
                f"history_size={history_size} exceeds the longest user log of {ds.name} "
                f"({longest} interactions): every observation would be padding in front. Use "
                f"history_size <= {longest}."
            )
        n_obs = self.history_size * (self.embedding_dim + 2)
        box = self.observation_space
        self.observation_space = spaces.Box(box.low.min(), box.high.max(), (n_obs,), np.float32)

    def make_core(self, n: int) -> ReplayCore:
        """As :meth:`MovieRecEnv.make_core`, observing the last ``history_size`` items."""
        core = super().make_core(n)
        core.history_size = self.history_size
        return core
