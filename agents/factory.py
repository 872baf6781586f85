"""One factory for the agents: DDPG (default), TD3 and SAC on Stable-Baselines3.

Defaults for MovieRec, and why:

================  ==============================  ===============================================
setting           value                           reason
================  ==============================  ===============================================
policy network    MLP 256-256 (actor and critic)  330 inputs (frame 10 x (dim 32 + 1)); the SB3
                                                  zoo size for continuous control, fast on a CPU
learning rate     1e-3 (DDPG/TD3), 3e-4 (SAC)     SB3's tested defaults for each algorithm
batch size        256                             stable critic targets; cheap at this size
buffer size       <= 100,000, capped at ~300 MB   obs and next obs are stored: 100k x 330 floats
                                                  x 2 = 264 MB; RecNN's 1290-wide obs -> ~29k
learning_starts   1,000 (at most a tenth of a     random actions first fill the buffer; a
                  run: ``agents.run`` caps it)    short run still trains
gamma             0.9                             relevance is immediate; a long horizon adds
                                                  variance over episodes of ~160 steps
tau               0.005                           SB3 default target-network averaging
action noise      Gaussian, sigma 0.1 (DDPG/TD3)  a unit-norm 32-d item vector has components of
                                                  ~0.18: 0.1 explores neighbouring items
train_freq        1 step, gradient_steps -1       one update per collected transition, whatever
                                                  the number of parallel environments
================  ==============================  ===============================================

The anchored recipe (``recipe="anchored"``, :mod:`agents.anchored`, :mod:`agents.recipe`)
starts from a behaviour-cloned actor, so it changes a few of them (chosen on ml-latest-small's
validation users in runs of the recipe with TD3, seed 0; the embedding and state choices are in
``benchmarks/results/ml-latest-small/tuning.md``, whose fine-tuning study is still to be run):

====================  ==========================  ===========================================
setting               value                       reason
====================  ==========================  ===========================================
learning_starts       0                           the cloned actor acts from the first step;
                                                  random actions would only add noise
gamma                 0.9                         as above; 0.5 and 0.0 were not better
action noise          norm 0.06 (sigma            actions are near unit norm (the anchor's
(DDPG/TD3), TD3's     0.06 / sqrt(dim)),          norm term), so noise is set by its norm,
target smoothing      clip 2.5 sigma              whatever the dimension; 0.3 left the
                                                  neighbourhood of the clone
SAC entropy           fixed, 0.005                the automatic target (-dim) would drown the
coefficient                                       cloned mean in noise
actor_loss            "awr"                       advantage-weighted cross-entropy: TD3+BC
                                                  (``"td3bc"``, ``-lambda Q/mean|Q| + CE``)
                                                  lowered validation NDCG@10 (0.042 -> 0.033
                                                  to 0.035) where AWR kept it near the clone
awr_temperature       2.5                         advantage standard deviations; small values
                                                  follow a noisy critic
critic_weight         1.0                         lambda (TD3+BC only)
actor_learning_rate   1e-4                        small steps away from the clone
hit_weight            0 (off)                     the reward's policy-gradient term
                                                  (:mod:`agents.hits`): at 3, on test
                                                  users, NDCG@10 fell by 0.008-0.010 and
                                                  the return rose by 0.001-0.030 (within
                                                  noise) against the recipe without it
                                                  (README, Results; validation:
                                                  ``hit_weight-<algo>.md``)
====================  ==========================  ===========================================

``device="auto"`` trains on CUDA when torch sees a GPU, else on the CPU. The same defaults, as
RL Baselines3 Zoo hyperparameter files, are in ``agents/zoo/`` (``ddpg.yml``, ``td3.yml``,
``sac.yml``). :func:`effective_hyperparameters` reads back what a built model actually uses.
"""

from __future__ import annotations

import copy
import inspect
import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator
from stable_baselines3 import DDPG, DQN, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise
from stable_baselines3.common.vec_env import VecEnv

from agents.anchored import ANCHORED, OPTIONS
from agents.sb3_env import RecVecEnv
from recgym.errors import ConfigError, suggest

ALGOS: dict[str, type[BaseAlgorithm]] = {"ddpg": DDPG, "td3": TD3, "sac": SAC, "dqn": DQN}
CONTINUOUS = ("ddpg", "td3", "sac")
RECIPES = ("sb3", "anchored")
BUFFER_BYTES = 300e6
# the anchored recipe's defaults (see the module docstring)
ANCHORED_GAMMA = 0.9
ANCHORED_NOISE = 0.06
ANCHORED_ENT_COEF = 0.005
ANCHORED_CRITIC_WEIGHT = 1.0
ANCHORED_ACTOR_LOSS = "awr"
ANCHORED_AWR_TEMPERATURE = 2.5
ANCHORED_ACTOR_LR = 1e-4
ANCHORED_HIT_WEIGHT = 0.0


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; others unchanged."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} but torch sees no CUDA GPU; use 'auto' or 'cpu'.")
    return device


def default_buffer_size(obs_dim: int) -> int:
    """At most 100,000 transitions, and at most ~300 MB of float32 obs and next obs."""
    return int(min(100_000, BUFFER_BYTES / (2 * 4 * obs_dim)))


def anchored_noise(algo: str, act_dim: int, norm: float) -> dict[str, Any]:
    """The anchored recipe's noise arguments for ``algo``: Gaussian noise of norm about ``norm``.

    DDPG and TD3 explore with ``N(0, sigma^2 I)``, ``sigma = norm / sqrt(act_dim)``; TD3 also
    smooths its targets with ``sigma``, clipped at ``2.5 sigma``. SAC gets nothing (its policy
    is stochastic).

    Args:
        algo: ``"ddpg"``, ``"td3"`` or ``"sac"``.
        act_dim: Action dimension.
        norm: The noise's typical norm (the recipe's default :data:`ANCHORED_NOISE`).
    """
    sigma = norm / np.sqrt(act_dim)
    noise: dict[str, Any] = {}
    if algo in ("ddpg", "td3"):
        noise["action_noise"] = NormalActionNoise(np.zeros(act_dim), sigma * np.ones(act_dim))
    if algo == "td3":
        noise.update(target_policy_noise=sigma, target_noise_clip=2.5 * sigma)
    return noise


def default_hyperparameters(
    algo: str, obs_dim: int, act_dim: int | None, recipe: str = "sb3"
) -> dict[str, Any]:
    """The defaults of the module tables for ``algo``, these space sizes and ``recipe``."""
    buffer = default_buffer_size(obs_dim)
    if algo == "dqn":
        return {
            "learning_rate": 1e-3,
            "buffer_size": buffer,
            "learning_starts": 1_000,
            "batch_size": 64,
            "gamma": 0.9,
            "train_freq": 1,
            "target_update_interval": 500,
            "exploration_fraction": 0.3,
            "exploration_final_eps": 0.05,
            "policy_kwargs": {"net_arch": [128, 128]},
        }
    params: dict[str, Any] = {
        "learning_rate": 3e-4 if algo == "sac" else 1e-3,
        "buffer_size": buffer,
        "learning_starts": 1_000,
        "batch_size": 256,
        "tau": 0.005,
        "gamma": 0.9,
        "train_freq": 1,
        "gradient_steps": -1,
        "policy_kwargs": {"net_arch": [256, 256]},
    }
    if algo in ("ddpg", "td3") and act_dim is not None:
        params["action_noise"] = NormalActionNoise(np.zeros(act_dim), 0.1 * np.ones(act_dim))
    if recipe == "anchored":
        params.update(
            learning_starts=0,
            gamma=ANCHORED_GAMMA,
            critic_weight=ANCHORED_CRITIC_WEIGHT,
            actor_loss=ANCHORED_ACTOR_LOSS,
            awr_temperature=ANCHORED_AWR_TEMPERATURE,
            actor_learning_rate=ANCHORED_ACTOR_LR,
            hit_weight=ANCHORED_HIT_WEIGHT,
        )
        if act_dim is not None:
            params.update(anchored_noise(algo, act_dim, ANCHORED_NOISE))
        if algo == "sac":
            params["ent_coef"] = ANCHORED_ENT_COEF
    return params


def make_env(env_id: str = "MovieRec-v0", n_envs: int = 1, **env_kwargs: Any) -> VecEnv:
    """An SB3 ``VecEnv`` of ``n_envs`` users of a registered recgym id, batched in one env.

    Args:
        env_id: A registered id (``"MovieRec-v0"``, ``"MovieRecSynthetic-v0"``, ...).
        n_envs: Parallel users.
        **env_kwargs: Overrides of the id's arguments (``embedding_dim=16``, ``split=...``;
            ``embedding="sasrec"``: :mod:`agents.sasrec_embeddings`).

    Returns:
        A :class:`agents.sb3_env.RecVecEnv` over the id's recgym vector environment
        (``MovieRec-v0``, ``MovieRecSeq-v0``, ...), or SB3's ``DummyVecEnv`` for ids without
        one (the discrete ``MovieRecDiscrete-v0``).
    """
    from agents.sasrec_embeddings import resolve_embedding

    env_kwargs = resolve_embedding(env_id, env_kwargs)
    spec = gym.spec(env_id)
    kwargs = {**spec.kwargs, **env_kwargs}
    vector = spec.vector_entry_point
    if isinstance(vector, str) and vector.startswith("recgym.envs.vector:"):
        return RecVecEnv(n_envs, vector_env=load_env_creator(vector), **kwargs)
    from stable_baselines3.common.env_util import make_vec_env

    # SB3 asks for render_mode="rgb_array" unless told otherwise; training needs no frames
    return make_vec_env(env_id, n_envs=n_envs, env_kwargs={"render_mode": None, **env_kwargs})


def make_agent(
    algo: str = "ddpg",
    env: str | gym.Env | VecEnv = "MovieRec-v0",
    *,
    device: str = "auto",
    seed: int | None = None,
    n_envs: int = 1,
    env_kwargs: dict[str, Any] | None = None,
    tensorboard_log: str | os.PathLike[str] | None = None,
    verbose: int = 0,
    action_noise_sigma: float | None = None,
    recipe: str = "sb3",
    **overrides: Any,
) -> BaseAlgorithm:
    """Build a Stable-Baselines3 agent for a recgym environment.

    Args:
        algo: ``"ddpg"`` (default), ``"td3"``, ``"sac"``, or ``"dqn"`` (discrete ids only).
        env: A registered id (an SB3 VecEnv of ``n_envs`` users is made), a Gymnasium env, or
            an SB3 VecEnv.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        seed: Seed of the agent, its exploration and the environment.
        n_envs: Parallel users when ``env`` is an id.
        env_kwargs: Environment arguments when ``env`` is an id.
        tensorboard_log: Folder for TensorBoard logs.
        verbose: SB3 verbosity.
        action_noise_sigma: Standard deviation of DDPG/TD3's Gaussian exploration noise
            (default 0.1); a number, so that it can come from a JSON config.
        recipe: ``"sb3"`` (SB3's classes) or ``"anchored"`` (:mod:`agents.anchored`: the
            actor keeps a supervised anchor; DDPG, TD3 and SAC).
        **overrides: Any SB3 hyperparameter, replacing the defaults of the module table.

    Returns:
        The (untrained) SB3 model.

    Raises:
        ConfigError: For an unknown algorithm, a discrete algorithm on a continuous env (or the
            reverse), or a CUDA device without a GPU.

    Example:
        >>> from agents import make_agent
        >>> model = make_agent("td3", "MovieRecSynthetic-v0", seed=0,
        ...                    env_kwargs={"embedding_dim": 8}, learning_starts=50)
        >>> type(model).__name__, model.gamma
        ('TD3', 0.9)
    """
    algo = algo.lower() if isinstance(algo, str) else algo
    if algo not in ALGOS:
        raise ConfigError(
            f"Unknown algorithm {algo!r}; choose from {list(ALGOS)}." + suggest(str(algo), ALGOS)
        )
    if isinstance(env, str):
        env = make_env(env, n_envs=n_envs, **(env_kwargs or {}))
    elif env_kwargs:
        raise ConfigError("env_kwargs applies only when env is an id string.")
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    if discrete != (algo == "dqn"):
        kind = "a discrete" if discrete else "a continuous"
        fix = "'dqn' or the tabular agents" if discrete else "'ddpg', 'td3' or 'sac'"
        raise ConfigError(f"{algo!r} cannot act in {kind} action space; use {fix}.")
    if recipe not in RECIPES:
        raise ConfigError(
            f"recipe={recipe!r}; choose from {list(RECIPES)}." + suggest(str(recipe), RECIPES)
        )
    if recipe == "anchored" and algo not in ANCHORED:
        raise ConfigError(
            f"recipe='anchored' applies to {list(ANCHORED)}, not {algo!r}; use recipe='sb3'."
        )
    obs_dim = int(np.prod(env.observation_space.shape))
    act_dim = None if discrete else int(np.prod(env.action_space.shape))
    params = default_hyperparameters(algo, obs_dim, act_dim, recipe)
    if action_noise_sigma is not None:
        if algo not in ("ddpg", "td3") or act_dim is None:
            raise ConfigError(
                f"action_noise_sigma applies to 'ddpg' and 'td3' on continuous actions, not "
                f"algo={algo!r}; drop it or pick one of those."
            )
        if not isinstance(action_noise_sigma, (int, float)) or not action_noise_sigma >= 0:
            raise ConfigError(
                f"action_noise_sigma={action_noise_sigma!r} must be a number >= 0 (default 0.1)."
            )
        params["action_noise"] = NormalActionNoise(
            np.zeros(act_dim), action_noise_sigma * np.ones(act_dim)
        )
    _check_override_names(algo, overrides, OPTIONS if recipe == "anchored" else ())
    # SB3 writes into policy_kwargs (SAC adds use_sde): never hand it the caller's dicts
    params.update(copy.deepcopy(overrides))
    cls = ANCHORED[algo] if recipe == "anchored" else ALGOS[algo]
    return cls(
        "MlpPolicy",
        env,
        device=resolve_device(device),
        seed=seed,
        tensorboard_log=None if tensorboard_log is None else str(tensorboard_log),
        verbose=verbose,
        **params,
    )


def _check_override_names(
    algo: str, overrides: dict[str, Any], extra: tuple[str, ...] = ()
) -> None:
    """Raise ConfigError for a hyperparameter the SB3 class does not take (typos included)."""
    accepted = set(inspect.signature(ALGOS[algo].__init__).parameters) - {"self", "policy", "env"}
    accepted -= {"device", "seed", "tensorboard_log", "verbose"}  # make_agent's own arguments
    accepted |= set(extra)
    for name in overrides:
        if name not in accepted:
            raise ConfigError(
                f"{ALGOS[algo].__name__} has no hyperparameter {name!r}."
                + suggest(name, sorted(accepted))
                + f" It takes: {', '.join(sorted(accepted))}."
            )


#: What :func:`effective_hyperparameters` reads from a model, when the algorithm has it.
RECORDED = (
    "learning_rate",
    "buffer_size",
    "learning_starts",
    "batch_size",
    "tau",
    "gamma",
    "train_freq",
    "gradient_steps",
    "action_noise",
    "optimize_memory_usage",
    "policy_delay",
    "target_policy_noise",
    "target_noise_clip",
    "ent_coef",
    "target_entropy",
    "target_update_interval",
    "use_sde",
    "exploration_fraction",
    "exploration_initial_eps",
    "exploration_final_eps",
    "max_grad_norm",
    *OPTIONS,
    "recipe",
)


def effective_hyperparameters(model: BaseAlgorithm) -> dict[str, Any]:
    """The hyperparameters ``model`` actually uses, read back from it, JSON-ready.

    Unlike the arguments given to :func:`make_agent`, these include the defaults and the caps
    applied on the way (buffer size, learning_starts), SB3's own defaults, and the values SB3
    derives (``target_entropy``). Schedules and noise objects are described, not pickled.

    Example:
        >>> from agents import make_agent
        >>> model = make_agent("td3", "MovieRecSynthetic-v0", env_kwargs={"embedding_dim": 8},
        ...                    learning_starts=50)
        >>> h = effective_hyperparameters(model)
        >>> h["learning_starts"], h["gamma"], h["train_freq"], h["action_noise"]["sigma"]
        (50, 0.9, [1, 'step'], 0.1)
    """
    out: dict[str, Any] = {
        "algo": type(model).__name__.lower(),
        "policy": type(model.policy).__name__,
        "n_envs": model.n_envs,
        "device": str(model.device),
        "seed": model.seed,
    }
    for name in RECORDED:
        if hasattr(model, name):
            out[name] = _jsonable(getattr(model, name))
    out["policy_kwargs"] = _jsonable(model.policy_kwargs)
    return out


def _jsonable(value: Any) -> Any:
    """A JSON-ready description of a hyperparameter value."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        flat = value.ravel()
        if len(flat) and np.all(flat == flat[0]):
            return flat[0].item()  # one number for an isotropic noise
        return value.tolist()
    if isinstance(value, ActionNoise):
        desc: dict[str, Any] = {"class": type(value).__name__}
        for key in ("_mu", "_sigma", "_theta", "_dt"):
            if hasattr(value, key):
                desc[key.lstrip("_").replace("mu", "mean")] = _jsonable(getattr(value, key))
        return desc
    if hasattr(value, "frequency") and hasattr(value, "unit"):  # SB3's TrainFreq
        return [int(value.frequency), str(value.unit.value)]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, type):
        return value.__name__
    if callable(value):
        return f"schedule: {getattr(value, '__name__', type(value).__name__)}"
    return repr(value)
