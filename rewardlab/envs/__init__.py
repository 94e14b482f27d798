"""Environment families and ``make``/``make_vec``.

Names are ``family/Task`` (``minihack/Room-5x5``); any Gymnasium id (``CartPole-v1``) works
too. Families import their heavy dependencies only when one of their envs is made.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode

from rewardlab.core.registry import Registry, load_attr
from rewardlab.core.stack import RewardStack
from rewardlab.core.terms import build_stack
from rewardlab.core.wrappers import ShapedEnv, ShapedVectorEnv
from rewardlab.errors import InvalidArgument, RewardLabError, UnknownNameError

__all__ = ["ENVS", "register_env", "make", "make_vec", "env_names"]

ENVS: Registry[Any] = Registry("env")


class _FamilyEnv:
    """A lazily imported factory bound to one task name (registry value)."""

    def __init__(self, factory_path: str, task: str):
        self.factory_path, self.task = factory_path, task

    def __call__(self, **kwargs: Any) -> gym.Env:
        return load_attr(self.factory_path)(self.task, **kwargs)


def register_env(name: str, factory: Any) -> None:
    """Register ``name`` → a callable ``factory(**kwargs) -> gym.Env``."""
    ENVS.register(name, value=factory)


def _register_minihack() -> None:
    # The task list is plain data; nle/minihack themselves are imported only by make().
    from rewardlab.envs.minihack import TASKS

    for task in TASKS:
        register_env(f"minihack/{task}", _FamilyEnv("rewardlab.envs.minihack:make_minihack", task))


_register_minihack()
register_env("toy/GridWorld-v0", _FamilyEnv("rewardlab.envs.gridworld:make_gridworld", "GridWorld-v0"))


def _register_alfworld() -> None:
    # alfworld/textworld load only when an env is made; the reward primitives load on first use.
    from rewardlab.core.terms import TERMS

    for task in ("PickAndPlace-v0", "Clean-v0", "Heat-v0", "Cool-v0", "LookAtInLight-v0", "PickTwo-v0", "All-v0"):
        register_env(f"alfworld/{task}", _FamilyEnv("rewardlab.envs.alfworld.env:make_alfworld", task))
    for term, cls in (("success", "Success"), ("subgoal_progress", "SubgoalProgress"),
                      ("invalid_command", "InvalidCommand")):
        TERMS.register(f"alfworld/{term}", indirect=f"rewardlab.envs.alfworld.terms:{cls}")


_register_alfworld()
for _swe_task in ("PatchSelect-v0", "TextEdit-v0"):
    register_env(f"swe/{_swe_task}", _FamilyEnv("rewardlab.envs.swe.envs:make_swe", _swe_task))
for _rob_task in ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "Reacher-v5", "Pusher-v5",
                  "ReacherSparse-v5", "PusherSparse-v5"):
    register_env(f"robotics/{_rob_task}", _FamilyEnv("rewardlab.envs.robotics:make_robotics", _rob_task))
for _brax_task in ("ant", "halfcheetah", "hopper", "humanoid", "inverted_pendulum", "pusher", "reacher", "walker2d"):
    register_env(f"brax/{_brax_task}", _FamilyEnv("rewardlab.envs.brax:make_brax", _brax_task))


def env_names() -> list[str]:
    return ENVS.names()


def _make_base(env_id: str, **kwargs: Any) -> gym.Env:
    if env_id in ENVS:
        return ENVS.get(env_id)(**kwargs)
    if env_id in gym.registry:
        try:
            return gym.make(env_id, **kwargs)
        except TypeError as e:
            raise InvalidArgument(f"env {env_id!r}: {e}") from e
    raise UnknownNameError("env", env_id, [*ENVS.names(), "(or any Gymnasium id, e.g. CartPole-v1)"])


def _as_stack(reward: Any, gamma: float | None) -> RewardStack | None:
    if reward is None or isinstance(reward, RewardStack):
        return reward
    if isinstance(reward, (list, tuple)):
        return build_stack(list(reward), gamma=gamma)
    raise RewardLabError(f"reward must be a RewardStack or a list of term specs, got {type(reward).__name__}")


def make(env_id: str, reward: Any = None, *, gamma: float | None = None, **kwargs: Any) -> gym.Env:
    """Make one env; with ``reward`` (a ``RewardStack`` or term specs) wrap it in ``ShapedEnv``.

    >>> env = make("CartPole-v1", reward=["env", {"name": "step_penalty", "params": {"value": 0.5}}])
    >>> _ = env.reset(seed=0)
    >>> env.step(0)[1]
    0.5
    """
    env = _make_base(env_id, **kwargs)
    if isinstance(reward, (list, tuple)):  # specs: the wrapper records them, so env.spec rebuilds it
        return ShapedEnv(env, reward, gamma=gamma)
    stack = _as_stack(reward, gamma)
    return env if stack is None else ShapedEnv(env, stack)


def make_vec(env_id: str, num_envs: int, reward: Any = None, *, gamma: float | None = None,
             autoreset_mode: AutoresetMode = AutoresetMode.SAME_STEP, **kwargs: Any) -> gym.vector.VectorEnv:
    """``num_envs`` copies in a ``SyncVectorEnv``; with ``reward`` wrap it in ``ShapedVectorEnv``."""
    if num_envs < 1:
        raise InvalidArgument(f"num_envs must be >= 1, got {num_envs}")
    _make_base(env_id, **kwargs).close()  # fail early, in this process, with a clear error
    venv = gym.vector.SyncVectorEnv(
        [functools.partial(_make_base, env_id, **kwargs) for _ in range(num_envs)],
        autoreset_mode=autoreset_mode,
    )
    stack = _as_stack(reward, gamma)
    return venv if stack is None else ShapedVectorEnv(venv, stack)


