"""Argument checks shared by the distance functions: each raises ``InvalidArgument`` naming the
argument, the bad value and what is allowed."""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardlab.errors import InvalidArgument

# Probabilities are summed in float64; a distribution built in float32 (or read from a file
# with 6 digits) is off by ~1e-7, which must still pass.
DIST_ATOL = 1e-6

NORM_NAMES: dict[str, float] = {"l1": 1.0, "l2": 2.0, "linf": np.inf}


def check_gamma(gamma: Any, *, below_one: bool = False) -> float:
    """γ as a float in [0, 1] (or [0, 1) when returns must converge without an end)."""
    try:
        g = float(gamma)
    except (TypeError, ValueError):
        raise InvalidArgument(f"gamma must be a number in [0, 1], got {gamma!r}") from None
    if below_one and not 0.0 <= g < 1.0:
        # Returns of an MDP without terminal states are finite only for γ < 1.
        raise InvalidArgument(f"gamma must be in [0, 1) here (infinite-horizon returns), got {gamma!r}")
    if not 0.0 <= g <= 1.0:
        raise InvalidArgument(f"gamma must be in [0, 1], got {gamma!r}")
    return g


def check_reward(r: Any, name: str = "r") -> np.ndarray:
    """A finite ``(S, A, S)`` reward array as float64."""
    arr = np.asarray(r, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[0] != arr.shape[2] or min(arr.shape) < 1:
        raise InvalidArgument(f"{name} must be a reward array of shape (S, A, S), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InvalidArgument(f"{name} must be finite, got {int((~np.isfinite(arr)).sum())} non-finite entries")
    return arr


def check_pair(r1: Any, r2: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = check_reward(r1, "r1"), check_reward(r2, "r2")
    if a.shape != b.shape:
        raise InvalidArgument(f"r1 and r2 must have the same shape, got {a.shape} and {b.shape}")
    return a, b


def check_dist(p: Any, shape: tuple[int, ...], name: str) -> np.ndarray | None:
    """A probability distribution of ``shape`` (``None`` stays ``None``: uniform)."""
    if p is None:
        return None
    arr = np.asarray(p, dtype=np.float64)
    if arr.shape != shape:
        raise InvalidArgument(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise InvalidArgument(f"{name} must be non-negative and finite, got min {np.nanmin(arr):g}")
    total = float(arr.sum())
    if abs(total - 1.0) > DIST_ATOL:
        raise InvalidArgument(f"{name} must sum to 1 (a probability distribution), got sum {total:.6g}")
    return arr


def check_transitions(t: Any, shape: tuple[int, int, int]) -> np.ndarray:
    """A transition tensor ``T[s, a, s']`` whose rows are distributions over ``s'``."""
    if t is None:
        raise InvalidArgument("transitions (T[s, a, s'], the transition model) are needed for this canonicalisation")
    arr = np.asarray(t, dtype=np.float64)
    if arr.shape != shape:
        raise InvalidArgument(f"transitions must have shape {shape} (same as the rewards), got {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise InvalidArgument("transitions must be non-negative and finite")
    rows = arr.sum(axis=2)
    bad = np.abs(rows - 1.0) > DIST_ATOL
    if bad.any():
        s, a = np.argwhere(bad)[0]
        raise InvalidArgument(f"transitions[s, a, :] must sum to 1 for every (s, a); T[{s}, {a}, :] sums to "
                              f"{rows[s, a]:.6g}")
    return arr


def check_norm(p: Any, name: str = "norm") -> float:
    """An L_p order: 1, 2 or inf (also the strings ``l1``, ``l2``, ``linf``)."""
    if isinstance(p, str):
        key = p.lower()
        if key in NORM_NAMES:
            return NORM_NAMES[key]
        raise InvalidArgument(f"{name} must be one of 1, 2, inf ('l1', 'l2', 'linf'), got {p!r}")
    try:
        val = float(p)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name} must be one of 1, 2, inf ('l1', 'l2', 'linf'), got {p!r}") from None
    if val not in (1.0, 2.0, np.inf):
        raise InvalidArgument(f"{name} must be one of 1, 2, inf ('l1', 'l2', 'linf'), got {p!r}")
    return val


def check_choice(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise InvalidArgument(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidArgument(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def norm_label(p: float) -> str:
    return "linf" if p == np.inf else f"l{int(p)}"
