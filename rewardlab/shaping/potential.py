"""Potential-based shaping ``F = γ·Φ(s') − Φ(s)`` (Ng, Harada & Russell 1999).

Rules that keep the optimal policy unchanged, each tested by value iteration on random MDPs
(``tests/shaping/test_potential_invariance.py``):

- γ is the *learner's* discount (the runner passes the agent's γ unless set explicitly);
- ``Φ(terminal) = 0``: on ``terminated`` the term is ``−Φ(s)``;
- on ``truncated`` the episode did not end in the MDP, so ``γ·Φ(s')`` is kept;
- Φ(s) is cached when ``s`` is entered, so a potential that changes during training
  (learned, or one that reads the visible map) is telescoped consistently.

A potential is a callable ``phi(obs, info) -> np.ndarray`` over a batch (``info`` is the
vector-form info of the same states, or ``None`` where it is not known), called with two
positional arguments, so its parameters may have any names (``lambda o, i: ...``). Built-in named
potentials are declared in the ``POTENTIALS`` mapping of a package manifest (``shaping/manifest.py``,
``envs/manifest.py``); register your own with ``@register_potential("name")`` or pass
``"package.module:function"``.

A potential whose value for each row depends on that row alone may say so with
``phi.rowwise = True`` (the MiniHack potentials do): new episodes' Φ(s₀) is then read from one
call on the whole reset batch instead of a call on a copy of the new rows (``batch_index`` /
``select_info`` of every observation and info key), which costs more than the rows it saves.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from rewardlab.core.registry import Registry, load_attr
from rewardlab.core.terms import Term
from rewardlab.core.transition import Transition, batch_index, select_info
from rewardlab.errors import ConfigError, InvalidArgument, TermOutputError

__all__ = ["PotentialShaping", "POTENTIALS", "register_potential", "resolve_potential"]

Potential = Callable[[Any, dict | None], np.ndarray]
POTENTIALS: Registry[Callable[..., Potential]] = Registry("potential", manifest="POTENTIALS")


def register_potential(name: str):
    """Register a potential factory: ``factory(**params) -> phi(obs, info)``."""
    return POTENTIALS.decorator(name)


def resolve_potential(potential: str | Potential, params: dict[str, Any] | None = None) -> Potential:
    """A potential from a registered name, an import path, or a callable."""
    params = params or {}
    if callable(potential):
        factory: Any = potential
    elif ":" in potential:
        factory = load_attr(potential)
    else:
        factory = POTENTIALS.get(potential)
    if _is_potential(factory, potential, params):
        if params:
            raise ConfigError(f"potential {potential!r} is a plain function and takes no params, got {sorted(params)}")
        return factory
    try:
        return factory(**params)
    except TypeError as e:
        raise ConfigError(f"potential {potential!r}: {e}") from e


def _is_potential(fn: Any, potential: Any, params: dict[str, Any]) -> bool:
    """Whether ``fn`` is the potential ``phi(obs, info)`` itself (else it is a factory of one).

    ``phi`` is called positionally, so its parameters may have any names (``lambda o, i: ...``).
    A function whose first two parameters are ``obs, info`` is a potential; otherwise one that
    needs exactly two positional arguments (or takes ``*args``) is a potential (unless ``params``
    are given, which only a factory takes), and one callable with no arguments
    (``stairs_distance(cap=20.0)``) is a factory. Anything else cannot be either: a clear error names its signature.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: assume phi(obs, info)
        return True
    if list(sig.parameters)[:2] == ["obs", "info"]:
        return True
    if params:
        return False

    def binds(*args: Any) -> bool:
        try:
            sig.bind(*args)
        except TypeError:
            return False
        return True

    positional_rest = any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values())
    if binds(None, None) and (positional_rest or not binds()):  # a factory takes keyword params only
        return True
    if binds():
        return False
    label = potential if isinstance(potential, str) else getattr(potential, "__name__", type(potential).__name__)
    raise ConfigError(f"potential {label!r} has signature {sig}: a potential is called as phi(obs, info) with two "
                      f"positional arguments (any names: lambda o, i: ...), a potential factory as factory(**params)")


class PotentialShaping(Term):
    """``γ·Φ(s') − Φ(s)`` with ``Φ(terminal) = 0``; truncation keeps ``γ·Φ(s')``.

    >>> phi = lambda obs, info: np.asarray(obs, np.float32)     # Φ(s) = s
    >>> term = PotentialShaping(phi, gamma=0.5)
    >>> term.bind(2)
    >>> term.observe_reset(np.array([1.0, 1.0]), {}, np.arange(2))
    >>> t = Transition(np.array([1.0, 1.0]), None, np.array([4.0, 4.0]), np.zeros(2),
    ...                terminated=np.array([False, True]), truncated=np.array([False, False]))
    >>> term(t)   # 0.5*4 - 1 = 1, and at a terminal state 0 - 1 = -1
    array([ 1., -1.], dtype=float32)
    """

    name = "potential"

    def __init__(self, potential: str | Potential, gamma: float = 0.99, scale: float = 1.0,
                 params: dict[str, Any] | None = None):
        # γ outside [0, 1] is not a discount; the invariance proof needs the learner's γ.
        if not 0.0 <= gamma <= 1.0:
            raise InvalidArgument(f"potential gamma must be in [0, 1], got {gamma}")
        if not np.isfinite(scale):
            raise InvalidArgument(f"potential scale must be finite, got {scale}")
        self.phi = resolve_potential(potential, params)
        self.potential_name = potential if isinstance(potential, str) else getattr(potential, "__name__", "phi")
        self.gamma, self.scale = float(gamma), float(scale)
        self._rowwise = bool(getattr(self.phi, "rowwise", False))
        self._arange = np.arange(0)
        self._cache = np.zeros(0, np.float32)
        self._valid = np.zeros(0, bool)
        self._all_valid = False

    def bind(self, num_envs: int) -> None:
        self._arange = np.arange(num_envs)
        self._cache = np.zeros(num_envs, np.float32)
        self._valid = np.zeros(num_envs, bool)
        self._all_valid = False

    def _phi(self, obs: Any, info: dict | None, n: int) -> np.ndarray:
        value = np.asarray(self.phi(obs, info), np.float32)
        if value.ndim != 1:
            value = value.reshape(-1)
        if value.shape != (n,):
            raise TermOutputError(f"potential {self.potential_name!r} must return {n} values, got shape {value.shape}")
        # Finiteness: a non-finite Φ makes this term's output non-finite, and the stack's
        # per-step check then names this term.
        return value * self.scale if self.scale != 1.0 else value

    def reset(self, env_ids: np.ndarray) -> None:
        if len(self._valid):
            self._valid[env_ids] = False
            self._all_valid = False

    def observe_reset(self, obs: Any, info: dict, env_ids: np.ndarray) -> None:
        if len(env_ids) == 0:
            return
        last = max(np.asarray(env_ids).tolist())  # (a few ids: cheaper than np.max)
        if len(self._cache) <= last:
            self.bind(last + 1)
        if self._rowwise:
            phi_all = np.asarray(self.phi(obs, info), np.float32).reshape(-1)
            if len(phi_all) <= last:
                raise TermOutputError(f"potential {self.potential_name!r} returned {len(phi_all)} values for a "
                                      f"batch with env {last}")
            phi0 = phi_all[env_ids]
            if self.scale != 1.0:
                phi0 = phi0 * self.scale
        else:
            phi0 = self._phi(batch_index(obs, env_ids), select_info(info, env_ids), len(env_ids))
        if not np.isfinite(phi0).all():  # cached, so it would surface only a step later
            raise TermOutputError(f"potential {self.potential_name!r} must return finite values, got {phi0!r}")
        self._cache[env_ids] = phi0
        self._valid[env_ids] = True
        self._all_valid = np.count_nonzero(self._valid) == len(self._valid)

    def _evaluate_into(self, t: Transition, out: np.ndarray, full: bool) -> bool:
        # The stack's fused path: the whole bound batch with every Φ(s) cached (every step of
        # a wrapped env). The same float32 operations as __call__, written into the row.
        if not (full and self._all_valid and len(self._cache) == t.num_envs):
            return False
        phi_next = self._phi(t.next_obs, t.info, t.num_envs)
        # γ·where(terminated, 0, Φ(s')) as γ·Φ(s') with the terminated rows set to +0 (γ·0 is +0
        # for γ ≥ 0): the same bits, without np.where's temporary.
        np.multiply(phi_next, self.gamma, out=out)
        np.putmask(out, t.terminated, 0.0)
        out -= self._cache
        self._cache[:] = phi_next
        return True

    def __call__(self, t: Transition) -> np.ndarray:
        ids = t.env_ids
        # The common case — every env of the bound batch, in order — uses slices, not gathers:
        # this term runs every step, right after the env has flushed the CPU caches.
        full = len(ids) == len(self._cache) and np.array_equal(ids, self._arange)
        if not full and (len(self._cache) < t.num_envs or len(self._cache) <= int(np.max(ids))):
            self.bind(max(t.num_envs, int(np.max(ids)) + 1))
        phi_s = self._cache.copy() if full else self._cache[ids]
        if not self._all_valid:
            missing = ~self._valid[ids]
            if missing.any():
                # No reset was observed for these envs (direct use): Φ(s) from the obs alone.
                rows = np.flatnonzero(missing)
                phi_s[rows] = self._phi(batch_index(t.obs, rows), None, len(rows))
        phi_next = self._phi(t.next_obs, t.info, t.num_envs)
        # Φ(terminal) = 0; a truncated step keeps γ·Φ(s') because the MDP did not end there.
        shaped = self.gamma * np.where(t.terminated, np.float32(0.0), phi_next) - phi_s
        if full:
            self._cache[:] = phi_next
            if not self._all_valid:
                self._valid[:] = True
                self._all_valid = True
        else:
            self._cache[ids] = phi_next
            self._valid[ids] = True
        return shaped.astype(np.float32)
