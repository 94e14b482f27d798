"""rewardlab's env ids in Gymnasium's registry: ``gymnasium.make("minihack/Room-5x5")`` works.

``import rewardlab`` registers every name of the env registry (``rewardlab list envs``) under the
same id, and ``register_env`` registers a user's name the same way. Gymnasium parses
``family/Task`` as namespace ``family`` and name ``Task`` (``toy/GridWorld-v0`` has version 0),
which is what the names already are, so no id is rewritten.

- ``gymnasium.make(id, reward=[...], gamma=0.99, **env_kwargs)`` builds the family's env and, with
  ``reward``, the ``ShapedEnv`` on it; ``env.spec.id`` is the rewardlab id, and
  ``gymnasium.make(env.spec)`` rebuilds the same env (term specs are recorded, stacks are not).
- ``gymnasium.make_vec(id, n)`` (the default ``vectorization_mode``) uses the registered vector
  entry point: ``rewardlab.make_vec`` with Gymnasium's own default autoreset (``NEXT_STEP``), so
  ``reward=[...]`` is evaluated once on the batch. ``vectorization_mode="sync"|"async"`` are
  Gymnasium's own: each copy is a ``gymnasium.make(id, ...)`` (with ``reward``, one
  ``ShapedEnv`` per copy, in the worker process for ``async``).

>>> import gymnasium as gym
>>> import rewardlab  # noqa: F401  (registers the ids)
>>> env = gym.make("toy/GridWorld-v0", reward=["env", "step_penalty"], size=3)
>>> env.spec.id, sorted(env.reset(seed=0)[1]) == ["pos"]
('toy/GridWorld-v0', True)
>>> sorted(env.step(1)[4]["reward_terms"])
['env', 'step_penalty']
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode

__all__ = ["register_gym_ids", "register_gym_id", "EnvEntry", "VectorEnvEntry"]


class EnvEntry:
    """Gymnasium entry point of one rewardlab id: ``rewardlab.make(env_id, **kwargs)``.

    An object (not a string path) because the id must travel with it; it pickles by value, so
    ``AsyncVectorEnv`` workers rebuild it without a registry lookup. ``bound`` holds env kwargs
    that ``gymnasium.make`` would take for itself (``max_episode_steps``: it would put a
    ``TimeLimit`` above the shaping wrapper instead of passing it to the family).
    """

    def __init__(self, env_id: str, **bound: Any):
        self.env_id = env_id
        self.bound = bound

    def __call__(self, **kwargs: Any) -> gym.Env:
        from rewardlab.envs import make

        return make(self.env_id, **self.bound, **kwargs)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.bound.items())
        return f"rewardlab.make({self.env_id!r}{extra})"

    def __eq__(self, other: object) -> bool:  # specs compare entry points
        return type(other) is type(self) and other.env_id == self.env_id and other.bound == self.bound

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.env_id, tuple(sorted(self.bound))))


class VectorEnvEntry(EnvEntry):
    """Gymnasium vector entry point: ``rewardlab.make_vec(env_id, num_envs, **kwargs)``.

    Autoreset defaults to ``NEXT_STEP``, Gymnasium's default for ``SyncVectorEnv`` and
    ``AsyncVectorEnv``, so Gymnasium's vector wrappers (``NormalizeObservation``,
    ``RecordEpisodeStatistics``) behave as they do on any Gymnasium id.
    """

    def __call__(self, num_envs: int = 1, **kwargs: Any) -> gym.vector.VectorEnv:
        from rewardlab.envs import make_vec

        kwargs.setdefault("autoreset_mode", AutoresetMode.NEXT_STEP)
        return make_vec(self.env_id, num_envs, **self.bound, **kwargs)

    def __repr__(self) -> str:
        return f"rewardlab.make_vec({self.env_id!r})"


def register_gym_id(env_id: str) -> None:
    """Register ``env_id`` in Gymnasium's registry (a no-op when our entry is already there).

    No ``max_episode_steps`` is registered: a ``TimeLimit`` that ``gymnasium.make`` puts on top
    of the shaping wrapper would end episodes the wrapper never sees end. Families take
    their own step limit as an env kwarg (``max_episode_steps=`` on MiniHack, ``max_steps=``
    on ALFWorld).
    """
    if env_id in gym.registry:
        if isinstance(gym.registry[env_id].entry_point, EnvEntry):
            return
        from rewardlab.errors import RewardLabError

        raise RewardLabError(f"env id {env_id!r} is already a Gymnasium id of another package "
                             f"({gym.registry[env_id].entry_point!r}); choose another name")
    gym.register(id=env_id, entry_point=EnvEntry(env_id), vector_entry_point=VectorEnvEntry(env_id),
                 disable_env_checker=False, order_enforce=True)


def register_gym_ids(names: list[str]) -> None:
    """Register every name of ``names`` (the env registry's) in Gymnasium's registry."""
    for name in names:
        register_gym_id(name)
