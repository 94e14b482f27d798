"""Environment families and ``make``/``make_vec``.

Names are ``family/Task`` (``minihack/Room-5x5``); any Gymnasium id (``CartPole-v1``) works
too. Families import their heavy dependencies only when one of their envs is made. Every name
is also a Gymnasium id (``gymnasium.make("minihack/Room-5x5")``, ``gymnasium.make_vec(...)``):
see ``rewardlab.envs.gym_registry``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import AutoresetMode

from rewardlab.core.registry import Registry
from rewardlab.core.stack import RewardStack
from rewardlab.core.terms import build_stack
from rewardlab.core.wrappers import ShapedEnv, ShapedVectorEnv, check_vector_wrappers
from rewardlab.envs.gym_registry import EnvEntry, VectorEnvEntry, register_gym_id, register_gym_ids
from rewardlab.errors import InvalidArgument, RewardLabError, UnknownNameError

__all__ = ["ENVS", "register_env", "make", "make_vec", "env_names"]

# Built-in envs are declared in the ENVS mapping of envs/manifest.py (families load on first make).
ENVS: Registry[Any] = Registry("env", manifest="ENVS")
# Envs that batch natively (one jitted step for all copies, rewardlab/jax/manifest.py):
# ``factory(num_envs, **kwargs) -> VectorEnv`` with SAME_STEP autoreset, used by ``make_vec``.
VECTOR_ENVS: Registry[Any] = Registry("vector env", manifest="VECTOR_ENVS")


def register_env(name: str, factory: Any) -> None:
    """Register ``name`` → a callable ``factory(**kwargs) -> gym.Env`` (also as a Gymnasium id)."""
    ENVS.register(name, value=factory)
    register_gym_id(name)


def env_names() -> list[str]:
    return ENVS.names()


def _set_spec(env: gym.Env, env_id: str, kwargs: dict[str, Any]) -> None:
    """``env.spec`` names the rewardlab id (not the upstream one), and ``gym.make(env.spec)`` rebuilds it."""
    env.unwrapped.spec = EnvSpec(
        id=env_id, entry_point=EnvEntry(env_id), vector_entry_point=VectorEnvEntry(env_id),
        kwargs=dict(kwargs), disable_env_checker=True, order_enforce=False, additional_wrappers=(),
    )
    inner: Any = env
    while isinstance(inner, gym.Wrapper):  # a wrapper caches the spec it first saw
        inner._cached_spec = None
        inner = inner.env


def _make_base(env_id: str, **kwargs: Any) -> gym.Env:
    if env_id in ENVS:
        env = ENVS.get(env_id)(**kwargs)
        _set_spec(env, env_id, kwargs)
        return env
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



def _autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """An ``AutoresetMode`` from itself, its value (``"SameStep"``) or its name (``"same_step"``)."""
    if isinstance(mode, AutoresetMode):
        return mode
    key = str(mode).replace("_", "").lower()
    for m in AutoresetMode:
        if key in (m.value.lower(), m.name.replace("_", "").lower()):
            return m
    raise InvalidArgument(f"autoreset_mode must be one of {[m.name.lower() for m in AutoresetMode]} "
                          f"(or an AutoresetMode), got {mode!r}")


def _make_copy(target: str | EnvSpec, kwargs: dict[str, Any], wrappers: list[Callable[[gym.Env], gym.Env]]) -> gym.Env:
    """One copy, as ``gymnasium.make_vec`` builds it (``gymnasium.make`` and the per-copy wrappers)."""
    env = gym.make(target, **kwargs)
    for wrapper in wrappers:
        env = wrapper(env)
    return env


def _make_workers(target: str | EnvSpec, num_envs: int, kwargs: dict[str, Any],
                  wrappers: list[Callable[[gym.Env], gym.Env]], autoreset_mode: AutoresetMode,
                  vector_kwargs: dict[str, Any]) -> gym.vector.VectorEnv:
    """``WorkerVectorEnv`` over ``num_envs`` copies, with the spec ``gymnasium.make_vec`` would record."""
    from rewardlab.envs.workers import WorkerVectorEnv

    unknown = sorted(set(vector_kwargs) - {"workers", "inline", "context", "daemon", "pin"})
    if unknown:
        raise InvalidArgument(f"vector_kwargs for vectorization_mode='workers' may hold workers, inline, "
                              f"context, daemon, pin; got {unknown}")
    fn = functools.partial(_make_copy, target, dict(kwargs), list(wrappers))
    venv = WorkerVectorEnv([fn] * num_envs, autoreset_mode=autoreset_mode, **vector_kwargs)
    spec = copy.deepcopy(target if isinstance(target, EnvSpec) else gym.spec(target))
    spec.kwargs = {**spec.kwargs, **kwargs, "num_envs": num_envs, "vectorization_mode": "workers"}
    if vector_kwargs:
        spec.kwargs["vector_kwargs"] = vector_kwargs
    if wrappers:
        spec.kwargs["wrappers"] = wrappers
    venv.spec = spec
    return venv


def make_vec(env_id: str, num_envs: int, reward: Any = None, *, gamma: float | None = None,
             vectorization_mode: str | None = None, wrappers: Sequence[Callable[[gym.Env], gym.Env]] | None = None,
             autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP, vector_kwargs: dict[str, Any] | None = None,
             **kwargs: Any) -> gym.vector.VectorEnv:
    """``num_envs`` copies built by ``gymnasium.make_vec``; with ``reward`` wrap them in ``ShapedVectorEnv``.

    The shaping is applied once, on the batch, in this process, whatever the vectorisation.

    Args:
        vectorization_mode: ``"sync"`` (``SyncVectorEnv``, one process), ``"async"``
            (``AsyncVectorEnv``: each copy steps in its own worker process), ``"workers"``
            (:class:`~rewardlab.envs.workers.WorkerVectorEnv`: one process per usable core, each
            stepping a ``SyncVectorEnv`` of its share of the copies, one message per worker per
            step; ``vector_kwargs={"workers": k}`` to choose ``k``, ``{"inline": True}`` to step
            the first group in this process, one process fewer) or ``None``: the family's own
            batched vector env where it has one (``VECTOR_ENVS``: gymnax/minigrid, one jitted
            step for all copies), else ``"sync"``.
        wrappers: per-copy wrappers (``gymnasium.make_vec``'s ``wrappers=``), applied below the
            shaping wrapper; reward wrappers and action wrappers there are refused (see
            ``docs/concepts.md``, wrapper order).
        autoreset_mode: ``SAME_STEP`` (default: the final observation is in ``info["final_obs"]``
            on the step an episode ends, which our agents need to bootstrap truncated episodes)
            or ``NEXT_STEP`` (Gymnasium's default); an ``AutoresetMode`` or its name (``"next_step"``).
        vector_kwargs: more arguments of the vector env class (``context=`` for ``async`` and
            ``workers``, ``workers=`` for ``workers``, ...).

    >>> venv = make_vec("CartPole-v1", 2, reward=["env", "step_penalty"], vectorization_mode="sync")
    >>> _ = venv.reset(seed=0)
    >>> venv.step([0, 1])[1]
    array([0.99, 0.99], dtype=float32)
    """
    if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
        raise InvalidArgument(f"num_envs must be an integer >= 1, got {num_envs!r}")
    if vectorization_mode not in (None, "sync", "async", "workers"):
        raise InvalidArgument(f"vectorization_mode must be 'sync', 'async', 'workers' or None, "
                              f"got {vectorization_mode!r}")
    autoreset_mode = _autoreset_mode(autoreset_mode)
    stack = _as_stack(reward, gamma)  # bad term specs fail before any env is built
    wrappers = list(wrappers or [])
    native = env_id in VECTOR_ENVS and vectorization_mode is None and not wrappers and not vector_kwargs
    if native and autoreset_mode == AutoresetMode.SAME_STEP:
        venv = VECTOR_ENVS.get(env_id)(num_envs, **kwargs)
        return venv if stack is None else ShapedVectorEnv(venv, stack)
    # One copy built here first: a bad kwarg fails in this process with a clear error (not in a
    # worker), and the per-copy wrapper stack is checked for orders that break the bookkeeping.
    probe = _make_base(env_id, **kwargs)
    try:
        for wrapper in wrappers:
            probe = wrapper(probe)
        if stack is not None:
            check_vector_wrappers(probe)
    finally:
        probe.close()
    target: str | EnvSpec = env_id
    if env_id in ENVS:
        # Our spec, with the kwargs Gymnasium's make would take for itself (max_episode_steps)
        # bound to the entry point, and no env checker on every copy (rewardlab.make has none).
        own = {k: kwargs.pop(k) for k in ("max_episode_steps",) if k in kwargs}
        target = EnvSpec(id=env_id, entry_point=EnvEntry(env_id, **own), disable_env_checker=True,
                         order_enforce=False, kwargs={})
    if vectorization_mode == "workers":
        venv = _make_workers(target, num_envs, kwargs, wrappers, autoreset_mode, dict(vector_kwargs or {}))
        return venv if stack is None else ShapedVectorEnv(venv, stack)
    try:
        venv = gym.make_vec(target, num_envs, vectorization_mode=vectorization_mode or "sync",
                            vector_kwargs={"autoreset_mode": autoreset_mode, **(vector_kwargs or {})},
                            wrappers=wrappers, **kwargs)
    except TypeError as e:
        raise InvalidArgument(f"env {env_id!r}: {e}") from e
    return venv if stack is None else ShapedVectorEnv(venv, stack)


register_gym_ids(ENVS.names())
