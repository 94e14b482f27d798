"""Gymnasium wrappers around the shaping wrappers: the known-bad orders are refused or followed,
``pop_episodes`` is reachable through outer wrappers, ``NormalizeObservation`` works."""

import functools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import rewardlab
from rewardlab.core.stack import RewardStack
from rewardlab.core.terms import Term
from rewardlab.core.wrappers import NormalizeObservation, ShapedEnv, ShapedVectorEnv, pop_episodes
from rewardlab.errors import InvalidArgument
from rewardlab.shaping.basic import EnvReward

VW = gym.wrappers.vector


class CtrlCost(Term):
    """``-sum(a²)`` of the action the term is shown (MuJoCo's ctrl_cost reads the executed action)."""

    name = "ctrl"

    def __call__(self, t):
        return -np.square(np.asarray(t.action, np.float32)).reshape(t.num_envs, -1).sum(1)


def stack():
    return RewardStack([EnvReward(), CtrlCost()])


@pytest.mark.parametrize("below", [
    gym.wrappers.NormalizeReward,
    functools.partial(gym.wrappers.ClipReward, min_reward=0.0, max_reward=0.5),
    functools.partial(gym.wrappers.TransformReward, func=lambda r: 2 * r),
])
def test_reward_wrapper_below_shaped_env_is_refused(below):
    inner = below(gym.make("CartPole-v1"))
    name = type(inner).__name__
    with pytest.raises(InvalidArgument, match=rf"{name} is below ShapedEnv: the 'true' return and every term would "
                                              r"see its transformed reward .* put it above \(outside\)"):
        ShapedEnv(inner, ["env"])


def test_normalize_reward_above_shaped_env_keeps_the_true_return():
    env = gym.wrappers.NormalizeReward(rewardlab.make("CartPole-v1", reward=["env", "step_penalty"]))
    env.reset(seed=0)
    rewards, done, steps = [], False, 0
    while not done:
        _, r, term, trunc, info = env.step(0)
        rewards.append(r)
        steps += 1
        done = term or trunc
        assert sum(info["reward_terms"].values()) == pytest.approx(0.99)  # what the terms saw: unnormalised
    assert not np.allclose(rewards, 0.99)  # the learner sees the normalised reward
    (episode,) = pop_episodes(env)
    assert (episode.true_return, episode.length) == (float(steps), steps)  # 11.0, not a normalised sum


@pytest.mark.parametrize(("below", "agent_action", "executed"), [
    (gym.wrappers.ClipAction, 5.0, 2.0),
    (functools.partial(gym.wrappers.RescaleAction, min_action=-1.0, max_action=1.0), 0.5, 1.0),
])
def test_action_wrapper_below_shaped_env_terms_see_the_executed_action(below, agent_action, executed):
    env = ShapedEnv(below(gym.make("Pendulum-v1")), stack())
    env.reset(seed=0)
    info = env.step(np.array([agent_action], np.float32))[4]
    assert info["reward_terms"]["ctrl"] == pytest.approx(-executed**2)
    assert env.unwrapped.last_u == pytest.approx(executed)  # what Pendulum itself executed


def test_vector_reward_wrappers_below_shaped_vector_env_are_refused():
    for wrap in (VW.NormalizeReward, functools.partial(VW.ClipReward, min_reward=0.0, max_reward=0.5)):
        venv = wrap(gym.make_vec("CartPole-v1", 2, vectorization_mode="sync"))
        with pytest.raises(InvalidArgument, match=rf"{type(venv).__name__} is below ShapedVectorEnv"):
            ShapedVectorEnv(venv, RewardStack([EnvReward()]))


def test_vector_clip_action_below_is_followed_and_per_copy_action_wrappers_are_refused():
    venv = VW.ClipAction(gym.make_vec("Pendulum-v1", 2, vectorization_mode="sync"))
    env = ShapedVectorEnv(venv, stack())
    env.reset(seed=0)
    info = env.step(np.array([[5.0], [-1.0]], np.float32))[4]
    assert info["reward_terms"]["ctrl"].tolist() == pytest.approx([-4.0, -1.0])
    per_copy = gym.make_vec("Pendulum-v1", 2, vectorization_mode="sync", wrappers=[gym.wrappers.ClipAction])
    with pytest.raises(InvalidArgument, match=r"ClipAction is in a vector copy's wrappers.* "
                                              r"gymnasium\.wrappers\.vector\.ClipAction"):
        ShapedVectorEnv(per_copy, stack())
    for mode in ("sync", "async"):  # rewardlab.make_vec checks one copy in this process, so async too
        with pytest.raises(InvalidArgument, match="ClipAction is in a vector copy's wrappers"):
            rewardlab.make_vec("Pendulum-v1", 2, reward=["env"], vectorization_mode=mode,
                               wrappers=[gym.wrappers.ClipAction])
        with pytest.raises(InvalidArgument, match="NormalizeReward is below the shaping wrapper"):
            rewardlab.make_vec("Pendulum-v1", 2, reward=["env"], vectorization_mode=mode,
                               wrappers=[gym.wrappers.NormalizeReward])
    # Without shaping, any per-copy wrapper is the user's business.
    rewardlab.make_vec("Pendulum-v1", 2, wrappers=[gym.wrappers.ClipAction]).close()


def _episodes_through(outer, steps=60):
    outer.reset(seed=0)
    for _ in range(steps):
        outer.step(np.zeros(outer.num_envs, np.int64))
    return pop_episodes(outer)


def test_pop_episodes_through_outer_vector_wrappers():
    venv = rewardlab.make_vec("CartPole-v1", 2, reward=["env"])  # SAME_STEP
    outer = VW.RecordEpisodeStatistics(NormalizeObservation(venv))
    episodes = _episodes_through(outer)
    assert len(episodes) >= 4 and all(e.true_return == e.length for e in episodes)
    # Gymnasium's own NormalizeObservation on the Gymnasium path (NEXT_STEP autoreset)
    venv = gym.make_vec("toy/GridWorld-v0", 2, reward=["env", "step_penalty"], size=2)
    outer = VW.RecordEpisodeStatistics(VW.NormalizeObservation(venv))
    outer.reset(seed=0)
    lengths = []
    for _ in range(10):
        info = outer.step(np.array([1, 2]))[4]  # right / down: 2 steps to the goal at (1, 1)
        if "episode" in info:
            lengths += info["episode"]["l"][info["_episode"]].tolist()
    assert sorted(e.length for e in pop_episodes(outer)) == sorted(lengths)
    with pytest.raises(InvalidArgument, match="no ShapedEnv or ShapedVectorEnv under"):
        pop_episodes(gym.make_vec("CartPole-v1", 1))


def test_our_normalize_observation_is_gymnasiums_on_next_step():
    def run(wrapper):
        env = wrapper(gym.make_vec("CartPole-v1", 2, vectorization_mode="sync"))
        obs = [env.reset(seed=3)[0]]
        obs += [env.step(np.array([0, 0]))[0] for _ in range(30)]
        return np.stack(obs)

    np.testing.assert_array_equal(run(NormalizeObservation), run(VW.NormalizeObservation))


def test_our_normalize_observation_with_same_step_normalises_the_final_obs():
    raw = rewardlab.make_vec("CartPole-v1", 2)
    norm = NormalizeObservation(rewardlab.make_vec("CartPole-v1", 2))
    assert norm.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    with pytest.raises(AssertionError):  # what Gymnasium 1.2's own wrapper does here
        VW.NormalizeObservation(rewardlab.make_vec("CartPole-v1", 2))
    raw.reset(seed=1)
    norm.reset(seed=1)
    checked = 0
    for _ in range(40):
        _, _, term, trunc, info_raw = raw.step(np.array([0, 1]))
        _, _, _, _, info = norm.step(np.array([0, 1]))
        for i in np.flatnonzero(term | trunc):
            expected = (info_raw["final_obs"][i] - norm.obs_rms.mean) / np.sqrt(norm.obs_rms.var + norm.epsilon)
            np.testing.assert_allclose(info["final_obs"][i], expected, rtol=1e-6)
            assert not np.allclose(info["final_obs"][i], info_raw["final_obs"][i])
            checked += 1
    assert checked >= 2


def test_gymnasium_episode_statistics_and_normalize_observation_on_next_step():
    venv = rewardlab.make_vec("CartPole-v1", 2, reward=["env", "step_penalty"], autoreset_mode="next_step")
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    outer = VW.RecordEpisodeStatistics(VW.NormalizeObservation(venv))
    outer.reset(seed=0)
    gym_eps = []
    for _ in range(80):
        info = outer.step(np.zeros(2, np.int64))[4]
        if "episode" in info:
            mask = info["_episode"]
            gym_eps += zip(info["episode"]["l"][mask].tolist(), info["episode"]["r"][mask].tolist(), strict=True)
    ours = [(e.length, e.shaped_return) for e in pop_episodes(outer)]
    assert len(ours) >= 8
    assert [n for n, _ in sorted(gym_eps)] == [n for n, _ in sorted(ours)]
    assert [r for _, r in sorted(gym_eps)] == pytest.approx([r for _, r in sorted(ours)], abs=1e-5)
