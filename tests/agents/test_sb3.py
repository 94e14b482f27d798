"""SB3 on our shaped envs: the VecEnv adapter, its per-env infos and episode records, the
episode logger on any SB3 VecEnv, evaluate_policy reporting the true return, per-index
env access, and frames for VecVideoRecorder."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import Logger

import rewardlab
from rewardlab.agents.sb3 import Sb3VecEnv, ShapedEpisodeLogger
from rewardlab.core.wrappers import ShapedEnv
from rewardlab.errors import InvalidArgument

TERMS = ["env", {"name": "step_penalty", "params": {"value": 0.1}}]


class _Capture(Logger):
    """SB3 logger that keeps the last value of every key it was given."""

    def __init__(self):
        super().__init__(folder=None, output_formats=[])
        self.seen: dict[str, float] = {}

    def record(self, key, value, exclude=None):
        self.seen[key] = value
        super().record(key, value, exclude)


def _ppo(vec) -> tuple[PPO, _Capture]:
    model = PPO("MlpPolicy", vec, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    capture = _Capture()
    model.set_logger(capture)
    return model, capture


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


def test_per_env_infos_keep_terms_and_the_episode_record_holds_the_true_return():
    vec = Sb3VecEnv(rewardlab.make_vec("CartPole-v1", 3, reward=TERMS, max_episode_steps=7))
    vec.seed(1)
    vec.reset()
    ended = 0
    for _ in range(8):
        vec.step_async(np.array([0, 1, 0]))
        _, rew, done, infos = vec.step_wait()
        for i, info in enumerate(infos):
            assert info["reward_env"] == 1.0
            assert info["reward_terms"]["step_penalty"] == pytest.approx(-0.1)
            assert info["reward_terms"]["env"] + info["reward_terms"]["step_penalty"] == pytest.approx(rew[i])
            assert ("episode" in info) == bool(done[i]) == ("episode_stats" in info)
        for i in np.flatnonzero(done):
            stats, ep = infos[i]["episode_stats"], infos[i]["episode"]
            # Monitor's record carries the true return (length x 1.0), not the shaped one
            assert ep["r"] == stats["true_return"] == ep["l"] == stats["length"]
            assert stats["shaped_return"] == pytest.approx(0.9 * stats["length"])
            ended += 1
    assert ended >= 3


def test_unshaped_vector_env_gets_episode_records_from_its_own_rewards():
    vec = Sb3VecEnv(rewardlab.make_vec("CartPole-v1", 2, max_episode_steps=4))
    vec.reset()
    for _ in range(4):
        vec.step_async(np.array([0, 1]))
        _, _, done, infos = vec.step_wait()
    assert done.all()
    assert [info["episode"]["r"] for info in infos] == [4.0, 4.0]
    assert [info["episode"]["l"] for info in infos] == [4, 4]


@pytest.mark.parametrize("pass_venv", [False, True])
def test_episode_logger_records_true_and_shaped_returns(pass_venv):
    venv = rewardlab.make_vec("CartPole-v1", 2, reward=TERMS)
    model, capture = _ppo(Sb3VecEnv(venv))
    model.learn(256, callback=ShapedEpisodeLogger(venv if pass_venv else None))
    seen = capture.seen
    assert seen["charts/true_return"] > 0
    # shaped = true - 0.1 * length, exactly, averaged over the same episodes
    assert seen["charts/shaped_return"] == pytest.approx(
        seen["charts/true_return"] - 0.1 * seen["charts/episode_length"], rel=1e-4)
    assert seen["reward_terms/step_penalty"] == pytest.approx(-0.1 * seen["charts/episode_length"], rel=1e-4)
    # SB3's own rollout/ep_rew_mean is the true return (CartPole pays 1 per step)
    model.logger.dump(model.num_timesteps)
    assert "rollout/ep_rew_mean" in seen


def test_make_vec_env_with_the_logger_and_evaluate_policy_reports_the_true_return():
    # SB3's make_vec_env puts a Monitor on each env, then wrapper_class on top: shaping above
    # the Monitor, so Monitor records the env's (true) reward.
    vec = make_vec_env("CartPole-v1", n_envs=2, seed=0, env_kwargs={"max_episode_steps": 40},
                       wrapper_class=ShapedEnv, wrapper_kwargs={"stack": TERMS})
    model, capture = _ppo(vec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the logger warns when the Monitor holds the shaped return
        model.learn(256, callback=ShapedEpisodeLogger())
    assert capture.seen["charts/true_return"] > capture.seen["charts/shaped_return"] > 0
    returns, lengths = evaluate_policy(model, vec, n_eval_episodes=4, return_episode_rewards=True)
    # CartPole pays 1 per step: the true return is the length; the shaped one would be 0.9 x it
    assert returns == [float(n) for n in lengths]

    ours = Sb3VecEnv(rewardlab.make_vec("CartPole-v1", 2, reward=TERMS, max_episode_steps=40))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not wrapped with a Monitor" warning either
        returns, lengths = evaluate_policy(model, ours, n_eval_episodes=4, return_episode_rewards=True)
    assert returns == [float(n) for n in lengths]


def test_logger_warns_when_a_monitor_sits_above_the_shaping():
    vec = make_vec_env(lambda: rewardlab.make("CartPole-v1", reward=TERMS), n_envs=2, seed=0)
    model, _ = _ppo(vec)
    with pytest.warns(UserWarning, match="holds the shaped return"):
        model.learn(128, callback=ShapedEpisodeLogger())


def test_logger_refuses_an_unshaped_env_when_an_episode_ends():
    model, _ = _ppo(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    with pytest.raises(InvalidArgument, match="without info\\['episode_stats'\\]"):
        model.learn(128, callback=ShapedEpisodeLogger())


def test_env_method_get_attr_set_attr_act_per_index():
    vec = Sb3VecEnv(rewardlab.make_vec("CartPole-v1", 3, reward=TERMS))
    vec.set_attr("marker", 7, indices=1)
    assert vec.get_attr("marker", indices=[1]) == [7]
    with pytest.raises(AttributeError):
        vec.get_attr("marker", indices=0)
    out = vec.env_method("reset", seed=5, indices=[0, 2])
    assert len(out) == 2
    np.testing.assert_array_equal(out[0][0], out[1][0])  # same seed, same first observation
    assert vec.env_is_wrapped(ShapedEnv) == [False, False, False]  # shaping is on the vector env


def test_adapter_refuses_next_step_autoreset():
    with pytest.raises(InvalidArgument, match="SAME_STEP"):
        Sb3VecEnv(rewardlab.make_vec("CartPole-v1", 2, reward=TERMS, autoreset_mode=AutoresetMode.NEXT_STEP))


def test_get_images_feeds_vec_video_recorder(tmp_path):
    import imageio.v3 as iio
    from stable_baselines3.common.vec_env import VecVideoRecorder

    vec = Sb3VecEnv(rewardlab.make_vec("CartPole-v1", 2, reward=TERMS, render_mode="rgb_array"))
    vec.reset()
    frames = vec.get_images()
    assert len(frames) == 2 and frames[0].shape == (400, 600, 3)
    rec = VecVideoRecorder(vec, str(tmp_path), record_video_trigger=lambda step: step == 0, video_length=12)
    rec.reset()
    for _ in range(12):
        rec.step(np.array([0, 1]))
    rec.close()
    (video,) = tmp_path.glob("*.mp4")
    assert len(iio.imread(video)) >= 10  # frames decoded from the file
