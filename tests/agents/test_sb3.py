"""SB3 on our shaped vector env: the VecEnv adapter and the episode logger callback."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.logger import Logger

import rewardlab
from rewardlab.agents.sb3 import Sb3VecEnv, ShapedEpisodeLogger

TERMS = ["env", {"name": "step_penalty", "params": {"value": 0.1}}]


def test_adapter_sets_terminal_observation_and_truncation_flags():
    venv = rewardlab.make_vec("CartPole-v1", 2, reward=TERMS, max_episode_steps=5)
    vec = Sb3VecEnv(venv)
    vec.seed(0)
    obs = vec.reset()
    assert obs.shape == (2, 4)
    seen_trunc = False
    for _ in range(6):
        vec.step_async(np.zeros(2, dtype=np.int64) + np.arange(2) % 2)
        obs, rew, done, infos = vec.step_wait()
        # SB3 sees the shaped reward: +1 from CartPole, -0.1 step penalty
        np.testing.assert_allclose(rew, 0.9, rtol=1e-6)
        for i in np.flatnonzero(done):
            assert infos[i]["terminal_observation"].shape == (4,)
            # the time limit (5 steps) is a truncation: SB3 must bootstrap
            seen_trunc |= infos[i]["TimeLimit.truncated"]
    assert seen_trunc


def test_episode_logger_records_true_and_shaped_returns():
    venv = rewardlab.make_vec("CartPole-v1", 2, reward=TERMS)
    model = PPO("MlpPolicy", Sb3VecEnv(venv), n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    recorded: dict[str, float] = {}

    class Capture(Logger):
        def record(self, key, value, exclude=None):
            recorded[key] = value
            super().record(key, value, exclude)

    model.set_logger(Capture(folder=None, output_formats=[]))
    model.learn(256, callback=ShapedEpisodeLogger(venv))
    assert recorded["charts/true_return"] > 0
    # shaped = true - 0.1 * length, exactly, averaged over the same episodes
    assert recorded["charts/shaped_return"] == pytest.approx(
        recorded["charts/true_return"] - 0.1 * recorded["charts/episode_length"], rel=1e-4)
    assert recorded["reward_terms/step_penalty"] == pytest.approx(-0.1 * recorded["charts/episode_length"], rel=1e-4)


def test_logger_rejects_a_plain_env():
    with pytest.raises(TypeError, match="needs a ShapedVectorEnv"):
        ShapedEpisodeLogger(rewardlab.make_vec("CartPole-v1", 1))
