"""Reward terms in JAX for the pure-JAX path, built from the same YAML specs as the numpy terms.

A spec ``{name, weight, params, as}`` names a term in ``JAX_RL_TERMS`` (declared in
``rewardlab/jax/manifest.py``). Its **numeric** parameters (the weight, ``value``, ``scale``,
``reward``) are not baked into the compiled code: they form the ``reward_params`` pytree
(``{term: {"weight": w, ...}}``), an *argument* of the traced step, so ``jax.vmap`` over it trains
reward variants side by side. Everything else (which potential, γ, an event's ``repeatable``) is
static.

Terms see a batch (``JaxTransition``: leading dim = number of envs), like the numpy terms, and
keep their per-env state (fired events, visit counts) in a pytree the rollout carries.

Built-in terms, each the twin of the numpy term of the same name (``tests/jax/test_jax_terms.py``
checks equal values on the same transitions):

- ``env``: the env reward; ``step_penalty(value)``: ``-value`` each step;
- ``potential(potential, gamma, scale, params)``: ``γ·Φ(s')·(1 − terminated) − Φ(s)`` with
  ``Φ = scale·φ`` from ``JAX_RL_POTENTIALS`` (MiniGrid: ``minigrid/doorkey_progress``, ``*_distance``);
  on truncation ``γ·Φ(s')`` is kept; Φ(terminal) = 0;
- ``novelty(key, scope)``: ``1/sqrt(N(s'))`` over a discrete state field (``agent_pos`` on MiniGrid),
  counted per episode and env (``episode``) or over the run, all envs together (``global``);
- events on JAX state, paying ``reward`` once per episode unless ``repeatable``: ``pickup``
  (``item: key``; picked up the key), ``open_door`` (a door opened), ``reach_goal`` (stood on the
  goal), ``reach`` (``pos: [x, y]``);
- ``derl_program(program, primitives)`` (``rewardlab.jax.program``): a DERL reward program over
  named JAX primitive terms, its program a variant parameter (batched DERL).

A spec naming a term without a JAX version fails with a ``ConfigError`` that lists those with one.

>>> from rewardlab.jax.envs import make_env
>>> stack = build_jax_stack(["env", {"name": "step_penalty", "weight": 2.0, "params": {"value": 0.1}}],
...                         make_env("gymnax/CartPole-v1"))
>>> stack.default_params()["step_penalty"]
{'weight': Array(2., dtype=float32), 'value': Array(0.1, dtype=float32)}
>>> build_jax_stack(["oni"], make_env("gymnax/CartPole-v1"))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
rewardlab.errors.ConfigError: reward term 'oni' has no JAX version (agent jax_ppo needs one); terms with one: ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab.core.registry import Registry
from rewardlab.core.terms import term_spec
from rewardlab.errors import ConfigError, InvalidArgument, RewardLabError
from rewardlab.jax.potentials import require_features

__all__ = [
    "JAX_RL_TERMS", "JAX_RL_POTENTIALS", "JaxTransition", "JaxTerm", "TermContext", "JaxRewardStack",
    "build_jax_stack", "build_jax_term", "register_jax_rl_term", "stack_params",
]

# Built-in names: the JAX_RL_TERMS / JAX_RL_POTENTIALS mappings of rewardlab/jax/manifest.py.
JAX_RL_TERMS: Registry[Callable[..., JaxTerm]] = Registry("JAX reward term", manifest="JAX_RL_TERMS")
JAX_RL_POTENTIALS: Registry[Callable[..., Callable]] = Registry("JAX potential", manifest="JAX_RL_POTENTIALS")


def register_jax_rl_term(name: str):
    """Register a term factory ``factory(ctx: TermContext, **params) -> JaxTerm``."""
    return JAX_RL_TERMS.decorator(name)


class JaxTransition(NamedTuple):
    """A batched step ``(s, a, s', r_env, terminated, truncated)`` with the env's state fields of
    ``s`` (``prev``) and of the true ``s'`` (``next``, before any automatic reset)."""

    obs: jax.Array
    action: jax.Array
    next_obs: jax.Array
    env_reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    prev: dict
    next: dict

    @property
    def done(self) -> jax.Array:
        return self.terminated | self.truncated


@dataclass(frozen=True)
class TermContext:
    """What a term factory may look at: the env, the shapes of its state fields, the learner's γ."""

    env: Any
    features: dict
    gamma: float | None = None


def _no_state(num_envs: int) -> tuple:
    return ()


@dataclass(frozen=True)
class JaxTerm:
    """A built JAX term: ``apply(state, tr, p) -> (state, values)`` with ``p`` its numeric params
    (``self.params`` holds their defaults; the weight is applied by the stack)."""

    apply: Callable[[Any, JaxTransition, dict], tuple[Any, jax.Array]]
    params: dict[str, Any] = field(default_factory=dict)
    init: Callable[[int], Any] = _no_state
    encoders: dict[str, Callable[[Any], dict]] = field(default_factory=dict)
    """non-numeric parameters a variant may set, each turned into numeric params (``derl_program``'s
    ``program`` text -> its token arrays)"""


def _num(name: str, value: Any, kind: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
        raise InvalidArgument(f"{kind} {name} must be a finite number, got {value!r}")
    return float(value)


# -- built-in terms ---------------------------------------------------------------------------
def env_term(ctx: TermContext) -> JaxTerm:
    """The env's own reward."""
    return JaxTerm(lambda s, tr, p: (s, tr.env_reward.astype(jnp.float32)))


def step_penalty_term(ctx: TermContext, value: float = 0.01) -> JaxTerm:
    """``-value`` every step."""
    value = _num("value", value, "step_penalty")
    return JaxTerm(lambda s, tr, p: (s, jnp.full(tr.env_reward.shape, -p["value"], jnp.float32)), {"value": value})


def potential_term(ctx: TermContext, potential: str, gamma: float = 0.99, scale: float = 1.0,
                   params: dict[str, Any] | None = None) -> JaxTerm:
    """``γ·Φ(s')·(1 − terminated) − Φ(s)``, ``Φ = scale·φ``; truncation keeps ``γ·Φ(s')``."""
    # γ outside [0, 1] is not a discount; the invariance proof needs the learner's γ.
    if not 0.0 <= gamma <= 1.0:
        raise InvalidArgument(f"potential gamma must be in [0, 1], got {gamma}")
    scale = _num("scale", scale, "potential")
    if not isinstance(potential, str):
        raise InvalidArgument(f"the JAX potential term takes a registered potential name, got {potential!r}")
    if potential not in JAX_RL_POTENTIALS:
        raise InvalidArgument(f"potential {potential!r} has no JAX version; JAX potentials: "
                              f"{', '.join(JAX_RL_POTENTIALS.names())}")
    try:
        phi = JAX_RL_POTENTIALS.get(potential)(**(params or {}))
    except TypeError as e:
        raise InvalidArgument(f"potential {potential!r}: {e}") from e
    require_features(ctx.features, getattr(phi, "fields", ()), f"potential {potential!r}")
    g = float(gamma)

    def apply(s, tr, p):
        phi_s = jax.vmap(phi)(tr.prev).astype(jnp.float32) * p["scale"]
        phi_next = jax.vmap(phi)(tr.next).astype(jnp.float32) * p["scale"]
        # Φ(terminal) = 0; a truncated step keeps γ·Φ(s') because the MDP did not end there.
        return s, g * jnp.where(tr.terminated, 0.0, phi_next) - phi_s

    return JaxTerm(apply, {"scale": scale})


def novelty_term(ctx: TermContext, key: str = "agent_pos", scope: str = "global") -> JaxTerm:
    """``1/sqrt(N(s'))`` with ``N`` the visit count of the state field ``key`` (a discrete one:
    ``agent_pos`` on MiniGrid). ``episode``: counts per env, cleared when its episode ends;
    ``global``: one table for the run, the envs of a step counted in env order (as the numpy term)."""
    if scope not in ("global", "episode"):
        raise InvalidArgument(f"novelty scope must be 'global' or 'episode', got {scope!r}")
    domains = getattr(ctx.env, "count_features", {})
    if key not in domains:
        raise InvalidArgument(f"the JAX novelty term counts a discrete state field; {key!r} is not one of this "
                              f"env's ({', '.join(domains) or 'none: use a minigrid/... env'})")
    width, height = domains[key]
    size = width * height

    def index(f):
        return f[key][..., 1] * width + f[key][..., 0]

    if scope == "episode":
        def init(n):
            return jnp.zeros((n, size), jnp.int32)

        def apply(counts, tr, p):
            rows, idx = jnp.arange(counts.shape[0]), index(tr.next)
            n = counts[rows, idx] + 1
            counts = counts.at[rows, idx].set(n)
            counts = jnp.where(tr.done[:, None], 0, counts)
            return counts, n.astype(jnp.float32) ** -0.5
    else:
        def init(n):
            return jnp.zeros((size,), jnp.int32)

        def apply(counts, tr, p):
            idx = index(tr.next)
            m = idx.shape[0]
            earlier = (idx[:, None] == idx[None, :]) & (jnp.arange(m)[None, :] < jnp.arange(m)[:, None])
            n = counts[idx] + earlier.sum(axis=1) + 1
            return counts.at[idx].add(1), n.astype(jnp.float32) ** -0.5

    return JaxTerm(apply, {}, init)


def _event(hit: Callable[[JaxTransition], jax.Array], reward: float, repeatable: bool, kind: str) -> JaxTerm:
    reward = _num("reward", reward, kind)
    repeatable = bool(repeatable)

    def init(n):
        return jnp.zeros((n,), bool)

    def apply(fired, tr, p):
        h = hit(tr)
        if not repeatable:
            h = h & ~fired
            fired = fired | h
        fired = fired & ~tr.done  # a new episode may pay again
        return fired, jnp.where(h, p["reward"], 0.0).astype(jnp.float32)

    return JaxTerm(apply, {"reward": reward}, init)


def pickup_term(ctx: TermContext, item: str = "key", reward: float = 1.0, repeatable: bool = False) -> JaxTerm:
    """Pays when the agent picks up ``item`` (MiniGrid: ``key``, from the ``has_key`` state field)."""
    if item != "key":
        raise InvalidArgument(f"the JAX pickup term knows item 'key' (MiniGrid's carried key) only, got {item!r}")
    require_features(ctx.features, ("has_key",), "pickup")
    return _event(lambda tr: tr.next["has_key"] & ~tr.prev["has_key"], reward, repeatable, "pickup")


def open_door_term(ctx: TermContext, reward: float = 1.0, repeatable: bool = False) -> JaxTerm:
    """Pays when a door that was not open is open after the step."""
    require_features(ctx.features, ("door_open",), "open_door")
    return _event(lambda tr: tr.next["door_open"] & ~tr.prev["door_open"], reward, repeatable, "open_door")


def reach_goal_term(ctx: TermContext, reward: float = 1.0, repeatable: bool = False) -> JaxTerm:
    """Pays when the agent stands on the goal after the step."""
    require_features(ctx.features, ("at_goal",), "reach_goal")
    return _event(lambda tr: tr.next["at_goal"], reward, repeatable, "reach_goal")


def reach_term(ctx: TermContext, pos: list[int] | None = None, char: str | None = None, reward: float = 1.0,
               repeatable: bool = False) -> JaxTerm:
    """Pays when the agent stands on ``pos=[x, y]`` after the step (``char`` is MiniHack's: refused)."""
    if char is not None or pos is None or len(pos) != 2:
        raise InvalidArgument(f"the JAX reach term takes pos=[x, y] (char is MiniHack's map), got pos={pos!r}, "
                              f"char={char!r}")
    require_features(ctx.features, ("agent_pos",), "reach")
    target = jnp.asarray(pos, jnp.int32)
    return _event(lambda tr: (tr.next["agent_pos"] == target).all(axis=-1), reward, repeatable, "reach")


# -- the stack --------------------------------------------------------------------------------
class JaxRewardStack:
    """Weighted JAX terms: ``stack(states, tr, params) -> (states, total, {name: weighted value})``.

    The contributions add up to the total (before the optional ``clip``), as in ``RewardStack``.
    """

    def __init__(self, names: list[str], terms: list[JaxTerm], weights: list[float],
                 clip: tuple[float, float] | None = None):
        if not terms:
            raise ConfigError("at least one reward term is needed (e.g. [env])")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError(f"duplicate term names {dup}: give each an explicit name ('as:' in YAML)")
        if clip is not None and not clip[0] < clip[1]:
            raise ConfigError(f"clip low ({clip[0]}) must be smaller than clip high ({clip[1]})")
        self.names, self.terms, self.weights, self.clip = list(names), list(terms), list(weights), clip

    def default_params(self) -> dict[str, dict[str, jax.Array]]:
        """``{term: {"weight": w, <numeric param>: value}}`` as float32 scalars (vmap over a stack of these)."""
        return {n: {"weight": jnp.float32(w), **{k: jnp.asarray(v, jnp.float32) for k, v in t.params.items()}}
                for n, t, w in zip(self.names, self.terms, self.weights, strict=True)}

    def variant_params(self, overrides: dict[str, Any], name: str | None = None) -> dict[str, dict[str, jax.Array]]:
        """``default_params()`` with a variant's ``{"<term>.<param>": value}`` overrides applied.

        >>> from rewardlab.jax.envs import make_env
        >>> stack = build_jax_stack(["env", {"name": "step_penalty", "params": {"value": 0.1}}],
        ...                         make_env("gymnax/CartPole-v1"))
        >>> stack.variant_params({"step_penalty.weight": 0.0})["step_penalty"]
        {'weight': Array(0., dtype=float32), 'value': Array(0.1, dtype=float32)}
        """
        out = self.default_params()
        by_name = dict(zip(self.names, self.terms, strict=True))
        for key, value in overrides.items():
            term, _, param = str(key).partition(".")
            encoder = by_name[term].encoders.get(param) if term in by_name else None
            if encoder is not None:
                try:
                    out[term].update({k: jnp.asarray(v, jnp.float32) for k, v in encoder(value).items()})
                except RewardLabError as e:
                    raise ConfigError(f"reward.variants.{name}.{key}: {e}") from None
                continue
            if term not in out or param not in out[term]:
                valid = [f"{t}.{f}" for t, v in out.items() for f in v if jnp.ndim(v[f]) == 0]
                valid += [f"{t}.{f}" for t, jt in by_name.items() for f in jt.encoders]
                raise ConfigError(f"reward.variants.{name}.{key}: not a reward parameter a variant can set; "
                                  f"valid: {', '.join(valid)}")
            out[term][param] = jnp.float32(_num(key, value, f"reward.variants.{name}"))
        return out

    def init(self, num_envs: int) -> dict[str, Any]:
        return {n: t.init(num_envs) for n, t in zip(self.names, self.terms, strict=True)}

    def __call__(self, states: dict, tr: JaxTransition, params: dict) -> tuple[dict, jax.Array, dict]:
        out_states, parts = {}, {}
        total = jnp.zeros(tr.env_reward.shape, jnp.float32)
        for n, t in zip(self.names, self.terms, strict=True):
            out_states[n], value = t.apply(states[n], tr, params[n])
            parts[n] = value.astype(jnp.float32) * params[n]["weight"]
            total = total + parts[n]
        if self.clip is not None:
            total = jnp.clip(total, self.clip[0], self.clip[1])
        return out_states, total, parts

    def __repr__(self) -> str:
        inner = ", ".join(f"{w:g}*{n}" for n, w in zip(self.names, self.weights, strict=True))
        return f"JaxRewardStack({inner})"


def _features_shape(env: Any) -> dict:
    def fn(key):
        return env.features(env.reset(key, env.default_params)[1])

    return jax.eval_shape(fn, jax.random.PRNGKey(0))


def build_jax_stack(specs: list[Any], env: Any, *, gamma: float | None = None,
                    clip: tuple[float, float] | None = None) -> JaxRewardStack:
    """A ``JaxRewardStack`` for ``env`` (a ``JaxEnv``) from term specs (names or mappings, as in YAML)."""
    ctx = TermContext(env, _features_shape(env), gamma)
    names, terms, weights = [], [], []
    for spec in specs:
        spec = term_spec(spec)
        term = build_jax_term(spec, ctx)
        try:
            weight = _num("weight", spec.get("weight", 1.0), f"reward term {spec['name']!r}")
        except InvalidArgument as e:
            raise ConfigError(f"JAX reward term {spec['name']!r}: {e}") from e
        names.append(spec.get("as") or spec["name"])
        terms.append(term)
        weights.append(weight)
    return JaxRewardStack(names, terms, weights, clip)


def build_jax_term(spec: dict[str, Any], ctx: TermContext) -> JaxTerm:
    """One JAX term from a spec ``{name, params}`` (the weight is the stack's); ``ConfigError`` on a
    name without a JAX version or a bad parameter."""
    kind = spec["name"]
    if kind not in JAX_RL_TERMS:
        raise ConfigError(f"reward term {kind!r} has no JAX version (agent jax_ppo needs one); terms with one: "
                          f"{', '.join(JAX_RL_TERMS.names())}")
    factory = JAX_RL_TERMS.get(kind)
    params = dict(spec.get("params") or {})
    sig = inspect.signature(factory)
    valid = [p for p in sig.parameters if p != "ctx"]
    if "gamma" in sig.parameters and "gamma" not in params and ctx.gamma is not None:
        params["gamma"] = ctx.gamma
    unknown = [k for k in params if k not in valid]
    if unknown:
        raise ConfigError(f"JAX reward term {kind!r} has no parameter {unknown[0]!r}; "
                          f"valid parameters: {', '.join(valid) or '(none)'}")
    try:
        return factory(ctx, **params)
    except (InvalidArgument, TypeError, RewardLabError) as e:
        raise ConfigError(f"JAX reward term {kind!r}: {e}") from e


def stack_params(params: list[dict]) -> dict:
    """Reward params of several variants stacked on a leading axis (what ``jax.vmap`` maps over)."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *params)
