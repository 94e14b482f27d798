"""The agent interface the experiment runner drives, and the agent registry.

An agent factory is ``factory(venv, *, gamma, seed, params) -> Agent``. ``venv`` is a
``ShapedVectorEnv`` over a ``SAME_STEP``-autoreset ``SyncVectorEnv``. The agent trains with
``learn(total_steps, callback)``, calling ``callback.on_iteration(num_timesteps, metrics)``
after every rollout/update (stop when it returns False); the runner pops finished episodes
from ``venv.pop_episodes()`` there, evaluates and checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rewardlab.core.registry import Registry

__all__ = ["Agent", "TrainCallback", "AGENTS"]


class TrainCallback(Protocol):
    def on_iteration(self, num_timesteps: int, metrics: dict[str, float]) -> bool:
        """After each rollout+update; ``metrics`` are ``losses/...`` etc. False stops training."""
        ...


class Agent(Protocol):
    num_timesteps: int

    def learn(self, total_steps: int, callback: TrainCallback) -> None:
        """Train until ``num_timesteps >= total_steps`` (continues from a loaded checkpoint)."""

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Batched actions for batched observations (evaluation)."""

    def save(self, path: Path) -> None:
        """Everything needed to resume: weights, optimiser, normalisers, RNG states, step."""

    def load(self, path: Path) -> None: ...


# Built-in agents are declared in the AGENTS mapping of agents/manifest.py (and imitation/manifest.py).
AGENTS: Registry[Any] = Registry("agent", manifest="AGENTS")
