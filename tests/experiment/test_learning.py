"""Learning tests (slow, run in CI): the embedded default experiment (our PPO) and its SB3 twin
solve Room-5x5 within 50k steps through `run_experiment`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rewardlab
from rewardlab.config import load_config
from rewardlab.experiment.evaluate import evaluate
from rewardlab.experiment.runner import run_experiment

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["ppo_minihack_room.yaml", "sb3_ppo_minihack_room.yaml"])
def test_experiment_solves_room_5x5_within_50k_steps(tmp_path, experiment):
    cfg, _ = load_config(ROOT / "experiments" / experiment,
                         ["log.tensorboard=false", "eval.final_episodes=50"])
    assert cfg.train.total_steps <= 50_000 + 1024  # the budget the issue sets (one rollout of slack)
    summary = run_experiment(cfg, out=tmp_path)
    final = json.loads((summary.run_dir / "seed_0" / "final_eval.json").read_text())

    # A random policy on the same eval env, measured here: the number that has to move.
    venv = rewardlab.make_vec("minihack/Room-5x5", 4, obs=["chars_crop"])
    rng = np.random.default_rng(0)
    rand = evaluate(lambda obs, det: rng.integers(0, 8, size=4), venv, 50, seed=10_000)
    venv.close()

    assert final["success_rate"] >= 0.8
    # the learned policy walks (nearly) straight to the stairs: 4 diagonal steps are optimal
    assert final["episode_length_mean"] <= 8
    assert final["episode_length_mean"] < 0.5 * float(np.mean(rand.lengths))
    assert final["true_return_mean"] > rand.mean_return
