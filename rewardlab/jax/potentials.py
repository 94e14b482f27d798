"""JAX potentials for the ``potential`` term of the pure-JAX path (``JAX_RL_POTENTIALS``).

A potential factory takes its static parameters and returns ``phi(features) -> scalar`` for *one*
env (the term vmaps it); ``features`` are the env's JAX state fields (``JaxEnv.features``). The
MiniGrid ones are twins of ``rewardlab.jax.minigrid_np`` (same names, same values; tested):

- ``minigrid/doorkey_progress``: stage (0 no key, 1 key held, 2 door open) − 2 − d(agent, the
  stage's target) / cap;
- ``minigrid/goal_distance``, ``minigrid/key_distance`` (0 while carried),
  ``minigrid/door_distance`` (0 once open): −d / cap.

Distances are Manhattan and capped at ``cap``; a target that is not on the grid counts as the cap.

>>> import jax.numpy as jnp
>>> f = {"agent_pos": jnp.array([1, 1]), "goal_pos": jnp.array([3, 3]), "goal_present": jnp.array(True)}
>>> float(goal_distance(cap=8.0)(f))
-0.5
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from rewardlab.errors import InvalidArgument

__all__ = ["doorkey_progress", "goal_distance", "key_distance", "door_distance", "require_features"]

JaxPotential = Callable[[dict], jax.Array]


def require_features(features: dict, keys: tuple[str, ...], who: str) -> None:
    """A clear error when an env lacks state fields a term or potential reads."""
    missing = [k for k in keys if k not in features]
    if missing:
        raise InvalidArgument(f"{who} needs the state fields {missing}, which this env does not have "
                              f"(its fields: {', '.join(sorted(features)) or '(none)'}); use a minigrid/... env")


def _check_cap(cap: float) -> None:
    if not cap > 0:  # Φ divides by the cap
        raise InvalidArgument(f"cap must be > 0, got {cap}")


def _distance(f: dict, target: str, cap: float) -> jax.Array:
    d = jnp.abs(f["agent_pos"] - f[f"{target}_pos"]).sum().astype(jnp.float32)
    return jnp.where(f[f"{target}_present"], jnp.minimum(d, cap), cap)


def doorkey_progress(cap: float = 20.0) -> JaxPotential:
    """Staged Φ for DoorKey (see the module docstring)."""
    _check_cap(cap)

    def phi(f):
        stage = jnp.where(f["door_open"], 2, jnp.where(f["has_key"], 1, 0))
        dist = jnp.select([stage == 0, stage == 1], [_distance(f, "key", cap), _distance(f, "door", cap)],
                          _distance(f, "goal", cap))
        return stage - 2.0 - dist / cap

    phi.fields = ("agent_pos", "has_key", "door_open", "key_pos", "key_present", "door_pos", "door_present",
                  "goal_pos", "goal_present")
    return phi


def goal_distance(cap: float = 20.0) -> JaxPotential:
    """Φ = −d(agent, goal) / cap."""
    _check_cap(cap)

    def phi(f):
        return -_distance(f, "goal", cap) / cap

    phi.fields = ("agent_pos", "goal_pos", "goal_present")
    return phi


def key_distance(cap: float = 20.0) -> JaxPotential:
    """Φ = −d(agent, key) / cap; 0 while the key is carried."""
    _check_cap(cap)

    def phi(f):
        return jnp.where(f["has_key"], 0.0, -_distance(f, "key", cap) / cap)

    phi.fields = ("agent_pos", "has_key", "key_pos", "key_present")
    return phi


def door_distance(cap: float = 20.0) -> JaxPotential:
    """Φ = −d(agent, door) / cap; 0 once the door is open."""
    _check_cap(cap)

    def phi(f):
        return jnp.where(f["door_open"], 0.0, -_distance(f, "door", cap) / cap)

    phi.fields = ("agent_pos", "door_open", "door_pos", "door_present")
    return phi
