"""Exact reward distances on tabular MDPs: rewards are ``(S, A, S)`` arrays ``R[s, a, s']``.

Contents:

- canonicalisations (remove potential shaping): ``epic_canon`` (Gleave et al. 2021),
  ``dard_canon`` (Wulfe et al. 2022, expectations under the transition model),
  ``minimal_canon`` (STARC, Skalse et al. 2023: the shaping that minimises a weighted L2 norm);
- ``pearson_distance``, ``lp_norm``, ``normalize``: the building blocks;
- ``epic_distance``, ``dard_distance``, ``starc_distance``, ``direct_distance``: the distances;
- ``shape_reward``: ``R + γ·Φ(s') − Φ(s)`` (for tests and experiments).

Every weighting is a distribution: ``state_dist`` (D_S) and ``action_dist`` (D_A) in the
canonicalisations, ``coverage`` over ``S×A×S`` in the norms and the Pearson correlation. All
default to uniform, like the tabular functions of the EPIC reference code.

>>> rng = np.random.default_rng(0)
>>> r = rng.normal(size=(4, 2, 4))
>>> shaped = 3.0 * shape_reward(r, rng.normal(size=4), gamma=0.9)   # same incentives
>>> round(epic_distance(r, shaped, gamma=0.9), 12)
0.0
>>> round(starc_distance(r, -r, gamma=0.9), 6)                        # opposite incentives
2.0
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from rewardlab.metrics._checks import (
    check_choice,
    check_dist,
    check_gamma,
    check_norm,
    check_pair,
    check_reward,
    check_transitions,
)

__all__ = [
    "CANONS", "shape_reward", "epic_canon", "dard_canon", "minimal_canon", "canonicalize", "lp_norm",
    "normalize", "pearson_distance", "direct_distance", "epic_distance", "dard_distance", "starc_distance",
]

CANONS = ("epic", "dard", "minimal", "none")
# A canonicalised reward whose norm is below ZERO_RTOL × the raw reward's norm is zero: what
# is left of pure shaping after float64 round-off (≈1e-16 relative) must count as nothing.
ZERO_RTOL = 1e-9


def shape_reward(r: Any, potential: Any, gamma: float) -> np.ndarray:
    """``R(s, a, s') + γ·Φ(s') − Φ(s)`` for a state potential ``Φ`` of shape ``(S,)``.

    >>> shape_reward(np.zeros((2, 1, 2)), np.array([0.0, 1.0]), 0.5)[:, 0, :]
    array([[ 0. ,  0.5],
           [-1. , -0.5]])
    """
    r = check_reward(r)
    phi = np.asarray(potential, np.float64)
    if phi.shape != (r.shape[0],):
        from rewardlab.errors import InvalidArgument

        raise InvalidArgument(f"potential must have shape ({r.shape[0]},), one value per state, got {phi.shape}")
    g = check_gamma(gamma)
    return r + g * phi[None, None, :] - phi[:, None, None]


def _uniform(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


def epic_canon(r: Any, gamma: float, state_dist: Any = None, action_dist: Any = None) -> np.ndarray:
    """EPIC's canonical reward: ``R(s,a,s') + γ·E[R(s',A,S')] − E[R(s,A,S')] − γ·E[R(S,A,S')]``
    with ``S, S' ~ D_S`` and ``A ~ D_A`` independent. Removes any potential shaping exactly.

    >>> r = np.arange(8.0).reshape(2, 2, 2)
    >>> np.allclose(epic_canon(shape_reward(r, np.array([1.0, -2.0]), 0.9), 0.9), epic_canon(r, 0.9))
    True
    """
    r = check_reward(r)
    g = check_gamma(gamma)
    ns, na, _ = r.shape
    d_s = check_dist(state_dist, (ns,), "state_dist")
    d_a = check_dist(action_dist, (na,), "action_dist")
    d_s = _uniform(ns) if d_s is None else d_s
    d_a = _uniform(na) if d_a is None else d_a
    mean_from = np.einsum("sax,a,x->s", r, d_a, d_s)  # E[R(s, A, S')]
    total = float(d_s @ mean_from)  # E[R(S, A, S')]
    return r + g * mean_from[None, None, :] - mean_from[:, None, None] - g * total


def dard_canon(r: Any, transitions: Any, gamma: float, action_dist: Any = None) -> np.ndarray:
    """DARD's canonical reward: ``R(s,a,s') + γ·E[R(s',A,S'')] − E[R(s,A,S')] − γ·E[R(S',A,S'')]``
    with ``A ~ D_A``, ``S' ~ T(s, A)``, ``S'' ~ T(s', A)`` (one ``A`` for both successors).

    Costs ``O(A·S³)`` (the cross term is ``T_a R_a T_aᵀ`` per action).

    >>> rng = np.random.default_rng(1)
    >>> T = rng.dirichlet(np.ones(3), size=(3, 2))
    >>> r = rng.normal(size=(3, 2, 3))
    >>> np.allclose(dard_canon(shape_reward(r, rng.normal(size=3), 0.9), T, 0.9), dard_canon(r, T, 0.9))
    True
    """
    r = check_reward(r)
    g = check_gamma(gamma)
    t = check_transitions(transitions, r.shape)
    d_a = check_dist(action_dist, (r.shape[1],), "action_dist")
    d_a = _uniform(r.shape[1]) if d_a is None else d_a
    mean_from = np.einsum("a,sax,sax->s", d_a, t, r)  # E[R(s, A, S')], S' ~ T(s, A)
    tr = np.einsum("sax,xay->say", t, r)  # Σ_x T(s,a,x) R(x,a,y)
    cross = np.einsum("a,say,tay->st", d_a, tr, t)  # E[R(S', A, S'')], S' ~ T(s,A), S'' ~ T(s',A)
    return r + g * mean_from[None, None, :] - mean_from[:, None, None] - g * cross[:, None, :]


def minimal_canon(r: Any, gamma: float, coverage: Any = None) -> np.ndarray:
    """STARC's minimal canonicalisation: ``R + γ·Φ(s') − Φ(s)`` for the potential ``Φ`` that
    minimises the ``coverage``-weighted L2 norm (a least-squares problem, solved in closed form).

    The minimiser is the projection of ``R`` onto the complement of the shaping subspace, so it
    is unique (for L1/L∞ it would not be, which is why only L2 is offered).

    >>> r = shape_reward(np.zeros((3, 2, 3)), np.array([1.0, 2.0, -1.0]), 0.9)   # pure shaping
    >>> float(np.abs(minimal_canon(r, 0.9)).max()) < 1e-12
    True
    """
    r = check_reward(r)
    g = check_gamma(gamma)
    w = check_dist(coverage, r.shape, "coverage")
    w = np.full(r.shape, 1.0 / r.size) if w is None else w
    # Normal equations of min_Φ Σ w·(R + γΦ(s') − Φ(s))², aggregated over actions.
    w_ss = w.sum(axis=1)  # W[s, s']
    b_ss = (w * r).sum(axis=1)  # B[s, s']
    h = (g * g) * np.diag(w_ss.sum(axis=0)) + np.diag(w_ss.sum(axis=1)) - g * (w_ss + w_ss.T)
    rhs = b_ss.sum(axis=1) - g * b_ss.sum(axis=0)
    phi = np.linalg.lstsq(h, rhs, rcond=None)[0]
    # lstsq gives the minimum-norm Φ when it is not unique (γ = 1: Φ + c; unweighted states).
    return r + g * phi[None, None, :] - phi[:, None, None]


def canonicalize(r: Any, gamma: float, canon: str = "epic", *, transitions: Any = None, state_dist: Any = None,
                 action_dist: Any = None, coverage: Any = None) -> np.ndarray:
    """Dispatch to ``epic_canon`` / ``dard_canon`` / ``minimal_canon``; ``"none"`` returns ``R``."""
    check_choice(canon, CANONS, "canon")
    if canon == "epic":
        return epic_canon(r, gamma, state_dist, action_dist)
    if canon == "dard":
        return dard_canon(r, transitions, gamma, action_dist)
    if canon == "minimal":
        return minimal_canon(r, gamma, coverage)
    return check_reward(r).copy()


def lp_norm(x: Any, p: Any = 2, weights: Any = None) -> float:
    """``(Σ w·|x|^p)^(1/p)`` under the distribution ``weights`` (uniform by default);
    ``p = inf`` is the largest ``|x|`` where the weight is positive.

    >>> lp_norm(np.array([3.0, -4.0]), 2, np.array([0.5, 0.5]))   # sqrt((9 + 16) / 2)
    3.5355339059327378
    """
    p = check_norm(p, "p")
    x = np.abs(np.asarray(x, np.float64)).reshape(-1)
    w = None if weights is None else np.asarray(weights, np.float64).reshape(-1)
    if w is not None and w.shape != x.shape:
        from rewardlab.errors import InvalidArgument

        raise InvalidArgument(f"weights must have the shape of x ({x.shape[0]} values), got {w.shape[0]}")
    if p == np.inf:
        return float(x.max(initial=0.0) if w is None else x[w > 0].max(initial=0.0))
    if w is None:
        return float(np.mean(x**p) ** (1.0 / p))
    return float(np.sum(w * x**p) ** (1.0 / p))


def normalize(c: np.ndarray, p: Any, weights: Any = None, ref: float | None = None,
              zero_rtol: float = ZERO_RTOL) -> np.ndarray:
    """``c / ‖c‖_p``; a ``c`` whose norm is ≤ ``zero_rtol · ref`` (``ref``: the raw reward's norm)
    is the zero reward and stays zero (STARC's convention: such a reward expresses no preference).
    """
    scale = lp_norm(c, p, weights)
    floor = zero_rtol * (ref if ref is not None else 0.0)
    if scale <= floor or scale == 0.0:
        return np.zeros_like(c, dtype=np.float64)
    return np.asarray(c, np.float64) / scale


def pearson_distance(x: Any, y: Any, weights: Any = None, *, names: tuple[str, str] = ("r1", "r2"),
                     ref: tuple[float, float] | None = None, zero_rtol: float = ZERO_RTOL) -> float:
    """``sqrt((1 − ρ) / 2)`` for the (``weights``-weighted) Pearson correlation ``ρ`` of ``x`` and
    ``y``: 0 for identical incentives, 1 for opposite ones.

    ``ρ`` is undefined when one side is constant; then a ``RuntimeWarning`` names it and the
    result is ``nan`` (a constant canonicalised reward ranks all behaviour equally).

    >>> pearson_distance([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]), pearson_distance([1.0, 2.0], [2.0, 1.0])
    (0.0, 1.0)
    """
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    w = np.full(x.shape, 1.0 / max(len(x), 1)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    xc = x - np.sum(w * x)
    yc = y - np.sum(w * y)
    var_x, var_y = float(np.sum(w * xc * xc)), float(np.sum(w * yc * yc))
    ref_x, ref_y = ref if ref is not None else (0.0, 0.0)
    for name, var, r in ((names[0], var_x, ref_x), (names[1], var_y, ref_y)):
        if var <= (zero_rtol * r) ** 2 or var == 0.0:
            warnings.warn(f"{name} is constant after canonicalisation (it expresses no preference between "
                          "transitions): the Pearson distance is undefined, returning nan", RuntimeWarning,
                          stacklevel=2)
            return float("nan")
    rho = float(np.sum(w * xc * yc) / np.sqrt(var_x * var_y))
    return float(np.sqrt(0.5 * (1.0 - min(max(rho, -1.0), 1.0))))


def direct_distance(r1: Any, r2: Any, p: Any = 2, coverage: Any = None) -> float:
    """``‖R1 − R2‖_p`` under ``coverage``: the raw-reward baseline, not invariant to anything.

    >>> direct_distance(np.ones((2, 1, 2)), np.zeros((2, 1, 2)))
    1.0
    """
    a, b = check_pair(r1, r2)
    w = check_dist(coverage, a.shape, "coverage")
    return lp_norm(a - b, p, w)


def epic_distance(r1: Any, r2: Any, gamma: float, *, state_dist: Any = None, action_dist: Any = None,
                  coverage: Any = None) -> float:
    """EPIC: the Pearson distance of the EPIC-canonicalised rewards under ``coverage``.

    Zero iff the rewards are equal up to potential shaping and positive scaling (on the
    support of the distributions); at most 1.

    >>> r = np.random.default_rng(0).normal(size=(3, 2, 3))
    >>> round(epic_distance(r, 2.0 * r + 1.0, gamma=0.9), 12), round(epic_distance(r, -r, gamma=0.9), 12)
    (0.0, 1.0)
    """
    a, b = check_pair(r1, r2)
    w = check_dist(coverage, a.shape, "coverage")
    ca, cb = epic_canon(a, gamma, state_dist, action_dist), epic_canon(b, gamma, state_dist, action_dist)
    return pearson_distance(ca, cb, w, ref=(lp_norm(a, 2, w), lp_norm(b, 2, w)))


def dard_distance(r1: Any, r2: Any, transitions: Any, gamma: float, *, action_dist: Any = None,
                  coverage: Any = None) -> float:
    """DARD: the Pearson distance of the DARD-canonicalised rewards under ``coverage``.

    >>> rng = np.random.default_rng(0)
    >>> T = rng.dirichlet(np.ones(3), size=(3, 2))
    >>> r = rng.normal(size=(3, 2, 3))
    >>> round(dard_distance(r, 5.0 * shape_reward(r, rng.normal(size=3), 0.9), T, 0.9), 6)
    0.0
    """
    a, b = check_pair(r1, r2)
    w = check_dist(coverage, a.shape, "coverage")
    ca, cb = dard_canon(a, transitions, gamma, action_dist), dard_canon(b, transitions, gamma, action_dist)
    return pearson_distance(ca, cb, w, ref=(lp_norm(a, 2, w), lp_norm(b, 2, w)))


def starc_distance(r1: Any, r2: Any, gamma: float, *, canon: str = "epic", norm: Any = 2, dist: Any = None,
                   transitions: Any = None, state_dist: Any = None, action_dist: Any = None,
                   coverage: Any = None) -> float:
    """STARC: canonicalise (``canon``: ``epic``, ``dard``, ``minimal`` or ``none``), divide by the
    ``L_norm`` norm, then take the ``L_dist`` norm of the difference (``dist`` defaults to
    ``norm``). Norms are weighted by ``coverage`` (uniform by default). With ``norm == dist``
    the result lies in [0, 2]; a reward that canonicalises to zero stays zero.

    >>> rng = np.random.default_rng(0)
    >>> r = rng.normal(size=(3, 2, 3))
    >>> shaped = 0.5 * shape_reward(r, rng.normal(size=3), 0.9)
    >>> [round(starc_distance(r, shaped, 0.9, canon=c, norm=n), 10) for c, n in [("epic", 1), ("minimal", "l2")]]
    [0.0, 0.0]
    """
    a, b = check_pair(r1, r2)
    check_choice(canon, CANONS, "canon")
    n = check_norm(norm, "norm")
    d = n if dist is None else check_norm(dist, "dist")
    w = check_dist(coverage, a.shape, "coverage")
    kw = dict(transitions=transitions, state_dist=state_dist, action_dist=action_dist, coverage=w)
    ua = normalize(canonicalize(a, gamma, canon, **kw), n, w, ref=lp_norm(a, n, w))
    ub = normalize(canonicalize(b, gamma, canon, **kw), n, w, ref=lp_norm(b, n, w))
    return lp_norm(ua - ub, d, w)
