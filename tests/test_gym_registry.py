"""Every rewardlab env id is a Gymnasium id: ``gymnasium.make``/``make_vec``/``spec`` on our names."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import rewardlab
from rewardlab.core.wrappers import ShapedEnv, ShapedVectorEnv
from rewardlab.envs import ENVS
from rewardlab.envs.gym_registry import EnvEntry, register_gym_id
from rewardlab.errors import RewardLabError

# Families cheap enough to build and step here; the others (JAX, ALFWorld, MuJoCo) get gymnasium.spec.
CHEAP = ("toy/", "minihack/", "swe/TextEdit")


def test_every_env_name_is_registered_in_gymnasium_with_our_entry_point():
    ours = {k for k, spec in gym.registry.items() if isinstance(spec.entry_point, EnvEntry)}
    assert ours == set(ENVS.names())
    assert len(ours) > 50


@pytest.mark.parametrize("env_id", ENVS.names())
def test_gymnasium_spec_of_every_id(env_id):
    spec = gym.spec(env_id)
    assert spec.id == env_id and spec.entry_point == EnvEntry(env_id)
    assert spec.max_episode_steps is None  # no TimeLimit above the shaping wrapper
    assert spec.vector_entry_point is not None


@pytest.mark.parametrize("env_id", [n for n in ENVS.names() if n.startswith(CHEAP)])
def test_gymnasium_make_on_cheap_ids(env_id):
    env = gym.make(env_id, reward=["env", "step_penalty"], gamma=0.9)
    try:
        assert env.spec.id == env_id
        assert isinstance(env.get_wrapper_attr("stack"), rewardlab.RewardStack)
        env.reset(seed=0)
        done = False
        for _ in range(3):
            _, reward, term, trunc, info = env.step(env.action_space.sample())
            assert reward == pytest.approx(sum(info["reward_terms"].values()), abs=1e-6)
            assert info["reward_terms"]["step_penalty"] == pytest.approx(-0.01)
            done = term or trunc
            if done:
                break
        popped = env.get_wrapper_attr("pop_episodes")()  # reachable through gymnasium.make's wrappers
        assert len(popped) == int(done)
    finally:
        env.close()


def test_gridworld_spec_rebuilds_the_shaped_env_with_kwargs():
    env = gym.make("toy/GridWorld-v0", reward=["env", "step_penalty"], size=3)
    assert env.spec.id == "toy/GridWorld-v0" and env.spec.kwargs["size"] == 3
    twin = gym.make(env.spec)
    assert twin.spec.id == "toy/GridWorld-v0" and twin.observation_space.shape == (9,)
    assert twin.get_wrapper_attr("stack") is not env.get_wrapper_attr("stack")
    # rewardlab.make sets our id too (the upstream one was MiniHack-Room-5x5-v0 / None)
    assert rewardlab.make("toy/GridWorld-v0").spec.id == "toy/GridWorld-v0"


def test_gamma_reaches_a_potential_term_through_gymnasium_make():
    potential = {"name": "potential", "params": {"potential": "rewardlab.envs.gridworld:goal_distance",
                                                 "params": {"goal": [2, 2], "size": 3}}}
    env = gym.make("toy/GridWorld-v0", reward=["env", potential], gamma=0.5, size=3, goal=(2, 2))
    env.reset(seed=0)
    # Φ(s) = -manhattan(pos, goal)/size: from (0,0) (Φ=-4/3) right to (0,1) (Φ=-1): 0.5*(-1) + 4/3
    terms = env.step(1)[4]["reward_terms"]
    assert terms["potential"] == pytest.approx(0.5 * -1.0 + 4 / 3, abs=1e-6)


def test_gymnasium_make_vec_default_is_our_batched_shaping_with_next_step_autoreset():
    venv = gym.make_vec("toy/GridWorld-v0", 3, reward=["env", "step_penalty"], size=3)
    assert isinstance(venv, ShapedVectorEnv) and venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert venv.spec.id == "toy/GridWorld-v0"
    venv.reset(seed=0)
    _, reward, *_ = venv.step(np.array([1, 1, 1]))
    assert reward.tolist() == pytest.approx([-0.01] * 3)
    venv.close()
    # Gymnasium's own sync mode: one ShapedEnv per copy, infos stacked by Gymnasium.
    venv = gym.make_vec("toy/GridWorld-v0", 2, vectorization_mode="sync", reward=["env", "step_penalty"], size=3)
    assert isinstance(venv.envs[0].unwrapped, rewardlab.envs.gridworld.GridWorld)
    venv.reset(seed=0)
    info = venv.step(np.array([1, 1]))[4]
    assert info["reward_terms"]["step_penalty"].tolist() == pytest.approx([-0.01, -0.01])


def test_register_env_also_registers_the_gymnasium_id():
    from rewardlab.envs.gridworld import make_gridworld

    name = "user/TinyGrid-v0"
    rewardlab.register_env(name, lambda **kw: make_gridworld(size=2, **kw))
    try:
        env = gym.make(name, reward=["env"])
        assert env.spec.id == name and env.observation_space.shape == (4,)
        assert isinstance(env.unwrapped.spec.entry_point, EnvEntry)
        assert any(isinstance(w, ShapedEnv) for w in [env, env.env, env.env.env])
    finally:
        ENVS.unregister(name)
        gym.registry.pop(name, None)


def test_a_name_that_is_another_packages_gymnasium_id_is_refused():
    with pytest.raises(RewardLabError, match="'CartPole-v1' is already a Gymnasium id of another package"):
        register_gym_id("CartPole-v1")
