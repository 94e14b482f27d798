"""Shared by the JAX twin tests: the JAX reward stack and its numpy twin on the same MiniGrid
transitions (random actions through the Gymnasium adapter, the numpy stack shaping them)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

FEATURES = ("agent_pos", "has_key", "door_open", "key_pos", "key_present", "door_pos", "door_present",
            "goal_pos", "goal_present", "at_goal")


def _next_features(info: dict, done: np.ndarray) -> dict:
    """The true successor's fields: the final info on rows whose episode ended."""
    fin = info.get("final_info", {})
    return {k: np.where(done.reshape(-1, *([1] * (np.ndim(info[k]) - 1))), fin[k], info[k]) if fin else info[k]
            for k in FEATURES}


def twin_steps(specs: list, *, n: int, steps: int, seed: int, rng: np.random.Generator, gamma: float,
               env_id: str = "minigrid/MiniGrid-DoorKey-5x5") -> Iterator[tuple[dict, np.ndarray, np.ndarray, dict]]:
    """Per step: ``(JAX weighted values per term, JAX total, numpy reward, numpy info)``."""
    import jax
    import jax.numpy as jnp

    from rewardlab.core.terms import build_stack
    from rewardlab.core.wrappers import ShapedVectorEnv
    from rewardlab.jax.envs import JaxVectorEnv
    from rewardlab.jax.terms import JaxTransition, build_jax_stack

    venv = JaxVectorEnv(env_id, n)
    shaped = ShapedVectorEnv(venv, build_stack(specs, gamma=gamma))
    jstack = build_jax_stack(specs, venv.env, gamma=gamma)
    apply = jax.jit(jstack.__call__)
    states, params = jstack.init(n), jstack.default_params()
    obs, info = shaped.reset(seed=seed)
    prev = {k: info[k] for k in FEATURES}
    for _ in range(steps):
        action = rng.integers(0, 6, n)
        nobs, reward, term, trunc, info = shaped.step(action)
        done = term | trunc
        final_obs = np.where(done[:, None, None, None], info["final_obs"], nobs) if done.any() else nobs
        tr = JaxTransition(jnp.asarray(obs), jnp.asarray(action), jnp.asarray(final_obs),
                           jnp.asarray(info["reward_env"], jnp.float32), jnp.asarray(term), jnp.asarray(trunc),
                           {k: jnp.asarray(v) for k, v in prev.items()},
                           {k: jnp.asarray(v) for k, v in _next_features(info, done).items()})
        states, total, parts = apply(states, tr, params)
        yield {k: np.asarray(v) for k, v in parts.items()}, np.asarray(total), reward, info
        obs, prev = nobs, {k: info[k] for k in FEATURES}


@pytest.fixture(name="twin_steps")
def twin_steps_fixture():
    return twin_steps
