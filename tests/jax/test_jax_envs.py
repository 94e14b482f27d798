"""JAX envs: the functional interface (auto-reset, termination vs truncation, state fields), the
on-device episode statistics, and the Gymnasium adapters that numpy terms, our PPO and SB3 use."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("xminigrid")
pytest.importorskip("gymnax")

import jax.numpy as jnp  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

import rewardlab  # noqa: E402
from rewardlab.core.wrappers import ShapedVectorEnv  # noqa: E402
from rewardlab.errors import InvalidArgument  # noqa: E402
from rewardlab.jax.envs import JaxGymEnv, JaxVectorEnv, _spaces, make_env  # noqa: E402
from rewardlab.jax.manifest import GYMNAX_TASKS, MINIGRID_TASKS  # noqa: E402
from rewardlab.jax.rollout import ShapedVecEnv  # noqa: E402
from rewardlab.jax.terms import build_jax_stack  # noqa: E402


def test_step_resets_and_keeps_truncation_apart_from_termination():
    env = make_env("gymnax/CartPole-v1", max_steps_in_episode=5)
    step = jax.jit(env.step)
    obs, state = env.reset(jax.random.PRNGKey(0))
    for t in range(5):  # alternate pushes: the pole stays up for 5 steps, then the time limit
        nobs, state, reward, term, trunc, info = step(jax.random.PRNGKey(t + 1), state, t % 2)
        if t < 4:
            assert not term and not trunc
            np.testing.assert_array_equal(nobs, info["final_obs"])
        obs = nobs
    assert bool(trunc) and not bool(term)
    assert not np.array_equal(obs, info["final_obs"])  # obs is the next episode's first one
    assert int(state.time) == 0 and int(info["features"]["time"]) == 5
    # Always pushing one way drops the pole: a termination, not a truncation.
    env = make_env("gymnax/CartPole-v1")
    step = jax.jit(env.step)
    obs, state = env.reset(jax.random.PRNGKey(0))
    for t in range(100):
        _, state, _, term, trunc, _ = step(jax.random.PRNGKey(t), state, 1)
        if term:
            break
    assert bool(term) and not bool(trunc) and t < 50


def test_minigrid_state_fields_follow_the_grid():
    env = make_env("minigrid/MiniGrid-DoorKey-5x5")
    obs, ts = env.reset(jax.random.PRNGKey(0))
    f = env.features(ts)
    tiles = np.asarray(ts.state.grid[..., 0])
    row, col = np.asarray(ts.state.agent.position)
    assert f["agent_pos"].tolist() == [col, row]
    x, y = np.asarray(f["goal_pos"])
    assert tiles[y, x] == 6 and bool(f["goal_present"])  # 6: xminigrid's GOAL tile
    x, y = np.asarray(f["key_pos"])
    assert tiles[y, x] == 7 and not bool(f["has_key"]) and not bool(f["door_open"])
    assert obs.shape == (7, 7, 2) and obs.dtype == jnp.uint8


def test_episode_statistics_on_device_add_up():
    env = make_env("gymnax/CartPole-v1")
    stack = build_jax_stack(["env", {"name": "step_penalty", "params": {"value": 0.5}}], env)
    venv = ShapedVecEnv(env, 4, stack)
    params = stack.default_params()
    step = jax.jit(venv.step)
    vs = venv.reset(jax.random.PRNGKey(0))
    running = np.zeros(4)
    finished = 0
    for t in range(60):
        vs, out = step(jax.random.PRNGKey(t), vs, jnp.ones(4, jnp.int32), params)
        running += np.asarray(out.reward_env)
        for i in np.flatnonzero(np.asarray(out.done)):
            length = int(out.ep_length[i])
            assert float(out.ep_true_return[i]) == running[i] == length  # CartPole: 1 per step
            assert float(out.ep_shaped_return[i]) == pytest.approx(0.5 * length)
            np.testing.assert_allclose(np.asarray(out.ep_terms[i]), [length, -0.5 * length])
            running[i] = 0
            finished += 1
    assert finished >= 4


def test_the_gymnasium_adapters_pass_the_env_checker_and_make_vec_uses_the_batched_one():
    check_env(JaxGymEnv("minigrid/MiniGrid-DoorKey-5x5"), skip_render_check=True)
    check_env(JaxGymEnv("gymnax/CartPole-v1"), skip_render_check=True)
    venv = rewardlab.make_vec("minigrid/MiniGrid-DoorKey-5x5", 4, reward=["env", "step_penalty"])
    assert isinstance(venv, ShapedVectorEnv) and isinstance(venv.env, JaxVectorEnv)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(300):
        venv.step(rng.integers(0, 6, 4))
    episodes = venv.pop_episodes()
    assert episodes and all(e.success is not None for e in episodes)
    assert all(e.terms["step_penalty"] == pytest.approx(-0.01 * e.length) for e in episodes)
    with pytest.raises(InvalidArgument, match="unknown MiniGrid env 'MiniGrid-Nope'"):
        make_env("minigrid/MiniGrid-Nope")
    with pytest.raises(InvalidArgument, match="'gymnax/<id>' or 'minigrid/<id>'"):
        make_env("CartPole-v1")


@pytest.mark.slow
def test_every_registered_jax_env_resets_and_steps_inside_its_declared_spaces():
    # Eager (no jit): one compile per env would take minutes on 2 cores; this checks the same code.
    with jax.disable_jit():
        for name in [f"gymnax/{t}" for t in GYMNAX_TASKS] + [f"minigrid/{t}" for t in MINIGRID_TASKS]:
            env = make_env(name)
            ospace, aspace = _spaces(env)
            aspace.seed(0)
            obs, state = env.reset(jax.random.PRNGKey(0))
            assert ospace.contains(np.asarray(obs)), name
            for i in range(2):
                obs, state, reward, term, trunc, info = env.step(jax.random.PRNGKey(i), state, aspace.sample())
                assert ospace.contains(np.asarray(obs)) and np.isfinite(float(reward)), name
                assert set(info) == {"final_obs", "features", "success"}, name
