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
#: The baselines of :func:`agents.policies.make_baseline`.
BASELINES = ("random", "popularity", "itemknn", "embedding-mean", "oracle")


@dataclass
class RunConfig:
    """A training run, fully specified.

    Attributes:
        algo: ``"ddpg"``, ``"td3"`` or ``"sac"`` (``"dqn"`` on discrete ids).
        env_id: Registered environment id.
        env_kwargs: Overrides of the id's arguments (``dataset``, ``embedding_dim``...).
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
    """

    algo: str = "ddpg"
    env_id: str = "MovieRec-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    timesteps: int = 20_000
    seed: int = 0
    device: str = "auto"
    n_envs: int = 1
    offline_steps: int = 0
    checkpoint_every: int = 5_000
    eval_every: int = 5_000
    eval_users: int = 30
    hyperparameters: dict[str, Any] = field(default_factory=dict)

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
        for name in ("seed", "offline_steps", "checkpoint_every", "eval_every"):
            _check_int(name, getattr(self, name), low=0)
        for name in ("env_kwargs", "hyperparameters"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(
                    f"{name}={getattr(self, name)!r} must be a mapping of names to values."
                )
        if not isinstance(self.device, str):
            raise ConfigError(f"device={self.device!r} must be 'auto', 'cpu' or 'cuda'.")
        return self

    def env_arguments(self, **overrides: Any) -> dict[str, Any]:
        """The :class:`MovieRecEnv` arguments: the id's, then ``env_kwargs``, then overrides."""
        import gymnasium as gym

        return {**gym.spec(self.env_id).kwargs, **self.env_kwargs, **overrides}

    def make_eval_env(self, split: str = "test", **overrides: Any) -> MovieRecEnv:
        """An unwrapped environment on ``split`` with this run's settings."""
        import gymnasium as gym

        env = gym.make(self.env_id, **{**self.env_kwargs, "split": split, **overrides})
        return env.unwrapped

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "the configuration") -> RunConfig:
        """Build from a mapping of field names (unknown names raise ConfigError)."""
        from recgym.errors import ConfigError, suggest

        if not isinstance(data, dict):
            raise ConfigError(
                f"{source} must be a mapping of RunConfig fields, not {type(data).__name__}."
            )
        names = [f.name for f in fields(cls)]
        for key in data:
            if key not in names:
                raise ConfigError(
                    f"{source}: unknown field {key!r}; RunConfig has {names}."
                    + suggest(str(key), names)
                )
        return cls(**data)


def _check_int(name: str, value: Any, low: int) -> None:
    from recgym.errors import ConfigError

    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}={value!r} must be an integer >= {low}.")


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
