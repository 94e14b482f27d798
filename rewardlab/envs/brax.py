"""Brax environments as batched JAX envs with reward terms applied inside the jitted step.

Contents:

- ``JAX_TERMS`` / ``register_jax_term``: reward terms written in JAX, one value per env, built
  from specs ``{"name": kind, "weight": w, "params": {...}, "as": display_name}``:
  ``env`` (the Brax reward), ``metric`` (a named Brax reward component such as
  ``reward_dist``), ``ctrl_cost`` (``-Σa²``), ``reach`` (``-‖obs[a:b] − target‖``, a dense
  reach-target term), ``reach_success`` (1 inside a radius, the sparse version) and
  ``potential`` (``γ·Φ(s') − Φ(s)`` with ``Φ = -scale·‖obs[a:b] − target‖``).
- ``BraxTask``: ``num_envs`` copies of a Brax env under ``jit`` + ``vmap``; ``step`` computes
  the shaped reward, per-term values, truncation at ``episode_length`` and a same-step
  autoreset in one XLA call; ``rollout`` runs ``n`` steps in one ``lax.scan``.
- ``BraxVectorEnv``: a Gymnasium ``VectorEnv`` over a ``BraxTask`` (``SAME_STEP`` autoreset);
  with ``array="torch"`` observations/rewards come back as torch tensors via DLPack (no copy on CPU).
- ``BraxGymEnv``: one Brax env as a ``gymnasium.Env`` (what ``rewardlab.make("brax/reacher")``
  returns), with every Brax metric in ``info`` so numpy terms (``info_component``) see them.

The Brax reward components are stored with their sign (``reward_ctrl`` is already negative),
so with weight 1 ``metric`` terms over all components add up to the env reward.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode

from rewardlab.core.registry import Registry
from rewardlab.core.terms import term_spec
from rewardlab.envs.manifest import BRAX_TASKS  # the ``brax/<name>`` envs (``brax.envs`` names), one list
from rewardlab.errors import ConfigError, InvalidArgument

# mujoco.mjx prints "Failed to import warp" (an optional GPU backend) on import; keep stdout clean.
with contextlib.redirect_stdout(io.StringIO()):
    from brax import envs as brax_envs

__all__ = [
    "JAX_TERMS", "register_jax_term", "build_jax_terms", "BRAX_TASKS", "make_brax_env", "BraxTask", "VecState",
    "StepOut", "strong_types", "BraxVectorEnv", "BraxGymEnv", "make_brax",
]

BACKENDS = ("generalized", "positional", "spring", "mjx")

# A JAX term sees one env (it is vmapped): obs, action, next_obs, Brax metrics of the step,
# the env reward and the termination flag (1.0 when the MDP ended, not on truncation).
JaxTermFn = Callable[[jax.Array, jax.Array, jax.Array, dict, jax.Array, jax.Array], jax.Array]
# Built-in JAX terms are declared in the JAX_TERMS mapping of envs/manifest.py.
JAX_TERMS: Registry[Callable[..., JaxTermFn]] = Registry("JAX reward term", manifest="JAX_TERMS")


def register_jax_term(name: str):
    """Register a JAX term factory ``factory(**params) -> fn(obs, action, next_obs, metrics, reward, done)``."""
    return JAX_TERMS.decorator(name)


def jax_env_term() -> JaxTermFn:
    return lambda obs, act, nobs, metrics, reward, done: reward


def jax_metric_term(key: str) -> JaxTermFn:
    """A Brax reward component by name (``reward_dist``, ``reward_ctrl``, ``reward_forward`` ...)."""
    return lambda obs, act, nobs, metrics, reward, done: metrics[key]


def jax_ctrl_cost_term() -> JaxTermFn:
    return lambda obs, act, nobs, metrics, reward, done: -jnp.sum(jnp.square(act))


def _slice_distance(start: int, stop: int, target: Any) -> Callable[[jax.Array], jax.Array]:
    if not 0 <= start < stop:
        raise InvalidArgument(f"obs slice needs 0 <= start < stop, got start={start}, stop={stop}")
    tgt = jnp.asarray(0.0 if target is None else target, jnp.float32)
    return lambda o: jnp.sqrt(jnp.sum(jnp.square(o[start:stop] - tgt)) + 1e-12)


def jax_reach_term(start: int, stop: int, target: Any = None) -> JaxTermFn:
    """Dense reach-target term ``-‖next_obs[start:stop] − target‖`` (target 0: the slice is a vector to the goal)."""
    dist = _slice_distance(start, stop, target)
    return lambda obs, act, nobs, metrics, reward, done: -dist(nobs)


def jax_reach_success_term(start: int, stop: int, radius: float, target: Any = None) -> JaxTermFn:
    """Sparse success: 1 when ``‖next_obs[start:stop] − target‖ < radius``, else 0."""
    if radius <= 0:
        raise InvalidArgument(f"radius must be > 0, got {radius}")
    dist = _slice_distance(start, stop, target)
    return lambda obs, act, nobs, metrics, reward, done: (dist(nobs) < radius).astype(jnp.float32)


def jax_potential_term(start: int, stop: int, gamma: float, scale: float = 1.0, target: Any = None) -> JaxTermFn:
    """Potential-based shaping ``γ·Φ(s')·(1−terminated) − Φ(s)``, ``Φ = -scale·‖obs[start:stop] − target‖``.

    On truncation ``γ·Φ(s')`` is kept (the MDP did not end), as in ``rewardlab.shaping.potential``.
    """
    if not 0.0 < gamma <= 1.0:
        raise InvalidArgument(f"gamma must be in (0, 1], got {gamma}")
    dist = _slice_distance(start, stop, target)

    def fn(obs, act, nobs, metrics, reward, done):
        return gamma * (-scale * dist(nobs)) * (1.0 - done) + scale * dist(obs)

    return fn


def build_jax_terms(specs: list[Any] | None, *, gamma: float | None = None) -> list[tuple[str, float, JaxTermFn]]:
    """``[(display_name, weight, fn)]`` from term specs (names or mappings, as in YAML).

    >>> [(n, w) for n, w, _ in build_jax_terms(["env", {"name": "ctrl_cost", "weight": 0.1}])]
    [('env', 1.0), ('ctrl_cost', 0.1)]
    """
    import inspect

    out, seen = [], set()
    for spec in specs or []:
        spec = term_spec(spec, "JAX reward term")
        factory = JAX_TERMS.get(spec["name"])
        params = dict(spec.get("params") or {})
        sig = inspect.signature(factory)
        if "gamma" in sig.parameters and "gamma" not in params and gamma is not None:
            params["gamma"] = gamma
        try:
            fn = factory(**params)
        except TypeError as e:
            raise ConfigError(f"JAX reward term {spec['name']!r}: {e}") from e
        name = spec.get("as") or spec["name"]
        if name in seen:
            raise ConfigError(f"JAX reward term name {name!r} is used twice; give one an 'as' name")
        seen.add(name)
        out.append((name, float(spec.get("weight", 1.0)), fn))
    return out


def strong_types(tree: Any) -> Any:
    """``tree`` with every leaf's dtype made explicit (not weak), so reset and step states share one
    jitted signature and a jitted step compiles once instead of twice."""
    return jax.tree_util.tree_map(lambda x: jax.lax.convert_element_type(x, jnp.asarray(x).dtype), tree)


def make_brax_env(name: str, backend: str = "positional", **kwargs: Any):
    """The raw Brax env ``name`` on ``backend`` (clear errors for unknown names)."""
    if backend not in BACKENDS:
        raise InvalidArgument(f"unknown Brax backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    try:
        return brax_envs.get_environment(name, backend=backend, **kwargs)
    except KeyError as e:
        raise InvalidArgument(f"unknown Brax env {name!r}; registered: {', '.join(BRAX_TASKS)}") from e


class VecState(NamedTuple):
    """Batched state of a ``BraxTask``: Brax states, steps into the episode, per-env RNG keys."""

    core: Any
    steps: jax.Array
    keys: jax.Array


class StepOut(NamedTuple):
    """What one batched step returns (all arrays with leading dim ``num_envs``)."""

    obs: jax.Array          # after autoreset: the new episode's first obs where done
    reward: jax.Array       # shaped reward (the env reward when no terms are given)
    reward_env: jax.Array   # the env's own reward
    terms: dict             # {name: weighted value}, summing to ``reward``
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array    # the true last obs of the step (before autoreset)


class BraxTask:
    """``num_envs`` Brax envs in one jitted, vmapped step with JAX reward terms.

    Without ``terms`` the reward is the env reward; with terms it is ``Σ wᵢ·termᵢ``, computed
    in the same XLA program as the physics (no host round trip per step).

    >>> task = BraxTask("reacher", num_envs=2, episode_length=5,
    ...                 terms=["env", {"name": "reach", "params": {"start": 8, "stop": 11}, "weight": 0.5}])
    >>> vs = task.reset(jax.random.PRNGKey(0))
    >>> vs, out = task.step(vs, jnp.zeros((2, task.action_size)))
    >>> bool(jnp.allclose(out.reward, out.terms["env"] + out.terms["reach"]))
    True
    """

    def __init__(self, name: str, *, num_envs: int = 1, backend: str = "positional", episode_length: int = 1000,
                 terms: list[Any] | None = None, gamma: float | None = None, env_kwargs: dict | None = None):
        if num_envs < 1:
            raise InvalidArgument(f"num_envs must be >= 1, got {num_envs}")
        if episode_length < 1:
            raise InvalidArgument(f"episode_length must be >= 1, got {episode_length}")
        self.name, self.backend = name, backend
        self.num_envs, self.episode_length = num_envs, episode_length
        self.env = make_brax_env(name, backend, **(env_kwargs or {}))
        self.terms = build_jax_terms(terms, gamma=gamma)
        self.obs_size, self.action_size = int(self.env.observation_size), int(self.env.action_size)
        self.reset = jax.jit(self._reset)
        self.step = jax.jit(self._step)

    # -- one env ------------------------------------------------------------------------
    def shaped_step(self, state: Any, action: jax.Array) -> tuple[Any, jax.Array, dict]:
        """One unbatched Brax step and its shaped reward: ``(next_state, reward, {term: weighted value})``."""
        action = jnp.clip(action, -1.0, 1.0)
        nstate = strong_types(self.env.step(state, action))
        if not self.terms:
            return nstate, nstate.reward, {}
        parts = {n: w * fn(state.obs, action, nstate.obs, nstate.metrics, nstate.reward, nstate.done)
                 for n, w, fn in self.terms}
        return nstate, sum(parts.values()), parts

    # -- the batch ----------------------------------------------------------------------
    def _reset(self, key: jax.Array) -> VecState:
        keys = jax.random.split(key, self.num_envs + 1)
        core = strong_types(jax.vmap(self.env.reset)(keys[1:]))
        return VecState(core, jnp.zeros(self.num_envs, jnp.int32), jax.random.split(keys[0], self.num_envs))

    def _step(self, vs: VecState, action: jax.Array) -> tuple[VecState, StepOut]:
        nstate, reward, parts = jax.vmap(self.shaped_step)(vs.core, action)
        steps = vs.steps + 1
        terminated = nstate.done > 0.5
        truncated = (steps >= self.episode_length) & ~terminated
        done = terminated | truncated
        final_obs = nstate.obs

        def autoreset(args):
            core, keys = args
            split = jax.vmap(lambda k: jax.random.split(k, 2))(keys)
            fresh = strong_types(jax.vmap(self.env.reset)(split[:, 1]))

            def pick(new, old):
                mask = done.reshape(done.shape + (1,) * (old.ndim - 1))
                return jnp.where(mask, new, old)

            return jax.tree_util.tree_map(pick, fresh, core), jnp.where(done[:, None], split[:, 0], keys)

        # Reset only when some env finished (a real branch: the batch flag is not vmapped).
        core, keys = jax.lax.cond(done.any(), autoreset, lambda a: a, (nstate, vs.keys))
        out = StepOut(core.obs, reward, nstate.reward, parts, terminated, truncated, final_obs)
        return VecState(core, jnp.where(done, 0, steps), keys), out

    def rollout(self, vs: VecState, policy: Callable[[jax.Array], jax.Array], n_steps: int
                ) -> tuple[VecState, StepOut]:
        """``n_steps`` batched steps of ``policy(obs) -> action`` in one ``lax.scan`` (jit it around this)."""

        def body(carry, _):
            nvs, out = self._step(carry, policy(carry.core.obs))
            return nvs, out

        return jax.lax.scan(body, vs, None, length=n_steps)


def _to_numpy_tree(x: Any) -> Any:
    return jax.tree_util.tree_map(np.asarray, x)


class BraxVectorEnv(gym.vector.VectorEnv):
    """A Gymnasium ``VectorEnv`` over a ``BraxTask`` (``SAME_STEP`` autoreset).

    ``info`` holds ``reward_env``, ``reward_terms`` and, on rows that ended, ``final_obs``.
    With ``array="torch"`` actions may be torch tensors (read through a NumPy view) and
    observations/rewards come back as torch tensors shared with JAX through DLPack (no copy on CPU).

    >>> venv = BraxVectorEnv("reacher", num_envs=3, episode_length=10)
    >>> obs, _ = venv.reset(seed=0)
    >>> obs.shape
    (3, 11)
    >>> obs, rew, term, trunc, info = venv.step(np.zeros((3, 2), np.float32))
    >>> bool(np.allclose(rew, info["reward_env"]))
    True
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, name: str, num_envs: int = 8, *, backend: str = "positional", episode_length: int = 1000,
                 terms: list[Any] | None = None, gamma: float | None = None, array: str = "numpy"):
        if array not in ("numpy", "torch"):
            raise InvalidArgument(f"array must be 'numpy' or 'torch', got {array!r}")
        self.task = BraxTask(name, num_envs=num_envs, backend=backend, episode_length=episode_length, terms=terms,
                             gamma=gamma)
        self.num_envs, self.array = num_envs, array
        obs_size, act_size = self.task.obs_size, self.task.action_size
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_size,), np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (act_size,), np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self._vs: VecState | None = None

    def _out(self, x: jax.Array) -> Any:
        if self.array == "torch":
            import torch

            return torch.from_dlpack(x)
        return np.asarray(x)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31))
        self._vs = self.task.reset(jax.random.PRNGKey(seed))
        return self._out(self._vs.core.obs), {}

    def step(self, actions: Any):
        if self._vs is None:
            raise InvalidArgument("call reset() before step()")
        if self.array == "torch" and hasattr(actions, "detach"):
            # torch -> numpy is a view; jax.dlpack.from_dlpack per step measured ~100x slower here.
            actions = actions.detach().cpu().numpy()
        act = jnp.asarray(actions, jnp.float32)
        if act.shape != (self.num_envs, self.task.action_size):
            raise InvalidArgument(f"actions must have shape {(self.num_envs, self.task.action_size)}, got {act.shape}")
        self._vs, out = self.task.step(self._vs, act)
        term, trunc = np.asarray(out.terminated), np.asarray(out.truncated)
        info: dict[str, Any] = {"reward_env": np.asarray(out.reward_env),
                                "reward_terms": _to_numpy_tree(out.terms)}
        ended = term | trunc
        if ended.any():
            info["final_obs"] = np.asarray(out.final_obs)
            info["_final_obs"] = ended
        return self._out(out.obs), self._out(out.reward), term, trunc, info


_GYM_CACHE: dict[tuple, tuple] = {}


class BraxGymEnv(gym.Env):
    """One Brax env as a ``gymnasium.Env``; Brax metrics (``reward_*`` components) go into ``info``.

    >>> env = BraxGymEnv("reacher", episode_length=5)
    >>> obs, _ = env.reset(seed=0)
    >>> obs, r, term, trunc, info = env.step(np.zeros(2, np.float32))
    >>> bool(np.isclose(r, info["reward_dist"] + info["reward_ctrl"], atol=1e-6))
    True
    """

    metadata = {"render_modes": []}

    def __init__(self, name: str, *, backend: str = "positional", episode_length: int = 1000,
                 terms: list[Any] | None = None, gamma: float | None = None):
        # Copies with the same settings (a SyncVectorEnv, the eval envs) share one compiled step.
        cache_key = (name, backend, repr(terms), gamma)
        if cache_key not in _GYM_CACHE:
            task = BraxTask(name, num_envs=1, backend=backend, episode_length=episode_length, terms=terms,
                            gamma=gamma)
            reset = jax.jit(lambda k: strong_types(task.env.reset(k)))
            _GYM_CACHE[cache_key] = (task, reset, jax.jit(task.shaped_step))
        self.task, self._reset, self._step = _GYM_CACHE[cache_key]
        self.episode_length = episode_length
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.task.obs_size,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.task.action_size,), np.float32)
        self._state, self._t = None, 0
        self._key = jax.random.PRNGKey(0)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._key = jax.random.PRNGKey(seed)
        self._key, sub = jax.random.split(self._key)
        self._state, self._t = self._reset(sub), 0
        return np.asarray(self._state.obs, np.float32), {}

    def step(self, action: Any):
        if self._state is None:
            raise InvalidArgument("call reset() before step()")
        self._state, reward, parts = self._step(self._state, jnp.asarray(action, jnp.float32))
        self._t += 1
        terminated = bool(self._state.done > 0.5)
        truncated = self._t >= self.episode_length and not terminated
        info = {k: float(v) for k, v in self._state.metrics.items()}
        info["reward_env_brax"] = float(self._state.reward)
        info.update({f"term_{k}": float(v) for k, v in parts.items()})
        return np.asarray(self._state.obs, np.float32), float(reward), terminated, truncated, info


def make_brax(task: str, **kwargs: Any) -> gym.Env:
    """Factory behind ``rewardlab.make("brax/<task>", backend=..., episode_length=..., terms=[...])``."""
    return BraxGymEnv(task, **kwargs)
