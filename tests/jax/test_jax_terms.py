"""JAX reward terms: twins of the numpy terms (same values on the same transitions), the PBRS
rules, numeric parameters as traced arguments, and the errors for terms without a JAX version."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("xminigrid")
pytest.importorskip("gymnax")

import jax.numpy as jnp  # noqa: E402

from rewardlab.errors import ConfigError  # noqa: E402
from rewardlab.jax.envs import make_env  # noqa: E402
from rewardlab.jax.terms import JaxTransition, build_jax_stack, stack_params  # noqa: E402

GAMMA = 0.9

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


def test_jax_terms_equal_their_numpy_twins_on_minigrid_transitions(twin_steps):
    names = [s if isinstance(s, str) else s.get("as", s["name"]) for s in TWIN_SPECS]
    fired = dict.fromkeys(names, 0)
    for parts, total, reward, info in twin_steps(TWIN_SPECS, n=16, steps=600, seed=3, rng=np.random.default_rng(0),
                                                 gamma=GAMMA):
        for name in names:
            np.testing.assert_allclose(parts[name], info["reward_terms"][name], rtol=1e-5, atol=1e-6, err_msg=name)
            fired[name] += int((parts[name] != 0).sum())
        np.testing.assert_allclose(total, reward, rtol=1e-5, atol=1e-5)
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
