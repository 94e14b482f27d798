"""Environment families and ``make``/``make_vec``.

Names are ``family/Task`` (``minihack/Room-5x5``); any Gymnasium id (``CartPole-v1``) works
too. Families import their heavy dependencies only when one of their envs is made.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode

from rewardlab.core.registry import Registry
from rewardlab.core.stack import RewardStack
from rewardlab.core.terms import build_stack
from rewardlab.core.wrappers import ShapedEnv, ShapedVectorEnv
from rewardlab.errors import InvalidArgument, RewardLabError, UnknownNameError

__all__ = ["ENVS", "register_env", "make", "make_vec", "env_names"]

# Built-in envs are declared in the ENVS mapping of envs/manifest.py (families load on first make).
ENVS: Registry[Any] = Registry("env", manifest="ENVS")
# Envs that batch natively (one jitted step for all copies, rewardlab/jax/manifest.py):
# ``factory(num_envs, **kwargs) -> VectorEnv`` with SAME_STEP autoreset, used by ``make_vec``.
VECTOR_ENVS: Registry[Any] = Registry("vector env", manifest="VECTOR_ENVS")


def register_env(name: str, factory: Any) -> None:
    """Register ``name`` → a callable ``factory(**kwargs) -> gym.Env``."""
    ENVS.register(name, value=factory)


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
    """``num_envs`` copies in a ``SyncVectorEnv`` (or, for names in ``VECTOR_ENVS``, the family's own
    batched ``VectorEnv``); with ``reward`` wrap it in ``ShapedVectorEnv``."""
    if num_envs < 1:
        raise InvalidArgument(f"num_envs must be >= 1, got {num_envs}")
    if env_id in VECTOR_ENVS and autoreset_mode == AutoresetMode.SAME_STEP:
        venv = VECTOR_ENVS.get(env_id)(num_envs, **kwargs)
        stack = _as_stack(reward, gamma)
        return venv if stack is None else ShapedVectorEnv(venv, stack)
    _make_base(env_id, **kwargs).close()  # fail early, in this process, with a clear error
    venv = gym.vector.SyncVectorEnv(
        [functools.partial(_make_base, env_id, **kwargs) for _ in range(num_envs)],
        autoreset_mode=autoreset_mode,
    )
    stack = _as_stack(reward, gamma)
    return venv if stack is None else ShapedVectorEnv(venv, stack)


