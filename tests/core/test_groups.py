"""Group rollouts (``rewardlab.core.groups``): a grouped reset starts K episodes of one task
instance side by side on MiniHack (same seed), ALFWorld (same game) and SWE (same task), and
the group-relative transforms give hand-computed values."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import rewardlab
from rewardlab.core.groups import EpisodeGroups, GroupedVectorEnv, group_relative
from rewardlab.errors import InvalidArgument


def test_group_ids_and_seeds():
    groups = GroupedVectorEnv(gym.make_vec("CartPole-v1", num_envs=6, vectorization_mode="sync"), 3)
    _, info = groups.reset(seed=7)
    assert info["group"].tolist() == [0, 0, 0, 1, 1, 1]
    seeds = info["group_seed"]
    assert seeds[0] == seeds[1] == seeds[2] != seeds[3] == seeds[4] == seeds[5]
    _, again = groups.reset(seed=7)
    assert again["group_seed"].tolist() == seeds.tolist()  # the reset seed fixes the group seeds


@pytest.mark.parametrize("size", [0, 4, 2.0, True])
def test_bad_group_size_is_refused(size):
    venv = gym.make_vec("CartPole-v1", num_envs=6, vectorization_mode="sync")
    with pytest.raises(InvalidArgument, match="group_size"):
        GroupedVectorEnv(venv, size)


def test_minihack_group_plays_one_level():
    """Same seed in MiniHack: the same map, and the same actions give the same episode."""
    pytest.importorskip("minihack")
    venv = rewardlab.make_vec("minihack/KeyRoom-S5", 4, obs=["chars_crop"])
    groups = GroupedVectorEnv(venv, 2)
    differ = False
    for seed in range(3):
        obs, info = groups.reset(seed=seed)
        assert (info["chars"][0] == info["chars"][1]).all() and (info["chars"][2] == info["chars"][3]).all()
        differ |= bool((info["chars"][0] != info["chars"][2]).any())
        rng = np.random.default_rng(seed)
        for _ in range(10):
            a = rng.integers(venv.single_action_space.n, size=2)
            obs, _, _, _, info = venv.step(np.repeat(a, 2))  # both members of a group act alike
            assert (obs[0] == obs[1]).all() and (obs[2] == obs[3]).all()
    assert differ, "the two groups never got different levels"
    venv.close()


def test_alfworld_group_plays_one_game(tmp_path):
    pytest.importorskip("alfworld")
    venv = rewardlab.make_vec("alfworld/PickAndPlace-v0", 4, games_per_type=4, max_steps=5, data_dir=str(tmp_path))
    groups = GroupedVectorEnv(venv, 2)
    games = set()
    for seed in range(4):
        obs, info = groups.reset(seed=seed)
        assert info["gamefile"][0] == info["gamefile"][1] and info["gamefile"][2] == info["gamefile"][3]
        assert (obs["obs"][0] == obs["obs"][1]).all()
        games |= set(info["gamefile"])
    assert len(games) > 1
    venv.close()


def test_swe_group_works_on_one_task():
    venv = rewardlab.make_vec("swe/PatchSelect-v0", 6, split="train", max_steps=4, outcomes="shipped")
    groups = GroupedVectorEnv(venv, 3)
    tasks = set()
    for seed in range(3):
        _, info = groups.reset(seed=seed)
        ids = list(info["task_id"])
        assert ids[0] == ids[1] == ids[2] and ids[3] == ids[4] == ids[5]
        tasks |= set(ids)
    assert len(tasks) > 1


def test_rloo_on_a_hand_computed_group():
    # group 0: returns 1, 0, 0, 1; mean of the others: 1/3, 2/3, 2/3, 1/3
    # group 1: returns 2, 2, 0, 1; mean of the others: 1, 1, 5/3, 4/3
    x = np.array([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 0.0, 1.0])
    g = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_allclose(group_relative(x, g, "rloo"), [2 / 3, -2 / 3, -2 / 3, 2 / 3, 1, 1, -5 / 3, -1 / 3])


def test_grpo_on_a_hand_computed_group():
    x = np.array([1.0, 0.0, 0.0, 1.0, 3.0, 3.0])
    g = np.array([0, 0, 0, 0, 1, 1])
    std0 = np.sqrt(4 * 0.25 / 3)  # unbiased std of [1, 0, 0, 1]
    expected = [0.5 / (std0 + 1e-6), -0.5 / (std0 + 1e-6), -0.5 / (std0 + 1e-6), 0.5 / (std0 + 1e-6), 0.0, 0.0]
    np.testing.assert_allclose(group_relative(x, g, "grpo"), expected, rtol=1e-6)


def test_baseline_from_another_sample_set_and_singletons():
    # Targets 3 and 5 in group 7, baseline samples [1, 2, 3] there: (x − 2)·3/2.
    out = group_relative(np.array([3.0, 5.0, 4.0]), np.array([7, 7, 9]), baseline=np.array([1.0, 2.0, 3.0, 8.0]),
                         baseline_groups=np.array([7, 7, 7, 9]))
    np.testing.assert_allclose(out, [1.5, 4.5, 4.0])  # group 9 has one sample: no baseline, x unchanged
    with pytest.raises(InvalidArgument, match="group 9 has no baseline sample"):
        group_relative(np.array([1.0, 2.0]), np.array([7, 9]), baseline=np.array([1.0]), baseline_groups=np.array([7]))
    with pytest.raises(InvalidArgument, match="allowed: rloo, grpo"):
        group_relative(np.zeros(2), np.zeros(2), "mean")


def test_won_uses_is_success_where_known_else_the_return():
    ep = EpisodeGroups(group=np.zeros(4, int), active=np.ones((1, 4), bool), returns=np.array([1.0, 1.0, 0.0, 0.5]),
                       lengths=np.ones(4, int), success=np.array([0.0, np.nan, 1.0, np.nan]), finished=np.ones(4, bool))
    assert ep.won().tolist() == [False, True, True, True]
