"""The ``RewardTerm`` protocol, a convenience base class, and the term registry.

A term maps a batched ``Transition`` to one float32 value per env, as a new array each call
(the stack may keep it as-is in ``info["reward_terms"]``). Optional hooks, called
only when a term defines them:

- ``bind(num_envs)``: once, before the first episode, to size per-env state;
- ``observe_reset(obs, info, env_ids)``: after episodes start, with the batched reset
  observation/info (rows ``env_ids`` are new) — dynamic potentials cache Φ(s₀) here;
- ``update(batch) -> dict[str, float]``: learnable terms; the agent calls it with rollouts
  and logs what it returns.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rewardlab.core.registry import Registry
from rewardlab.core.transition import Transition
from rewardlab.errors import ConfigError, InvalidArgument

__all__ = ["RewardTerm", "Term", "TERMS", "register_term", "build_term", "build_stack", "term_spec", "require_info"]


@runtime_checkable
class RewardTerm(Protocol):
    name: str

    def reset(self, env_ids: np.ndarray) -> None: ...

    def __call__(self, t: Transition) -> np.ndarray: ...


class Term:
    """Base class with no-op hooks; subclasses implement ``__call__``."""

    name: str = "term"

    def reset(self, env_ids: np.ndarray) -> None:
        """Forget per-env episode state of ``env_ids`` (default: nothing to forget)."""

    def __call__(self, t: Transition) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def require_info(info: dict[str, Any] | None, key: str, who: str, hint: str = "") -> Any:
    """``info[key]``, or an ``InvalidArgument`` naming ``who``, the key and the keys the env does provide.

    >>> require_info({"chars": 1}, "chars", "event term 'reach'")
    1
    >>> try:
    ...     require_info({"chars": 1}, "message", "event term 'message'")
    ... except InvalidArgument as e:
    ...     print(e)
    event term 'message' needs info['message'], which this env does not provide (info keys: chars)
    """
    if info is None or key not in info:
        shown = sorted(k for k in (info or {}) if not k.startswith("_"))
        raise InvalidArgument(f"{who} needs info[{key!r}], which this env does not provide "
                              f"(info keys: {', '.join(shown) or '(none)'}){hint}")
    return info[key]


# Built-in terms are declared in the TERMS mapping of package manifests (shaping/manifest.py,
# envs/manifest.py); ``register_term`` is for terms defined outside the package.
TERMS: Registry[type] = Registry("reward term", manifest="TERMS")


def register_term(name: str):
    """Class decorator: make a term buildable from YAML by ``name``.

    >>> @register_term("doc_constant")
    ... class Constant(Term):
    ...     def __init__(self, value: float = 1.0):
    ...         self.value = value
    ...     def __call__(self, t):
    ...         return np.full(t.num_envs, self.value, np.float32)
    >>> t = Transition(0, 0, 0, np.zeros(3), np.zeros(3, bool), np.zeros(3, bool))
    >>> build_term("doc_constant", {"value": 2.0})(t)
    array([2., 2., 2.], dtype=float32)
    >>> TERMS.unregister("doc_constant")
    """

    def wrap(cls: type) -> type:
        TERMS.register(name, value=cls)
        if cls.__dict__.get("name") in (None, "term"):  # inherited names do not count
            cls.name = name
        return cls

    return wrap


def build_term(kind: str, params: dict[str, Any] | None = None, *, name: str | None = None,
               gamma: float | None = None) -> Any:
    """Build a registered term from its name and keyword parameters.

    ``gamma`` is the learner's discount; it is passed to terms whose constructor takes a
    ``gamma`` argument unless the parameters set it explicitly (potential-based shaping must
    use the learner's γ to keep the optimal policy unchanged).
    """
    cls = TERMS.get(kind)
    params = dict(params or {})
    sig = inspect.signature(cls)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if "gamma" in sig.parameters and "gamma" not in params and gamma is not None:
        params["gamma"] = gamma
    unknown = [k for k in params if k not in sig.parameters and not accepts_any]
    if unknown:
        valid = [p for p in sig.parameters if p != "self"]
        raise ConfigError(
            f"reward term {kind!r} has no parameter {unknown[0]!r}; "
            f"valid parameters: {', '.join(valid) or '(none)'}"
        )
    try:
        term = cls(**params)
    except InvalidArgument as e:
        raise ConfigError(f"reward term {kind!r}: {e}") from e
    except TypeError as e:
        raise ConfigError(f"reward term {kind!r}: {e}") from e
    term.name = name or kind
    return term


def term_spec(spec: Any, kind: str = "reward term") -> dict[str, Any]:
    """A term spec as a mapping: a bare name becomes ``{"name": name}``; anything but the fields
    ``name``, ``weight``, ``params``, ``as`` is a ``ConfigError`` (``kind`` names what it is).

    >>> term_spec("env")
    {'name': 'env'}
    """
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(f"a {kind} must be a name or a mapping with 'name', got {spec!r}")
    extra = set(spec) - {"name", "weight", "params", "as"}
    if extra:
        raise ConfigError(f"{kind} {spec['name']!r}: unknown field(s) {sorted(extra)}; "
                          "allowed: name, weight, params, as")
    return spec


def build_stack(specs: list[Any], *, gamma: float | None = None, clip: tuple[float, float] | None = None):
    """A ``RewardStack`` from specs: names (``"env"``) or dicts
    ``{"name": kind, "weight": w, "params": {...}, "as": display_name}``.

    >>> build_stack(["env", {"name": "step_penalty", "weight": 2.0, "params": {"value": 0.1}}])
    RewardStack(1*env, 2*step_penalty)
    """
    from rewardlab.core.stack import RewardStack

    terms, weights = [], []
    for spec in specs:
        spec = term_spec(spec)
        terms.append(build_term(spec["name"], spec.get("params"), name=spec.get("as"), gamma=gamma))
        weights.append(float(spec.get("weight", 1.0)))
    try:
        return RewardStack(terms, weights, clip=clip)
    except InvalidArgument as e:
        raise ConfigError(str(e)) from e

