"""Regret on tabular MDPs: what a reward distance is meant to predict.

Contents: ``policy_values`` (exact evaluation of a deterministic policy), ``optimal_policy``
(policy iteration), ``policy_return`` and ``normalized_regret``.

``normalized_regret(r1, r2, T, γ)`` = ``(J₁(π₁) − J₁(π₂)) / (J₁(π₁) − J₁(π_worst))``: π₁ is optimal
for ``r1``, π₂ optimal for ``r2``, π_worst worst for ``r1``, and ``J₁`` is the expected discounted
return under ``r1`` from the initial distribution. 0 when optimising ``r2`` is as good as
optimising ``r1``; 1 when it is as bad as the worst policy.

>>> rng = np.random.default_rng(0)
>>> T = rng.dirichlet(np.ones(4), size=(4, 2))
>>> r = rng.normal(size=(4, 2, 4))
>>> normalized_regret(r, r, T, 0.9), normalized_regret(r, -r, T, 0.9)
(0.0, 1.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardlab.errors import InvalidArgument
from rewardlab.metrics._checks import check_dist, check_gamma, check_pair, check_reward, check_transitions

__all__ = ["policy_values", "optimal_policy", "policy_return", "normalized_regret"]

# Policy iteration switches action only for a Q-value gain above this, so ties (equal Q
# values up to round-off) cannot make it cycle.
IMPROVE_TOL = 1e-10


def _check_policy(policy: Any, ns: int, na: int) -> np.ndarray:
    pi = np.asarray(policy)
    if pi.shape != (ns,) or not np.issubdtype(pi.dtype, np.integer) or (pi < 0).any() or (pi >= na).any():
        raise InvalidArgument(f"policy must be {ns} integer actions in [0, {na}), one per state, got {policy!r}")
    return pi


def policy_values(r: Any, transitions: Any, gamma: float, policy: Any) -> np.ndarray:
    """``V^π(s)`` of the deterministic ``policy`` (one action per state), by a linear solve.

    >>> T = np.ones((1, 1, 1)); r = np.ones((1, 1, 1))
    >>> policy_values(r, T, 0.5, np.array([0]))   # 1 + 0.5 + 0.25 + ...
    array([2.])
    """
    r = check_reward(r)
    g = check_gamma(gamma, below_one=True)
    t = check_transitions(transitions, r.shape)
    ns, na, _ = r.shape
    pi = _check_policy(policy, ns, na)
    rows = np.arange(ns)
    p_pi = t[rows, pi]  # (S, S')
    r_pi = np.sum(p_pi * r[rows, pi], axis=1)
    return np.linalg.solve(np.eye(ns) - g * p_pi, r_pi)


def optimal_policy(r: Any, transitions: Any, gamma: float, *, maximize: bool = True) -> np.ndarray:
    """A deterministic optimal policy (``maximize=False``: a worst one), by policy iteration.

    >>> T = np.zeros((2, 2, 2)); T[:, 0, 0] = 1; T[:, 1, 1] = 1     # action a goes to state a
    >>> r = np.zeros((2, 2, 2)); r[:, :, 1] = 1.0                   # being paid for entering state 1
    >>> optimal_policy(r, T, 0.9), optimal_policy(r, T, 0.9, maximize=False)
    (array([1, 1]), array([0, 0]))
    """
    r = check_reward(r)
    g = check_gamma(gamma, below_one=True)
    t = check_transitions(transitions, r.shape)
    sign = 1.0 if maximize else -1.0
    rs = sign * r
    expected_r = np.sum(t * rs, axis=2)  # (S, A)
    pi = expected_r.argmax(axis=1)
    rows = np.arange(r.shape[0])
    for _ in range(10 * r.shape[0] * r.shape[1] + 10):  # policy iteration ends in ≤ A^S steps; far fewer in practice
        v = policy_values(rs, t, g, pi)
        q = expected_r + g * t @ v
        best = q.argmax(axis=1)
        improve = q[rows, best] > q[rows, pi] + IMPROVE_TOL * (1.0 + np.abs(q[rows, pi]))
        if not improve.any():
            return pi
        pi = np.where(improve, best, pi)
    raise RuntimeError("policy iteration did not converge")  # pragma: no cover - a bug, not bad input


def policy_return(r: Any, transitions: Any, gamma: float, policy: Any, initial_dist: Any = None) -> float:
    """``J(π) = Σ_s μ₀(s)·V^π(s)`` (``initial_dist`` μ₀ uniform by default)."""
    v = policy_values(r, transitions, gamma, policy)
    mu0 = check_dist(initial_dist, v.shape, "initial_dist")
    return float(v.mean() if mu0 is None else mu0 @ v)


def normalized_regret(r1: Any, r2: Any, transitions: Any, gamma: float, initial_dist: Any = None) -> float:
    """``(J₁(π₁) − J₁(π₂)) / (J₁(π₁) − J₁(π_worst))`` in [0, 1] (see the module doc).

    Raises ``InvalidArgument`` when every policy has the same return under ``r1`` (the ratio
    is 0/0: ``r1`` expresses no preference).
    """
    a, b = check_pair(r1, r2)
    t = check_transitions(transitions, a.shape)
    g = check_gamma(gamma, below_one=True)

    def j(pi: np.ndarray) -> float:
        return policy_return(a, t, g, pi, initial_dist)

    best = j(optimal_policy(a, t, g))
    worst = j(optimal_policy(a, t, g, maximize=False))
    span = best - worst
    if span <= 1e-12 * (1.0 + abs(best)):
        raise InvalidArgument(f"r1 gives every policy the same return ({best:.6g}) from initial_dist: "
                              "normalised regret is 0/0")
    regret = (best - j(optimal_policy(b, t, g))) / span
    return float(min(max(regret, 0.0), 1.0))  # the clip only removes round-off
