"""Designer-style auxiliary rewards, helpful or misleading, used by the BARFI experiments.

These are ordinary terms (any stack can use them); they are *not* potential-based, so they
can change the optimal policy — which is the point: BARFI (``rewardlab.shaping.barfi``) has
to learn how much to trust them.

- ``cartpole_upright``: ``1 − |θ|/θ_max`` of the pole angle after the step (helpful);
- ``cartpole_velocity``: ``scale ·`` cart velocity in a direction (``left``: harmful, it
  pays for running the cart off the track);
- ``grid_cell``: ``bonus`` for every step that ends in one cell of ``toy/GridWorld-v0``
  (misleading when that cell is not the goal);
- ``state_bonus``: ``scale · Φ(s')`` of a registered potential, paid every step (e.g. with
  ``minihack/stairs_distance`` and a negative scale: a bonus for staying far from the stairs).

MountainCar potentials (plain ``phi(obs, info)`` functions, used by import path, e.g.
``{name: potential, params: {potential: "rewardlab.shaping.auxiliary:mountaincar_energy"}}``):

- ``mountaincar_energy``: the car's mechanical energy, 0 at rest in the valley, 1 at rest on
  the flag (helpful as potential-based shaping or as a small per-step bonus);
- ``mountaincar_valley``: 1 at the valley bottom, falling to 0 at 0.6 away (a per-step bonus
  for staying in the valley: harmful).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardlab.core.terms import Term
from rewardlab.core.transition import Transition
from rewardlab.errors import InvalidArgument, TermOutputError

__all__ = ["CartPoleUpright", "CartPoleVelocity", "GridCell", "StateBonus", "mountaincar_energy", "mountaincar_valley"]

CARTPOLE_ANGLE_LIMIT = 12 * 2 * np.pi / 360  # CartPole-v1 terminates beyond this angle


def _finite(name: str, value: float) -> float:
    if not np.isfinite(value):
        raise InvalidArgument(f"{name} must be finite, got {value}")
    return float(value)


class CartPoleUpright(Term):
    """``1 − |θ'|/θ_max``: 1 with the pole upright, 0 at the failure angle (CartPole obs[2]).

    >>> t = Transition(None, None, np.array([[0, 0, 0.0, 0], [0, 0, 0.1047, 0]]), np.ones(2),
    ...                np.zeros(2, bool), np.zeros(2, bool))
    >>> CartPoleUpright()(t).round(2)
    array([1. , 0.5], dtype=float32)
    """

    name = "cartpole_upright"

    def __call__(self, t: Transition) -> np.ndarray:
        angle = np.abs(np.asarray(t.next_obs, np.float32)[:, 2])
        return (1.0 - angle / CARTPOLE_ANGLE_LIMIT).astype(np.float32)


class CartPoleVelocity(Term):
    """``scale · v'`` for ``direction="right"``, ``−scale · v'`` for ``"left"`` (v' = obs[1]
    after the step, in m/s).

    >>> t = Transition(None, None, np.array([[0, -1.0, 0, 0], [0, 0.5, 0, 0]]), np.ones(2),
    ...                np.zeros(2, bool), np.zeros(2, bool))
    >>> CartPoleVelocity(direction="left", scale=2.0)(t)
    array([ 2., -1.], dtype=float32)
    """

    name = "cartpole_velocity"

    def __init__(self, direction: str = "left", scale: float = 1.0):
        if direction not in ("left", "right"):
            raise InvalidArgument(f"cartpole_velocity direction must be 'left' or 'right', got {direction!r}")
        self.sign = -1.0 if direction == "left" else 1.0
        self.scale = _finite("cartpole_velocity scale", scale)

    def __call__(self, t: Transition) -> np.ndarray:
        return (self.sign * self.scale * np.asarray(t.next_obs, np.float32)[:, 1]).astype(np.float32)


class GridCell(Term):
    """``bonus`` on every step whose next position (``info["pos"]``) is ``cell``.

    >>> t = Transition(None, None, None, np.zeros(2), np.zeros(2, bool), np.zeros(2, bool),
    ...                info={"pos": np.array([[0, 5], [1, 1]])})
    >>> GridCell(cell=(0, 5), bonus=0.2)(t)
    array([0.2, 0. ], dtype=float32)
    """

    name = "grid_cell"

    def __init__(self, cell: tuple[int, int] | list[int] = (0, 5), bonus: float = 0.2):
        cell_arr = np.asarray(cell)
        if cell_arr.shape != (2,):
            raise InvalidArgument(f"grid_cell cell must be (row, col), got {cell!r}")
        self.cell = cell_arr.astype(np.int64)
        self.bonus = _finite("grid_cell bonus", bonus)

    def __call__(self, t: Transition) -> np.ndarray:
        if "pos" not in t.info:
            raise InvalidArgument(f"grid_cell needs info['pos'] (toy/GridWorld-v0); info keys: {sorted(t.info)}")
        pos = np.asarray(t.info["pos"]).reshape(t.num_envs, 2)
        return np.where((pos == self.cell).all(1), self.bonus, 0.0).astype(np.float32)


class StateBonus(Term):
    """``scale · Φ(s')`` every step, from a registered potential (``rewardlab.shaping.potential``).

    Unlike ``potential`` shaping this is a plain state reward: it changes the optimal policy.

    >>> phi = lambda obs, info: np.asarray(obs, np.float32)
    >>> t = Transition(None, None, np.array([2.0, -1.0]), np.zeros(2), np.zeros(2, bool), np.zeros(2, bool))
    >>> StateBonus(phi, scale=-0.5)(t)
    array([-1. ,  0.5], dtype=float32)
    """

    name = "state_bonus"

    def __init__(self, potential: Any, scale: float = 1.0, params: dict[str, Any] | None = None):
        from rewardlab.shaping.potential import resolve_potential

        self.phi = resolve_potential(potential, params)
        self.scale = _finite("state_bonus scale", scale)

    def __call__(self, t: Transition) -> np.ndarray:
        value = np.asarray(self.phi(t.next_obs, t.info), np.float32).reshape(-1)
        if value.shape != (t.num_envs,):
            raise TermOutputError(f"state_bonus potential must return {t.num_envs} values, got shape {value.shape}")
        return (self.scale * value).astype(np.float32)


# MountainCar-v0 dynamics: v' = v + (a − 1)·force − cos(3x)·gravity, so the height-like
# potential energy is gravity/3 · sin(3x) and the kinetic energy is v²/2.
MOUNTAINCAR_FORCE, MOUNTAINCAR_GRAVITY, MOUNTAINCAR_GOAL = 0.001, 0.0025, 0.5
MOUNTAINCAR_BOTTOM = -np.pi / 6  # sin(3x) = -1: the valley floor
_E_MIN = -MOUNTAINCAR_GRAVITY / 3
_E_GOAL = MOUNTAINCAR_GRAVITY / 3 * np.sin(3 * MOUNTAINCAR_GOAL)


def _mountaincar_obs(obs: Any) -> np.ndarray:
    obs = np.asarray(obs, np.float64)
    if obs.ndim != 2 or obs.shape[1] != 2:
        raise TermOutputError(f"MountainCar potentials need (n, 2) observations (position, velocity); "
                              f"got shape {obs.shape}")
    return obs


def mountaincar_energy(obs: Any, info: Any = None) -> np.ndarray:
    """Mechanical energy ``v²/2 + g/3·sin(3x)`` of MountainCar, scaled to 0 at rest in the
    valley and 1 at rest at the flag (full speed at the flag is ≈ 2.5).

    >>> mountaincar_energy(np.array([[MOUNTAINCAR_BOTTOM, 0.0], [0.5, 0.0], [MOUNTAINCAR_BOTTOM, 0.05]])).round(2)
    array([0.  , 1.  , 0.75], dtype=float32)
    """
    o = _mountaincar_obs(obs)
    energy = 0.5 * o[:, 1] ** 2 + MOUNTAINCAR_GRAVITY / 3 * np.sin(3 * o[:, 0])
    return ((energy - _E_MIN) / (_E_GOAL - _E_MIN)).astype(np.float32)


def mountaincar_valley(obs: Any, info: Any = None) -> np.ndarray:
    """``max(0, 1 − |x − x_bottom| / 0.6)``: 1 on the valley floor, 0 from 0.6 away.

    >>> mountaincar_valley(np.array([[MOUNTAINCAR_BOTTOM, 0.0], [MOUNTAINCAR_BOTTOM + 0.3, 0.02], [0.5, 0.0]]))
    array([1. , 0.5, 0. ], dtype=float32)
    """
    o = _mountaincar_obs(obs)
    return np.maximum(0.0, 1.0 - np.abs(o[:, 0] - MOUNTAINCAR_BOTTOM) / 0.6).astype(np.float32)
