"""Continuous-control terms: reach-target shaping and control cost. (Named reward components
from ``info`` are the ``info_component`` term in ``rewardlab.shaping.basic``.)

- ``reach_distance``: dense ``-‖next_obs[a] − next_obs[b]‖`` (or ``− target``) between two
  slices of the observation, e.g. fingertip and target.
- ``ctrl_cost``: ``-scale·Σ a²`` over the action.
- potential ``robotics/reach_distance``: the same distance as a potential
  ``Φ(s) = -scale·‖obs[a] − obs[b]‖`` for ``potential`` (policy-invariant shaping).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rewardlab.core.terms import Term
from rewardlab.core.transition import Transition
from rewardlab.errors import InvalidArgument

__all__ = ["ControlCost", "ReachDistance", "reach_distance_potential", "slice_distance"]


def _check_slice(sl: Sequence[int], what: str) -> slice:
    if len(sl) != 2 or not 0 <= int(sl[0]) < int(sl[1]):
        raise InvalidArgument(f"{what} must be [start, stop] with 0 <= start < stop, got {list(sl)}")
    return slice(int(sl[0]), int(sl[1]))


def slice_distance(a: Sequence[int], b: Sequence[int] | None = None,
                   target: Sequence[float] | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """``obs -> ‖obs[a] − obs[b]‖`` (or ``‖obs[a] − target‖``; both omitted: ``‖obs[a]‖``) over a batch."""
    sa = _check_slice(a, "a")
    if b is not None and target is not None:
        raise InvalidArgument("give at most one of b (an obs slice) and target (a fixed point)")
    sb = _check_slice(b, "b") if b is not None else None
    if sb is not None and sb.stop - sb.start != sa.stop - sa.start:
        raise InvalidArgument(f"slices a={list(a)} and b={list(b)} have different lengths")
    tgt = None if target is None else np.asarray(target, np.float64)

    def dist(obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float64)
        diff = obs[:, sa] - (obs[:, sb] if sb is not None else (tgt if tgt is not None else 0.0))
        return np.linalg.norm(diff, axis=1)

    return dist


class ReachDistance(Term):
    """Dense reach-target reward ``-scale·‖next_obs[a] − next_obs[b]‖``.

    On Gymnasium ``Reacher-v5`` the fingertip-to-target vector is ``obs[8:10]``, so
    ``ReachDistance(a=[8, 10])`` is the negative distance to the target.

    >>> nxt = np.array([[0.0] * 8 + [0.3, 0.4], [0.0] * 10])
    >>> t = Transition(None, None, nxt, np.zeros(2), np.zeros(2, bool), np.zeros(2, bool))
    >>> ReachDistance(a=[8, 10])(t)
    array([-0.5, -0. ], dtype=float32)
    """

    name = "reach_distance"

    def __init__(self, a: Sequence[int], b: Sequence[int] | None = None, target: Sequence[float] | None = None,
                 scale: float = 1.0):
        if not np.isfinite(scale):
            raise InvalidArgument(f"scale must be finite, got {scale}")
        self.dist, self.scale = slice_distance(a, b, target), float(scale)

    def __call__(self, t: Transition) -> np.ndarray:
        return (-self.scale * self.dist(t.next_obs)).astype(np.float32)


class ControlCost(Term):
    """Control cost ``-scale·Σ a²`` over the action, with its sign applied (as MuJoCo/Brax's ``reward_ctrl``).

    The NumPy twin of the Brax JAX term ``ctrl_cost``, for any env with Box actions.

    >>> t = Transition(None, np.array([[0.5, -1.0], [0.0, 0.0]]), None, np.zeros(2),
    ...                np.zeros(2, bool), np.zeros(2, bool))
    >>> ControlCost(scale=0.1)(t)
    array([-0.125, -0.   ], dtype=float32)
    """

    name = "ctrl_cost"

    def __init__(self, scale: float = 1.0):
        if not np.isfinite(scale):
            raise InvalidArgument(f"scale must be finite, got {scale}")
        self.scale = float(scale)

    def __call__(self, t: Transition) -> np.ndarray:
        act = np.asarray(t.action, np.float64)
        if act.ndim != 2 or act.shape[0] != t.num_envs:
            raise InvalidArgument(f"ctrl_cost needs Box actions of shape (num_envs, dim), got shape {act.shape}")
        return (-self.scale * np.square(act).sum(axis=1)).astype(np.float32)


def reach_distance_potential(a: Sequence[int], b: Sequence[int] | None = None,
                             target: Sequence[float] | None = None, scale: float = 1.0
                             ) -> Callable[[Any, dict | None], np.ndarray]:
    """``Φ(s) = -scale·‖obs[a] − obs[b]‖``: closer to the target is a higher potential.

    >>> phi = reach_distance_potential(a=[0, 2])
    >>> phi(np.array([[3.0, 4.0]]), None)
    array([-5.])
    """
    dist = slice_distance(a, b, target)
    return lambda obs, info: -float(scale) * dist(obs)
