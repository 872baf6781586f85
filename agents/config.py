"""A training run's configuration: :class:`RunConfig`, read from code, a file or the CLI.

This module imports neither torch nor Stable-Baselines3, so that ``recgym --help`` and the
command-line parser stay fast and work without the agents extra. :func:`load_config_file`
reads a RunConfig from YAML or JSON: either the fields themselves or a run's ``config.json``
(``{"config": {...}, "versions": {...}}``), so a past run can be trained again::

    algo: td3
    env_id: MovieRec-v0
    env_kwargs: {embedding_dim: 32, split_strategy: temporal}
    timesteps: 50000
    hyperparameters: {learning_rate: 3.0e-4, policy_kwargs: {net_arch: [400, 300]}}
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recgym.envs import MovieRecEnv

# recgym.errors is imported inside the functions: importing recgym registers the environments,
# which imports gymnasium and NumPy, and `recgym --help` reads this module without them.

#: The algorithms of :data:`agents.factory.ALGOS`, by name (``dqn``: discrete ids only).
ALGO_NAMES = ("ddpg", "td3", "sac", "dqn")
#: How a run trains: ``anchored`` (:mod:`agents.recipe`) or plain Stable-Baselines3 from scratch.
RECIPE_NAMES = ("anchored", "sb3")
#: The baselines of :func:`agents.policies.make_baseline`.
BASELINES = ("random", "popularity", "itemknn", "embedding-mean", "sasrec", "oracle")
#: What ``recgym train``/``evaluate`` show by default: all but ``sasrec``, which trains a model
#: for minutes (ask for it with ``--baselines ... sasrec``).
DEFAULT_BASELINES = tuple(b for b in BASELINES if b != "sasrec")
#: The environment arguments of a run that gives none: the agents act in SASRec's learned item
#: space (:mod:`agents.sasrec_embeddings`), where the cloned actor ranks far better than in the
#: environment's own default space (README, "Results"). A run's ``env_kwargs`` replace them.
DEFAULT_ENV_KWARGS: dict[str, Any] = {"embedding": "sasrec"}
#: The environment arguments a run may set for training alone (``RunConfig.train_env_kwargs``):
#: the reward and when an episode ends. The others fix the data, the item space and the
#: observations, which training and evaluation must share.
TRAIN_ONLY_ENV_KWARGS = ("reward", "hit_discount", "unrated_reward", "patience")


@dataclass
class AnchorSettings:
    """Settings of the anchored recipe's offline stages (:mod:`agents.recipe`).

    The defaults were chosen on validation users
    (``benchmarks/results/ml-latest-small/tuning.md``; ``rating_weight``: ``rating_weight.md``).

    Attributes:
        bc_epochs: Most passes over the logged transitions in behaviour cloning.
        bc_patience: Epochs without a validation gain before behaviour cloning stops.
        bc_learning_rate: Adam's step size in behaviour cloning.
        bc_batch_size: Minibatch size in behaviour cloning.
        norm_weight: Weight of ``(|a| - 1)^2`` in the anchor (:class:`agents.anchor.BCAnchor`).
        next_items: ``"second"`` or ``"one"``: the anchor's targets.
        rating_weight: ``beta`` of the anchor's rating weights: a target rated ``r`` (scaled
            to [-1, 1]) weighs ``exp(beta r)`` relative to the others (0: all the same, the
            default before 2026-12-01's evening). 1 was chosen on validation users (DDPG, two
            seeds: NDCG@10 0.0528 against 0.0493 at 0, return 3.333 against 3.318; 2 raised the
            return further and lowered NDCG; ``python -m benchmarks.rating_weight``).
        warmup_steps: Critic updates of the warm-up (0: none).
        warmup_actions: The warm-up's actions in the logged states: ``"actor"`` (the cloned
            actor's, with the exploration noise: fitted Q evaluation on the actor's own
            transitions) or ``"logged"`` (the logged movie's embedding, the only choice
            before; its targets ``Q(s', actor(s'))`` query actions the critic never saw,
            and in SASRec's item space the warm-up diverged).
        keep_logged: Put the logged transitions in the replay buffer before online learning.
        val_users: Validation users for early stopping (``None``: all).
    """

    bc_epochs: int = 6
    bc_patience: int = 2
    bc_learning_rate: float = 1e-3
    bc_batch_size: int = 256
    norm_weight: float = 0.1
    next_items: str = "second"
    rating_weight: float = 1.0
    warmup_steps: int = 2_000
    warmup_actions: str = "actor"
    keep_logged: bool = False
    val_users: int | None = None

    def validate(self) -> AnchorSettings:
        """Check the values; raises ConfigError naming the bad one."""
        from recgym.errors import ConfigError, check_choice

        for name in ("bc_epochs", "bc_batch_size"):
            _check_int(name, getattr(self, name), low=1)
        for name in ("bc_patience", "warmup_steps"):
            _check_int(name, getattr(self, name), low=0)
        if self.val_users is not None:
            _check_int("val_users", self.val_users, low=1)
        for name in ("bc_learning_rate", "norm_weight", "rating_weight"):
            value = getattr(self, name)
            low_ok = value > 0 if name == "bc_learning_rate" else value >= 0
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low_ok:
                bound = "> 0" if name == "bc_learning_rate" else ">= 0"
                raise ConfigError(f"{name}={value!r} must be a number {bound}.")
        check_choice("next_items", self.next_items, ("second", "one"))
        check_choice("warmup_actions", self.warmup_actions, ("actor", "logged"))
        if not isinstance(self.keep_logged, bool):
            raise ConfigError(f"keep_logged={self.keep_logged!r} must be true or false.")
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "anchor") -> AnchorSettings:
        """Build from a mapping of field names (unknown names raise ConfigError)."""
        return _from_dict(cls, data, source)


def _env_arguments() -> set[str]:
    """The keyword arguments of MovieRecEnv and of its variants (sequence, discrete)."""
    from recgym.envs import MovieRecEnv

    return {
        name
        for cls in (MovieRecEnv, *MovieRecEnv.__subclasses__())
        for name in inspect.signature(cls.__init__).parameters
    }


@dataclass
class RunConfig:
    """A training run, fully specified.

    Attributes:
        algo: ``"ddpg"``, ``"td3"`` or ``"sac"`` (``"dqn"`` on discrete ids).
        env_id: Registered environment id.
        env_kwargs: Overrides of the id's arguments (``dataset``, ``embedding_dim``...);
            default :data:`DEFAULT_ENV_KWARGS` (``embedding="sasrec"``). A mapping given here
            replaces it, so give ``embedding`` to keep SASRec's space or to choose another.
        timesteps: Online environment steps.
        seed: Seed of agent, exploration and environment.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        n_envs: Parallel users during training.
        offline_steps: Gradient steps of offline pre-training on logged train transitions
            (0: none) before online training.
        checkpoint_every: Steps between checkpoints (0: only at the end).
        eval_every: Steps between validation evaluations for ``curve.csv`` and TensorBoard
            (0: none); the end of training is always a point when it is not 0.
        eval_users: Users per validation evaluation (first ones in episode order).
        hyperparameters: SB3 overrides (JSON-serialisable).
        recipe: ``"anchored"`` (behaviour-cloned actor, critic warm-up, anchored fine-tuning:
            :mod:`agents.recipe`; DDPG, TD3 and SAC), ``"sb3"`` (Stable-Baselines3 from
            scratch), or ``"auto"`` (anchored, except ``sb3`` for DQN), resolved by
            :meth:`validate`.
        anchor: Overrides of :class:`AnchorSettings` for the anchored recipe.
        train_env_kwargs: Environment arguments of the TRAIN environments alone (online
            learning, and the logged transitions of the recipe's critic warm-up and of
            ``offline_steps``), over ``env_kwargs``: a reward variant such as
            ``{"hit_discount": 0.7}`` to learn from, while validation curves, early stopping
            and every evaluation keep ``env_kwargs``' reward, so runs that learn from
            different rewards are scored alike. Only :data:`TRAIN_ONLY_ENV_KWARGS`.
        wolpertinger_k: Candidates of Wolpertinger re-ranking in evaluation and
            ``recgym recommend`` (:mod:`agents.wolpertinger`; 0: the plain decode only).
    """

    algo: str = "ddpg"
    env_id: str = "MovieRec-v0"
    env_kwargs: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_ENV_KWARGS))
    timesteps: int = 5_000
    seed: int = 0
    device: str = "auto"
    n_envs: int = 4
    offline_steps: int = 0
    checkpoint_every: int = 5_000
    eval_every: int = 2_500
    eval_users: int = 30
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    recipe: str = "auto"
    anchor: dict[str, Any] = field(default_factory=dict)
    wolpertinger_k: int = 0
    train_env_kwargs: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> RunConfig:
        """Check the values; raises ConfigError naming the bad one."""
        import gymnasium as gym

        import recgym  # noqa: F401 - registers the ids
        from recgym.errors import ConfigError, suggest

        if self.algo not in ALGO_NAMES:
            raise ConfigError(
                f"Unknown algorithm {self.algo!r}; choose from {list(ALGO_NAMES)}."
                + suggest(str(self.algo), ALGO_NAMES)
            )
        if self.env_id not in gym.registry:
            known = [i for i in gym.registry if i.startswith("MovieRec")]
            raise ConfigError(
                f"Unknown environment id {self.env_id!r}; recgym registers {known}."
                + suggest(str(self.env_id), known)
            )
        for name in ("timesteps", "n_envs", "eval_users"):
            _check_int(name, getattr(self, name), low=1)
        for name in ("seed", "offline_steps", "checkpoint_every", "eval_every", "wolpertinger_k"):
            _check_int(name, getattr(self, name), low=0)
        if self.recipe == "auto":
            self.recipe = "sb3" if self.algo == "dqn" else "anchored"
        if self.recipe not in RECIPE_NAMES:
            raise ConfigError(
                f"recipe={self.recipe!r}; choose from {list(RECIPE_NAMES)} or 'auto'."
                + suggest(str(self.recipe), RECIPE_NAMES)
            )
        if self.recipe == "anchored" and self.algo == "dqn":
            raise ConfigError("recipe='anchored' needs ddpg, td3 or sac; use recipe='sb3' for dqn.")
        if self.recipe == "anchored" and self.offline_steps:
            raise ConfigError(
                f"offline_steps={self.offline_steps} is RecNN's offline regime of the 'sb3' "
                "recipe; the anchored recipe pre-trains its own way. Drop it or use "
                "recipe='sb3'."
            )
        if self.wolpertinger_k and self.algo == "dqn":
            raise ConfigError("wolpertinger_k applies to ddpg, td3 and sac, not dqn.")
        for name in ("env_kwargs", "hyperparameters", "anchor", "train_env_kwargs"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(
                    f"{name}={getattr(self, name)!r} must be a mapping of names to values."
                )
        env_arguments = _env_arguments() if self.train_env_kwargs else set()
        for key in self.train_env_kwargs:
            if key not in env_arguments:
                raise ConfigError(
                    f"train_env_kwargs: {key!r} is not an argument of recgym's environments; "
                    f"it takes the reward's arguments {list(TRAIN_ONLY_ENV_KWARGS)}."
                    + suggest(str(key), TRAIN_ONLY_ENV_KWARGS)
                )
            if key not in TRAIN_ONLY_ENV_KWARGS:
                raise ConfigError(
                    f"train_env_kwargs: {key!r} cannot differ between training and evaluation "
                    f"(it changes the data or the observations); only "
                    f"{list(TRAIN_ONLY_ENV_KWARGS)} can. Put it in env_kwargs instead."
                    + suggest(str(key), TRAIN_ONLY_ENV_KWARGS)
                )
        if not isinstance(self.device, str):
            raise ConfigError(f"device={self.device!r} must be 'auto', 'cpu' or 'cuda'.")
        self.anchor_settings()  # checks the names and values
        return self

    def anchor_settings(self) -> AnchorSettings:
        """The :class:`AnchorSettings` of this run (defaults, then ``anchor``)."""
        return AnchorSettings.from_dict(self.anchor, source="anchor").validate()

    def training_env_kwargs(self) -> dict[str, Any]:
        """The training environments' arguments: ``env_kwargs`` under ``train_env_kwargs``."""
        return {**self.env_kwargs, **self.train_env_kwargs}

    def make_eval_env(self, split: str = "test", **overrides: Any) -> MovieRecEnv:
        """An unwrapped environment on ``split`` with this run's settings."""
        import gymnasium as gym

        from agents.sasrec_embeddings import resolve_embedding

        kwargs = resolve_embedding(self.env_id, {**self.env_kwargs, "split": split, **overrides})
        env = gym.make(self.env_id, **kwargs)
        return env.unwrapped

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "the configuration") -> RunConfig:
        """Build from a mapping of field names (unknown names raise ConfigError)."""
        return _from_dict(cls, data, source)


def config_differences(given: RunConfig, saved: RunConfig) -> list[str]:
    """What ``given`` changes in ``saved``, one ``"name: given X, saved Y"`` per value.

    Mappings (``env_kwargs``, ``anchor``...) are compared key by key (``anchor.bc_epochs: given
    1, saved 6``). Both configurations should be validated, so that defaults resolved by
    :meth:`RunConfig.validate` (``recipe="auto"``) and by a run (every anchor setting written
    out) compare equal. Used to tell a resumed run which command-line values it ignores.
    """
    out = []
    for f in fields(RunConfig):
        new, old = getattr(given, f.name), getattr(saved, f.name)
        if new == old:
            continue
        if isinstance(new, dict) and isinstance(old, dict):
            for key in sorted(set(new) | set(old), key=str):
                a, b = (repr(d[key]) if key in d else "(not set)" for d in (new, old))
                if a != b:
                    out.append(f"{f.name}.{key}: given {a}, saved {b}")
        else:
            out.append(f"{f.name}: given {new!r}, saved {old!r}")
    return out


def _from_dict(cls: type, data: dict[str, Any], source: str) -> Any:
    from recgym.errors import ConfigError, suggest

    if not isinstance(data, dict):
        raise ConfigError(
            f"{source} must be a mapping of {cls.__name__} fields, not {type(data).__name__}."
        )
    names = [f.name for f in fields(cls)]
    for key in data:
        if key not in names:
            raise ConfigError(
                f"{source}: unknown field {key!r}; {cls.__name__} has {names}."
                + suggest(str(key), names)
            )
    return cls(**data)


def _check_int(name: str, value: Any, low: int) -> None:
    """:func:`recgym.errors.check_int`, imported on first use (see the note above)."""
    from recgym.errors import check_int

    check_int(name, value, low)


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read RunConfig fields from a YAML (``.yml``/``.yaml``) or JSON file.

    A run's ``config.json`` (fields under ``"config"``) is accepted too.

    Returns:
        The fields as a dict (not validated: command-line values may still override them).

    Raises:
        ConfigError: If the file is missing, unparsable, or not a mapping of fields.
    """
    from recgym.errors import ConfigError

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {str(path)!r}: no such file.")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yml", ".yaml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - yaml and json raise different classes
        kind = "YAML" if path.suffix.lower() in (".yml", ".yaml") else "JSON"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--config {str(path)!r} is not valid {kind}: {first}") from exc
    if isinstance(data, dict) and isinstance(data.get("config"), dict) and "versions" in data:
        data = data["config"]  # a run's config.json
    RunConfig.from_dict(data, source=f"--config {str(path)!r}")  # names checked here
    return dict(data)


def zoo_file(algo: str) -> Path:
    """The RL Baselines3 Zoo hyperparameter file of ``algo`` (``ddpg``, ``td3``, ``sac``).

    Pass it to the Zoo as ``--conf-file``; it holds :mod:`agents.factory`'s defaults for
    ``MovieRec-v0`` and ``MovieRecSynthetic-v0``.
    """
    path = Path(__file__).resolve().parent / "zoo" / f"{algo}.yml"
    if not path.is_file():
        from recgym.errors import ConfigError

        raise ConfigError(f"No Zoo file for algo={algo!r}; there are ddpg, td3 and sac.")
    return path
