"""The ``RewardTerm`` protocol, a convenience base class, and the term registry.

A term maps a batched ``Transition`` to one float32 value per env, as a new array each call
(the stack may keep it as-is in ``info["reward_terms"]``). ``Term`` declares every hook a
term may use, with no-op defaults (see its docstring): the stack hooks ``reset``, ``bind`` and
``observe_reset``, which the ``RewardStack`` calls under any agent, and the agent hooks
``AGENT_HOOKS`` (``update``, ``extra_advantages``, ``discount``, ``bind_agent``,
``state_dict``), which only agents that honour them call. A term uses a hook by overriding it.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rewardlab.core.registry import Registry
from rewardlab.core.transition import Transition
from rewardlab.errors import ConfigError, InvalidArgument

__all__ = ["RewardTerm", "Term", "AGENT_HOOKS", "STACK_HOOKS", "HookInfo", "term_agent_hooks", "TERMS",
           "register_term", "build_term", "build_stack", "term_spec", "require_info"]


@runtime_checkable
class RewardTerm(Protocol):
    name: str

    def reset(self, env_ids: np.ndarray) -> None: ...

    def __call__(self, t: Transition) -> np.ndarray: ...


@dataclass(frozen=True)
class HookInfo:
    """An agent hook: what a term does through it, and what an agent must do to honour it."""

    name: str
    uses: str
    """how a term that overrides the hook depends on it ("learns through update()")"""
    agent_does: str
    """what an agent that honours the hook does with it ("calls", "reads")"""
    when: str
    """when an agent that honours it does so, and what for"""


AGENT_HOOKS: dict[str, HookInfo] = {h.name: h for h in (
    HookInfo("update", "learns through update()", "calls",
             "after every policy update, with the rollout; the dict it returns is logged as "
             "`reward_terms/<term>/<key>`"),
    HookInfo("extra_advantages", "adds advantages through extra_advantages()", "calls",
             "before every policy update; `(n_steps, n_envs)` values added to the advantages"),
    HookInfo("discount", "sets the learner's discount through discount", "reads",
             "every iteration, before GAE: a float in (0, 1] replaces the agent's γ (None keeps it)"),
    HookInfo("bind_agent", "reaches the agent through bind_agent()", "calls",
             "once, when the agent is built (to differentiate through its update)"),
    HookInfo("state_dict", "checkpoints its learned state through state_dict()/load_state_dict()", "calls",
             "with every checkpoint the agent saves and loads"),
)}
"""The hooks of learnable terms that agents call, in a fixed order; each agent declares which
it honours (``HONOURED_HOOKS`` in the agents' manifests) and the config check refuses a term
that needs a hook its agent ignores."""

STACK_HOOKS = ("reset", "bind", "observe_reset")
"""Hooks the ``RewardStack`` calls on every term, under any agent."""

# Names a subclass may not define unless they are exactly a hook: near misses are refused.
_HOOK_NAMES = (*STACK_HOOKS, *AGENT_HOOKS, "load_state_dict")
_METHOD_HOOKS = ("reset", "bind", "observe_reset", "update", "extra_advantages", "bind_agent", "state_dict",
                 "load_state_dict")


class Term:
    """Base class of reward terms: subclasses implement ``__call__`` and override the hooks they use.

    Stack hooks, called by the ``RewardStack`` under any agent:

    - ``reset(env_ids)``: episodes of ``env_ids`` start (forget their per-env state);
    - ``bind(num_envs)``: once, before the first episode, to size per-env state;
    - ``observe_reset(obs, info, env_ids)``: after episodes start, with the batched reset
      observation/info (rows ``env_ids`` are new) — dynamic potentials cache Φ(s₀) here.

    Agent hooks (``AGENT_HOOKS``), called only by agents that honour them (``ppo``, ``pg`` and
    ``text_ppo`` honour all; see ``docs/concepts.md``):

    - ``update(rollout) -> dict[str, float]``: after every policy update, with the rollout
      batch; the agent logs the result as ``reward_terms/<term>/<key>``;
    - ``extra_advantages(rollout) -> (n_steps, n_envs)``: added to the agent's advantages;
    - ``discount``: a float in (0, 1] replaces the agent's γ in its advantages (None: keep it);
    - ``bind_agent(agent)``: once, when the agent is built (to differentiate through its update);
    - ``state_dict()`` / ``load_state_dict(state)``: saved and restored with the agent's checkpoint.

    ``agent_hooks()`` lists the agent hooks a class overrides; ``required_agent_hooks(params)``
    those a term built from ``params`` cannot work without (all it overrides, unless a class
    says otherwise). A public attribute whose name is a near miss of a hook name
    (``updte``, ``observe_rest``) is refused when the class is defined: a misspelt hook would
    never be called. A name that only looks like a hook goes in the class keyword
    ``not_hooks``:

    >>> class Counter(Term):
    ...     def __call__(self, t):
    ...         return np.zeros(t.num_envs, np.float32)
    ...     def update(self, rollout):
    ...         return {"calls": 1.0}
    >>> sorted(Counter.agent_hooks())
    ['update']
    >>> class Typo(Term):  # doctest: +ELLIPSIS
    ...     def updte(self, rollout):
    ...         return {}
    Traceback (most recent call last):
    ...
    TypeError: Typo.updte looks like a misspelt hook 'update' of rewardlab.core.Term (hooks: reset, ...
    """

    name: str = "term"

    def __init_subclass__(cls, *, not_hooks: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        allowed = frozenset(not_hooks)
        for klass in cls.__mro__:
            allowed |= vars(klass).get("_not_hooks", frozenset())
        cls._not_hooks = allowed
        for attr in vars(cls):
            if attr.startswith("_") or attr in _HOOK_NAMES or attr in allowed:
                continue
            close = difflib.get_close_matches(attr, _HOOK_NAMES, n=1, cutoff=0.8)
            if close:
                raise TypeError(
                    f"{cls.__name__}.{attr} looks like a misspelt hook {close[0]!r} of rewardlab.core.Term "
                    f"(hooks: {', '.join(_HOOK_NAMES)}); rename it, or declare it with "
                    f"class {cls.__name__}(Term, not_hooks=[{attr!r}])")
        for attr in _METHOD_HOOKS:
            if attr in vars(cls) and not callable(vars(cls)[attr]):
                raise TypeError(f"{cls.__name__}.{attr} must be a method (it is a Term hook)")
        if "discount" in vars(cls) and callable(vars(cls)["discount"]):
            raise TypeError(f"{cls.__name__}.discount must be a property or a value, not a method "
                            "(agents read term.discount)")
        if _overrides(cls, "state_dict") != _overrides(cls, "load_state_dict"):
            raise TypeError(f"{cls.__name__} overrides one of state_dict()/load_state_dict(): "
                            "override both, or neither")

    # -- stack hooks ---------------------------------------------------------------------
    def reset(self, env_ids: np.ndarray) -> None:
        """Forget per-env episode state of ``env_ids`` (default: nothing to forget)."""

    def bind(self, num_envs: int) -> None:
        """Size per-env state for ``num_envs`` envs (default: no per-env state)."""

    def observe_reset(self, obs: Any, info: dict, env_ids: np.ndarray) -> None:
        """See the reset observations of the new episodes ``env_ids`` (default: ignore them)."""

    def __call__(self, t: Transition) -> np.ndarray:
        raise NotImplementedError

    # -- fused evaluation (optional; used by the RewardStack, see RewardStack.evaluate) --------
    def _constant(self) -> float | None:
        """The term's value if it is the same for every env on every step (the stack then
        fills its row once), else None (default). Must agree with ``__call__``:
        ``self(t) == np.full(t.num_envs, value, np.float32)``."""
        return None

    def _evaluate_into(self, t: Transition, out: np.ndarray, full: bool) -> bool:
        """Write this step's values into ``out`` (the term's float32 row in the stack's matrix)
        and return True, with exactly the values (and state updates) of ``self(t)``; or return
        False, and the stack calls the term instead. ``full``: ``t`` is the whole bound batch
        in order (``t.env_ids`` is ``RewardStack.all_ids``). The stack does not check these
        values (only their finite sum), so only trusted built-in terms override it."""
        return False

    # -- agent hooks ---------------------------------------------------------------------
    def update(self, rollout: Any) -> dict[str, float]:
        """Learn from the agent's rollout after its policy update; return metrics to log."""
        return {}

    def extra_advantages(self, rollout: Any) -> np.ndarray:
        """``(n_steps, n_envs)`` values added to the agent's advantages (default: none)."""
        return np.zeros(np.shape(rollout.rewards), np.float32)

    @property
    def discount(self) -> float | None:
        """A discount in (0, 1] that replaces the agent's γ in its advantages, or None (default).

        Override it on the class (a property, or ``discount = None`` to set it per instance):
        the class declares the hook, so the config check sees it."""
        return None

    @discount.setter
    def discount(self, value: float | None) -> None:
        raise AttributeError(f"{type(self).__name__} does not declare the discount hook: put `discount = None` "
                             "(or a property) in the class body to set it per instance")

    def bind_agent(self, agent: Any) -> None:
        """Called once by the agent that trains on this term (default: ignore it)."""

    def state_dict(self) -> dict[str, Any]:
        """Learned state saved with the agent's checkpoint (default: none)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""

    @classmethod
    def agent_hooks(cls) -> frozenset[str]:
        """The agent hooks (names in ``AGENT_HOOKS``) this class overrides."""
        return frozenset(h for h in AGENT_HOOKS
                         if _overrides(cls, h) or (h == "state_dict" and _overrides(cls, "load_state_dict")))

    @classmethod
    def required_agent_hooks(cls, params: Mapping[str, Any]) -> frozenset[str]:
        """The agent hooks a term built with ``params`` cannot work without (default: all it
        overrides). A class whose hook only reports (e.g. counters from ``update``) returns less."""
        return cls.agent_hooks()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _overrides(cls: type, attr: str) -> bool:
    """Whether ``cls`` gets ``attr`` from a class other than ``Term`` (first in its MRO)."""
    for klass in cls.__mro__:
        if attr in vars(klass):
            return klass is not Term
    return False


def term_agent_hooks(term: Any) -> frozenset[str]:
    """The agent hooks ``term`` uses: a ``Term``'s overridden hooks; none for a plain
    ``RewardTerm`` (an object with ``name``, ``reset`` and ``__call__``). A plain object that
    defines a hook is refused: agents call hooks only through ``Term``, so it would never be called.
    """
    if isinstance(term, Term):
        return type(term).agent_hooks()
    defined = [h for h in (*AGENT_HOOKS, "load_state_dict") if h in dir(type(term))]
    if defined:
        raise InvalidArgument(
            f"reward term {getattr(term, 'name', term)!r} defines {defined[0]} but is not a rewardlab.core.Term: "
            "agents call hooks only on Term subclasses, so subclass Term to use it")
    return frozenset()


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

