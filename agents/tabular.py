"""Tabular Q-learning and SARSA for ``MovieRecDiscrete-v0`` with ``observation="tabular"``.

Both keep a table ``Q[s, a]`` and act epsilon-greedily: a random action with probability
``epsilon`` (decayed after each episode, never below ``min_epsilon``), else the best one (ties
broken at random while learning, by the lowest index when acting greedily). After a step
``s, a -> r, s'``:

* Q-learning (off-policy TD): ``Q[s,a] += lr * (r + gamma * max_a' Q[s',a'] - Q[s,a])``
* SARSA (on-policy TD): ``Q[s,a] += lr * (r + gamma * Q[s',a'] - Q[s,a])`` with ``a'`` the
  action the policy takes next

The bootstrap term is dropped when the user leaves (terminated), kept when their log just ended
(truncated). Plain NumPy; a few hundred episodes train in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from agents.policies import Policy
from recgym.envs import MovieRecDiscreteEnv
from recgym.errors import ConfigError
from recgym.files import atomic_write
from recgym.progress import tqdm_disable


class TabularAgent:
    """Shared machinery of :class:`QLearning` and :class:`SARSA`.

    Args:
        n_states: Number of states (``env.observation_space.n``).
        n_actions: Number of actions (``env.action_space.n``).
        learning_rate: Step size ``lr`` in (0, 1].
        gamma: Discount in [0, 1].
        epsilon: Initial exploration rate in [0, 1].
        epsilon_decay: Factor applied to ``epsilon`` after each episode.
        min_epsilon: Floor of ``epsilon``.
        seed: Seed of exploration.
    """

    algorithm = "tabular"

    def __init__(
        self,
        n_states: int,
        n_actions: int,
        *,
        learning_rate: float = 0.1,
        gamma: float = 0.9,
        epsilon: float = 0.2,
        epsilon_decay: float = 0.995,
        min_epsilon: float = 0.01,
        seed: int = 0,
    ) -> None:
        """Start from a table of zeros."""
        for name, value, lo, hi in (
            ("learning_rate", learning_rate, 1e-12, 1.0),
            ("gamma", gamma, 0.0, 1.0),
            ("epsilon", epsilon, 0.0, 1.0),
            ("epsilon_decay", epsilon_decay, 0.0, 1.0),
            ("min_epsilon", min_epsilon, 0.0, 1.0),
        ):
            if not lo <= value <= hi:
                raise ConfigError(f"{name}={value!r} must be in [{lo:g}, {hi:g}].")
        self.q = np.zeros((n_states, n_actions))
        self.learning_rate, self.gamma = learning_rate, gamma
        self.epsilon, self.epsilon_decay, self.min_epsilon = epsilon, epsilon_decay, min_epsilon
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    @classmethod
    def for_env(cls, env: MovieRecDiscreteEnv, **kwargs: object) -> TabularAgent:
        """An agent sized for ``env`` (which must use ``observation="tabular"``)."""
        env = getattr(env, "unwrapped", env)
        if getattr(env, "observation_kind", None) != "tabular":
            raise ConfigError("Tabular agents need MovieRecDiscrete-v0 with observation='tabular'.")
        return cls(env.observation_space.n, env.action_space.n, **kwargs)  # type: ignore[arg-type]

    def act(self, state: int, greedy: bool = False) -> int:
        """Epsilon-greedy action (greedy: the best, lowest index on ties)."""
        if greedy:
            return int(np.argmax(self.q[state]))
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.q.shape[1]))
        best = np.flatnonzero(self.q[state] == self.q[state].max())
        return int(self.rng.choice(best))

    def update(self, s: int, a: int, r: float, s2: int, a2: int | None, terminated: bool) -> None:
        """One TD update (see the module docstring)."""
        raise NotImplementedError

    def learn(
        self, env: MovieRecDiscreteEnv, episodes: int, *, seed: int | None = None,
        progress: bool | None = None,
    ) -> list[float]:  # fmt: skip
        """Train for ``episodes`` episodes; returns each episode's return.

        Args:
            env: A ``MovieRecDiscrete-v0`` environment with ``observation="tabular"``.
            episodes: Number of episodes (users replayed).
            seed: Seed of the first reset (users then follow the env's generator).
            progress: Show a progress bar (``None``: only on a terminal).
        """
        returns = []
        for i in tqdm(range(episodes), desc=self.algorithm, disable=tqdm_disable(progress)):
            s, _ = env.reset(seed=seed if i == 0 else None)
            a = self.act(s)
            total, done = 0.0, False
            while not done:
                s2, r, terminated, truncated, _ = env.step(a)
                a2 = self.act(s2)
                self.update(s, a, r, s2, a2, terminated)
                s, a, total = s2, a2, total + r
                done = terminated or truncated
            returns.append(total)
            self.epsilon = max(self.min_epsilon, self.epsilon * self.epsilon_decay)
        return returns

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the table and parameters to an ``.npz`` file (atomically)."""
        with atomic_write(Path(path)) as fh:
            np.savez(
                fh,
                q=self.q,
                algorithm=np.array(self.algorithm),
                params=np.array(
                    [
                        self.learning_rate,
                        self.gamma,
                        self.epsilon,
                        self.epsilon_decay,
                        self.min_epsilon,
                        self.seed,
                    ]
                ),  # fmt: skip
            )

    @staticmethod
    def load(path: str | os.PathLike[str]) -> TabularAgent:
        """Read an agent written by :meth:`save` (Q-learning or SARSA)."""
        with np.load(path, allow_pickle=False) as z:
            cls = {"q-learning": QLearning, "sarsa": SARSA}[str(z["algorithm"])]
            lr, gamma, eps, decay, floor, seed = z["params"].tolist()
            agent = cls(*z["q"].shape, learning_rate=lr, gamma=gamma, epsilon=eps,
                        epsilon_decay=decay, min_epsilon=floor, seed=int(seed))  # fmt: skip
            agent.q = z["q"].copy()
        return agent


class QLearning(TabularAgent):
    """Off-policy TD control: bootstraps from the best next action."""

    algorithm = "q-learning"

    def update(self, s: int, a: int, r: float, s2: int, a2: int | None, terminated: bool) -> None:
        """``Q[s,a] += lr * (r + gamma * max Q[s'] - Q[s,a])``."""
        target = r + (0.0 if terminated else self.gamma * self.q[s2].max())
        self.q[s, a] += self.learning_rate * (target - self.q[s, a])


class SARSA(TabularAgent):
    """On-policy TD control: bootstraps from the action actually taken next."""

    algorithm = "sarsa"

    def update(self, s: int, a: int, r: float, s2: int, a2: int | None, terminated: bool) -> None:
        """``Q[s,a] += lr * (r + gamma * Q[s',a'] - Q[s,a])``."""
        target = r + (0.0 if terminated or a2 is None else self.gamma * self.q[s2, a2])
        self.q[s, a] += self.learning_rate * (target - self.q[s, a])


class TabularPolicy(Policy):
    """A trained table acting greedily, for :func:`agents.evaluate.evaluate`."""

    def __init__(self, agent: TabularAgent, name: str | None = None) -> None:
        """Wrap ``agent``."""
        self.agent = agent
        self.name = name or agent.algorithm

    def recommend(self, env: MovieRecDiscreteEnv, obs: int) -> np.ndarray:
        """The slate of the greedy group for ``obs``."""
        return env.decode(self.agent.act(int(obs), greedy=True))[0]
