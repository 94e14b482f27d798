"""Gymnasium MuJoCo tasks: reward components as terms, sparse reach shaping, the runner."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("mujoco")

import rewardlab  # noqa: E402
from rewardlab.config import parse_config  # noqa: E402
from rewardlab.envs.robotics import COMPONENTS, component_terms  # noqa: E402
from rewardlab.errors import InvalidArgument, TermError  # noqa: E402
from rewardlab.experiment.runner import run_experiment  # noqa: E402


def _random_steps(venv, n, seed=0):
    rng = np.random.default_rng(seed)
    venv.reset(seed=seed)
    for _ in range(n):
        act = rng.uniform(-1, 1, venv.action_space.shape).astype(np.float32)
        yield venv.step(act)


@pytest.mark.parametrize("task", sorted(COMPONENTS))
def test_components_with_weight_one_sum_to_the_env_reward(task):
    venv = rewardlab.make_vec(f"robotics/{task}", 2, reward=component_terms(task))
    seen = 0
    for _, rew, _, _, info in _random_steps(venv, 30):
        np.testing.assert_allclose(rew, info["reward_env"], rtol=1e-5, atol=1e-5)
        assert set(info["reward_terms"]) == {k.removeprefix("reward_") for k in COMPONENTS[task]}
        seen += np.abs(info["reward_env"]).sum() > 0
    assert seen > 0  # the reward was not identically zero
    venv.close()


def test_reweighting_a_component_changes_the_reward_by_that_component():
    terms = component_terms("HalfCheetah-v5")
    terms[1]["weight"] = 3.0  # triple the control cost
    venv = rewardlab.make_vec("robotics/HalfCheetah-v5", 2, reward=terms)
    for _, rew, _, _, info in _random_steps(venv, 10):
        ctrl = info["reward_terms"]["ctrl"] / 3.0
        np.testing.assert_allclose(rew, info["reward_env"] + 2.0 * ctrl, rtol=1e-5, atol=1e-5)
        assert (ctrl < 0).all()


def test_missing_component_is_a_clear_error():
    venv = rewardlab.make_vec("robotics/Reacher-v5", 1, reward=[{"name": "info_component",
                                                                "params": {"key": "reward_forward"}}])
    venv.reset(seed=0)
    with pytest.raises(TermError, match=r"'info_component' raised .*needs info\['reward_forward'\].*reward_ctrl"):
        venv.step(np.zeros((1, 2), np.float32))


def test_unknown_task_and_bad_radius():
    with pytest.raises(InvalidArgument, match="unknown robotics task 'Cheetah'"):
        rewardlab.envs.robotics.make_robotics("Cheetah")
    with pytest.raises(InvalidArgument, match="radius must be > 0"):
        rewardlab.make("robotics/ReacherSparse-v5", radius=0.0)


def test_sparse_reacher_reward_is_success_and_shaping_is_dense():
    reward = ["env", {"name": "potential", "params": {"potential": "robotics/reach_distance",
                                                      "params": {"a": [8, 10]}}},
              {"name": "reach_distance", "params": {"a": [8, 10]}, "weight": 0.1}]
    venv = rewardlab.make_vec("robotics/ReacherSparse-v5", 2, reward=reward, gamma=0.99, radius=0.05)
    for obs, _, _, _, info in _random_steps(venv, 20):
        assert set(np.unique(info["reward_env"])) <= {0.0, 1.0}
        assert (info["reward_env"] == info["is_success"]).all()
        dist = np.linalg.norm(obs[:, 8:10], axis=1)
        np.testing.assert_allclose(info["reward_terms"]["reach_distance"], -0.1 * dist, rtol=1e-4, atol=1e-6)
        assert (info["reward_terms"]["potential"] != 0).all()  # dense: every step moves the potential


@pytest.mark.parametrize("agent", ["ppo", "sb3_ppo"])
def test_shaped_sparse_reacher_runs_through_the_runner(tmp_path, agent):
    cfg = parse_config({
        "name": f"reacher_runner_test_{agent}",
        "env": {"id": "robotics/ReacherSparse-v5", "n_envs": 2},
        "reward": {"terms": ["env", {"name": "potential", "params": {"potential": "robotics/reach_distance",
                                                                     "params": {"a": [8, 10]}}}]},
        "agent": {"name": agent, "params": {"n_steps": 64, **({"batch_size": 64} if agent == "sb3_ppo" else {})}},
        "train": {"total_steps": 256},
        "eval": {"every_steps": 256, "episodes": 2, "final_episodes": 2, "n_envs": 1},
        "log": {"tensorboard": False},
    })
    run = run_experiment(cfg, out=tmp_path).run_dir
    final = json.loads((run / "seed_0" / "final_eval.json").read_text())
    assert final["episodes"] == 2 and final["episode_length_mean"] == 50
    assert final["success_rate"] is not None
    rows = [json.loads(x) for x in (run / "seed_0" / "metrics.jsonl").read_text().splitlines()]
    assert any("reward_terms/potential" in r for r in rows)


@pytest.mark.parametrize("task", ["HalfCheetah-v5", "Ant-v5", "Reacher-v5", "ReacherSparse-v5", "PusherSparse-v5"])
def test_gymnasium_env_checker_passes(task):
    from gymnasium.utils.env_checker import check_env

    check_env(rewardlab.make(f"robotics/{task}"), skip_render_check=True)


def test_gymnasium_env_checker_passes_on_a_shaped_task():
    from gymnasium.utils.env_checker import check_env

    # a dense reach term and a control cost on top of the sparse task reward
    shaped = rewardlab.make("robotics/ReacherSparse-v5", reward=[
        "env", {"name": "reach_distance", "params": {"a": [8, 10]}}, {"name": "ctrl_cost", "weight": 0.1}])
    check_env(shaped, skip_render_check=True)


def test_ctrl_cost_term_equals_reachers_own_control_cost():
    # Reacher-v5: reward_ctrl = -1 * Σa² (ctrl weight 1)
    venv = rewardlab.make_vec("robotics/Reacher-v5", 2, reward=[
        {"name": "info_component", "params": {"key": "reward_ctrl"}, "as": "env_ctrl"}, "ctrl_cost"])
    for _, _, _, _, info in _random_steps(venv, 10):
        np.testing.assert_allclose(info["reward_terms"]["ctrl_cost"], info["reward_terms"]["env_ctrl"], rtol=1e-5)
        assert (info["reward_terms"]["ctrl_cost"] < 0).all()
