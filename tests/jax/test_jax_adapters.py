"""The Gymnasium adapter of the JAX envs under the torch agents: ``rewardlab run`` with our PPO and
with SB3 PPO on ``minigrid/...`` and ``gymnax/...`` (numpy reward terms on the adapter's info)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("jax")
pytest.importorskip("xminigrid")
pytest.importorskip("torch")

from rewardlab.config import parse_config  # noqa: E402
from rewardlab.experiment.runner import run_experiment  # noqa: E402


@pytest.mark.parametrize(("agent", "env_id"), [("ppo", "minigrid/MiniGrid-DoorKey-5x5"),
                                               ("sb3_ppo", "gymnax/CartPole-v1")])
def test_torch_agents_train_on_the_jax_envs_through_the_runner(tmp_path, agent, env_id):
    if agent == "sb3_ppo":
        pytest.importorskip("stable_baselines3")
    params = {"n_steps": 16} if agent == "ppo" else {"n_steps": 16, "batch_size": 32}
    terms = ["env", {"name": "pickup", "params": {"item": "key"}}] if env_id.startswith("minigrid") else ["env"]
    cfg = parse_config({
        "name": f"adapter_{agent}", "env": {"id": env_id, "n_envs": 4}, "reward": {"terms": terms},
        "agent": {"name": agent, "params": params}, "train": {"total_steps": 256},
        "eval": {"every_steps": 128, "episodes": 2, "final_episodes": 2, "n_envs": 2},
        "log": {"tensorboard": False, "checkpoint_every": 128},
    })
    run = run_experiment(cfg, out=tmp_path).run_dir
    final = json.loads((run / "seed_0" / "final_eval.json").read_text())
    assert final["episodes"] == 2
    if env_id.startswith("minigrid"):
        assert final["success_rate"] is not None  # is_success reaches the evaluation through final_info
    assert json.loads((run / "seed_0" / "status.json").read_text())["status"] == "done"
