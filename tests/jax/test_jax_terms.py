"""JAX reward terms: twins of the numpy terms (same values on the same transitions), the PBRS
rules, numeric parameters as traced arguments, and the errors for terms without a JAX version."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("xminigrid")
pytest.importorskip("gymnax")

import jax.numpy as jnp  # noqa: E402

from rewardlab.core.terms import build_stack  # noqa: E402
from rewardlab.core.wrappers import ShapedVectorEnv  # noqa: E402
from rewardlab.errors import ConfigError  # noqa: E402
from rewardlab.jax.envs import JaxVectorEnv, make_env  # noqa: E402
from rewardlab.jax.terms import JaxTransition, build_jax_stack, stack_params  # noqa: E402

GAMMA = 0.9
FEATURES = ("agent_pos", "has_key", "door_open", "key_pos", "key_present", "door_pos", "door_present",
            "goal_pos", "goal_present", "at_goal")

TWIN_SPECS = [
    "env",
    {"name": "step_penalty", "weight": 0.5, "params": {"value": 0.02}},
    {"name": "potential", "as": "progress", "weight": 2.0,
     "params": {"potential": "minigrid/doorkey_progress", "scale": 1.5, "params": {"cap": 6.0}}},
    {"name": "potential", "as": "goal_dist", "params": {"potential": "minigrid/goal_distance"}},
    {"name": "potential", "as": "key_dist", "params": {"potential": "minigrid/key_distance", "params": {"cap": 4.0}}},
    {"name": "potential", "as": "door_dist", "params": {"potential": "minigrid/door_distance"}},
    {"name": "novelty", "as": "novelty_global", "params": {"key": "agent_pos"}},
    {"name": "novelty", "as": "novelty_episode", "params": {"key": "agent_pos", "scope": "episode"}},
    {"name": "pickup", "params": {"item": "key", "reward": 0.7}},
    {"name": "pickup", "as": "pickup_again", "params": {"item": "key", "repeatable": True}},
    {"name": "open_door", "weight": 3.0},
    {"name": "reach_goal"},
    {"name": "reach", "params": {"pos": [1, 2], "repeatable": True}},
]


def _next_features(info: dict, done: np.ndarray) -> dict:
    """The true successor's fields: the final info on rows whose episode ended."""
    fin = info.get("final_info", {})
    return {k: np.where(done.reshape(-1, *([1] * (np.ndim(info[k]) - 1))), fin[k], info[k]) if fin else info[k]
            for k in FEATURES}


def test_jax_terms_equal_their_numpy_twins_on_minigrid_transitions():
    n, steps = 16, 600
    venv = JaxVectorEnv("minigrid/MiniGrid-DoorKey-5x5", n)
    shaped = ShapedVectorEnv(venv, build_stack(TWIN_SPECS, gamma=GAMMA))
    jstack = build_jax_stack(TWIN_SPECS, venv.env, gamma=GAMMA)
    apply = jax.jit(jstack.__call__)
    states, params = jstack.init(n), jstack.default_params()
    obs, info = shaped.reset(seed=3)
    prev = {k: info[k] for k in FEATURES}
    rng = np.random.default_rng(0)
    fired = dict.fromkeys(jstack.names, 0)
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
        for name in jstack.names:
            np.testing.assert_allclose(np.asarray(parts[name]), info["reward_terms"][name], rtol=1e-5, atol=1e-6,
                                       err_msg=name)
            fired[name] += int((np.asarray(parts[name]) != 0).sum())
        np.testing.assert_allclose(np.asarray(total), reward, rtol=1e-5, atol=1e-5)
        obs, prev = nobs, {k: info[k] for k in FEATURES}
    # The random walk must reach every event at least once, or the comparison proved little.
    assert all(fired[k] > 0 for k in ("pickup", "pickup_again", "open_door", "reach_goal", "reach")), fired
    assert fired["pickup_again"] > fired["pickup"]  # repeatable pays on every re-pickup


def _transition(phi_feats_prev, phi_feats_next, terminated, truncated):
    n = len(terminated)
    z = jnp.zeros(n)
    return JaxTransition(z, z, z, z, jnp.asarray(terminated), jnp.asarray(truncated), phi_feats_prev, phi_feats_next)


def test_potential_keeps_gamma_phi_on_truncation_and_zeroes_phi_at_termination():
    env = make_env("minigrid/MiniGrid-DoorKey-5x5")
    stack = build_jax_stack([{"name": "potential", "params": {"potential": "minigrid/goal_distance",
                                                                "params": {"cap": 10.0}}}], env, gamma=0.5)
    goal = jnp.array([[3, 3]] * 3)
    prev = {"agent_pos": jnp.array([[1, 1]] * 3), "goal_pos": goal, "goal_present": jnp.ones(3, bool)}
    nxt = {"agent_pos": jnp.array([[2, 3]] * 3), "goal_pos": goal, "goal_present": jnp.ones(3, bool)}
    _, _, parts = stack(stack.init(3), _transition(prev, nxt, [False, False, True], [False, True, False]),
                        stack.default_params())
    # Φ(s) = -0.4, Φ(s') = -0.1: running and truncated 0.5·(-0.1) + 0.4; terminated 0 + 0.4.
    np.testing.assert_allclose(np.asarray(parts["potential"]), [0.35, 0.35, 0.4], rtol=1e-6)


def test_numeric_params_are_traced_arguments_so_variants_vmap():
    env = make_env("gymnax/CartPole-v1")
    stack = build_jax_stack(["env", {"name": "step_penalty", "params": {"value": 0.1}}], env)
    base = stack.default_params()
    variants = [jax.tree_util.tree_map(lambda x, s=s: x * s, base) for s in (0.0, 1.0, 2.0)]
    tr = _transition({}, {}, [False, False], [False, False])._replace(env_reward=jnp.ones(2))
    _, totals, _ = jax.jit(jax.vmap(stack.__call__, in_axes=(None, None, 0)))(stack.init(2), tr,
                                                                              stack_params(variants))
    # weights and the penalty both scale: total = w_env·1 − w_pen·value = s − s·(0.1·s)
    np.testing.assert_allclose(np.asarray(totals)[:, 0], [0.0, 0.9, 1.6], rtol=1e-6)


def test_a_term_without_a_jax_version_is_refused_with_the_list():
    env = make_env("gymnax/CartPole-v1")
    with pytest.raises(ConfigError, match=r"'oni' has no JAX version .*terms with one: derl_program, env, "
                                          r".*step_penalty"):
        build_jax_stack(["env", "oni"], env)
    with pytest.raises(ConfigError, match="has no parameter 'valu'; valid parameters: value"):
        build_jax_stack([{"name": "step_penalty", "params": {"valu": 1}}], env)
    with pytest.raises(ConfigError, match="novelty.*not one of this env's"):
        build_jax_stack([{"name": "novelty"}], env)
    with pytest.raises(ConfigError, match=r"needs the state fields \['agent_pos'"):
        build_jax_stack([{"name": "potential", "params": {"potential": "minigrid/goal_distance"}}], env)
    with pytest.raises(ConfigError, match="'minihack/stairs_distance' has no JAX version; JAX potentials:"):
        build_jax_stack([{"name": "potential", "params": {"potential": "minihack/stairs_distance"}}], env)
