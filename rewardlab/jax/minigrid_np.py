"""NumPy twins of the JAX MiniGrid reward pieces, for the Gymnasium adapter (``minigrid/<id>`` with
``rewardlab.make``/``make_vec``): they read the state fields the adapter puts in ``info``
(``agent_pos`` (x, y), ``has_key``, ``door_open``, ``key_pos``/``door_pos``/``goal_pos`` and their
``*_present`` flags). No jax import: numpy terms run without it.

- potentials (``POTENTIALS`` in ``rewardlab/jax/manifest.py``), each ``factory(cap) -> phi(obs, info)``:
  ``minigrid/doorkey_progress``, ``minigrid/goal_distance``, ``minigrid/key_distance``,
  ``minigrid/door_distance``. Distances are Manhattan (MiniGrid moves in four directions), capped
  at ``cap``; a target that is not on the grid counts as the cap.
- ``OpenDoor``, ``ReachGoal``: the ``open_door`` and ``reach_goal`` event terms (pay once per
  episode when a door opens, when the agent stands on the goal).

``tests/jax/test_jax_terms.py`` checks each against its JAX version (``rewardlab.jax.potentials``,
``rewardlab.jax.terms``) on the same transitions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rewardlab.core.terms import require_info
from rewardlab.core.transition import Transition
from rewardlab.errors import InvalidArgument
from rewardlab.shaping.events import EventTerm

__all__ = ["doorkey_progress", "goal_distance", "key_distance", "door_distance", "OpenDoor", "ReachGoal"]


def _need(info: dict | None, key: str) -> np.ndarray:
    return np.asarray(require_info(info, key, "MiniGrid potentials", " - use a minigrid/... env"))


def _distance(info: dict | None, target: str, cap: float) -> np.ndarray:
    """Manhattan distance from the agent to ``<target>_pos``, capped; the cap where it is absent."""
    pos, tgt = _need(info, "agent_pos"), _need(info, f"{target}_pos")
    present = _need(info, f"{target}_present").astype(bool)
    d = np.abs(pos - tgt).sum(axis=-1).astype(np.float32)
    return np.where(present, np.minimum(d, cap), cap).astype(np.float32)


def _check_cap(cap: float) -> None:
    if not cap > 0:  # Φ divides by the cap
        raise InvalidArgument(f"cap must be > 0, got {cap}")


def doorkey_progress(cap: float = 20.0) -> Callable:
    """Staged Φ for DoorKey: stage (0 no key, 1 key held, 2 door open) − 2 − d(agent, the stage's
    target: key, door, goal) / cap. Each stage outweighs any distance; Φ ≈ 0 next to the goal."""
    _check_cap(cap)

    def phi(obs, info):
        has_key, door_open = _need(info, "has_key").astype(bool), _need(info, "door_open").astype(bool)
        stage = np.where(door_open, 2, np.where(has_key, 1, 0))
        dist = np.select([stage == 0, stage == 1], [_distance(info, "key", cap), _distance(info, "door", cap)],
                         _distance(info, "goal", cap))
        return (stage - 2.0 - dist / cap).astype(np.float32)

    return phi


def goal_distance(cap: float = 20.0) -> Callable:
    """Φ = −d(agent, goal) / cap."""
    _check_cap(cap)
    return lambda obs, info: -_distance(info, "goal", cap) / cap


def key_distance(cap: float = 20.0) -> Callable:
    """Φ = −d(agent, key) / cap, and 0 (the maximum) while the key is carried."""
    _check_cap(cap)

    def phi(obs, info):
        return np.where(_need(info, "has_key").astype(bool), 0.0, -_distance(info, "key", cap) / cap).astype(np.float32)

    return phi


def door_distance(cap: float = 20.0) -> Callable:
    """Φ = −d(agent, door) / cap, and 0 once the door is open."""
    _check_cap(cap)

    def phi(obs, info):
        return np.where(_need(info, "door_open").astype(bool), 0.0,
                        -_distance(info, "door", cap) / cap).astype(np.float32)

    return phi


class OpenDoor(EventTerm):
    """Pays ``reward`` when a door that was not open is open after the step (reads ``info["door_open"]``).

    >>> term = OpenDoor()
    >>> term.bind(2)
    >>> term.observe_reset(None, {"door_open": np.array([False, False])}, np.arange(2))
    >>> info = {"door_open": np.array([True, False])}
    >>> term(Transition(None, None, None, np.zeros(2), np.zeros(2, bool), np.zeros(2, bool), info))
    array([1., 0.], dtype=float32)
    """

    name = "open_door"

    def __init__(self, reward: float = 1.0, repeatable: bool = False):
        super().__init__(reward, repeatable)
        self._was_open = np.zeros(0, bool)

    def bind(self, num_envs: int) -> None:
        super().bind(num_envs)
        self._was_open = np.zeros(num_envs, bool)

    def observe_reset(self, obs, info: dict, env_ids: np.ndarray) -> None:
        if len(env_ids):
            if len(self._was_open) <= int(np.max(env_ids)):
                grown = np.zeros(int(np.max(env_ids)) + 1, bool)
                grown[: len(self._was_open)] = self._was_open
                self._was_open = grown
            self._was_open[env_ids] = np.asarray(self._info(info, "door_open"), bool)[env_ids]

    def happened(self, t: Transition) -> np.ndarray:
        is_open = np.asarray(self._info(t.info, "door_open"), bool).reshape(t.num_envs)
        if len(self._was_open) <= int(np.max(t.env_ids)):
            self.bind(int(np.max(t.env_ids)) + 1)
        hit = is_open & ~self._was_open[t.env_ids]
        self._was_open[t.env_ids] = is_open
        return hit


class ReachGoal(EventTerm):
    """Pays ``reward`` when the agent stands on the goal after the step (reads ``info["at_goal"]``).

    >>> info = {"at_goal": np.array([False, True])}
    >>> ReachGoal(reward=0.5)(Transition(None, None, None, np.zeros(2), np.zeros(2, bool), np.zeros(2, bool), info))
    array([0. , 0.5], dtype=float32)
    """

    name = "reach_goal"

    def happened(self, t: Transition) -> np.ndarray:
        return np.asarray(self._info(t.info, "at_goal"), bool).reshape(t.num_envs)
