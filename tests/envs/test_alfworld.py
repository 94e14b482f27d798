"""The ALFWorld family on the real text engine: generator validity and reproducibility, the planner
walkthrough winning every generated game in our env, the env API (Gymnasium checker), the reward
primitives and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("alfworld")
pytest.importorskip("textworld")

import gymnasium as gym  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

import rewardlab  # noqa: E402
from rewardlab.envs.alfworld.env import ENV_TASKS, AlfWorldEnv, tokenize  # noqa: E402
from rewardlab.envs.alfworld.generate import (  # noqa: E402
    TASK_TYPES,
    GenSettings,
    ensure_corpus,
    generate_corpus,
    load_rooms,
    split_of,
)
from rewardlab.errors import ConfigError, InvalidArgument, TermError  # noqa: E402

SMALL = dict(games_per_type=2, heldout_per_type=1)  # 18 games over the six task types
EASY = dict(max_receptacles=3, num_distractors=0, closed_containers=False)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("alfworld")


@pytest.fixture(scope="module")
def corpus(data_dir):
    return ensure_corpus(GenSettings(**SMALL), data_dir)


def test_corpus_covers_all_task_types_and_splits(corpus):
    path, manifest = corpus
    games = manifest["games"]
    assert len(games) == 6 * 3
    assert {g["task"] for g in games} == set(TASK_TYPES)
    for g in games:
        game = json.loads((path / g["path"]).read_text())
        traj = json.loads((path / g["path"]).parent.joinpath("traj_data.json").read_text())
        assert game["solvable"] is True and game["walkthrough"], g
        assert set(game) >= {"pddl_domain", "grammar", "pddl_problem"}
        assert f"Your task is to: {g['goal']}." in game["grammar"]
        assert traj["task_type"] == TASK_TYPES[g["task"]]
        assert split_of(g["room"]) == g["split"]  # held-out games come from held-out floor plans only


def test_rooms_come_from_the_wheel_layouts():
    rooms = load_rooms()
    assert len(rooms) >= 100
    kitchen = next(r for r in rooms if r.name == "FloorPlan1")
    assert "Fridge" in kitchen.receptacles and "Apple" in kitchen.objects


def test_corpus_is_reproducible_from_its_seed(tmp_path):
    s = GenSettings(seed=7, games_per_type=1, heldout_per_type=0, task_types=("pick_and_place", "cool"))
    a, b = generate_corpus(tmp_path / "a", s), generate_corpus(tmp_path / "b", s)
    assert a == b
    for g in a["games"]:
        assert (tmp_path / "a" / g["path"]).read_bytes() == (tmp_path / "b" / g["path"]).read_bytes()
    other = generate_corpus(tmp_path / "c", GenSettings(seed=8, games_per_type=1, heldout_per_type=0,
                                                       task_types=("pick_and_place", "cool")))
    assert [g["path"] for g in other["games"]] != [g["path"] for g in a["games"]] or any(
        (tmp_path / "a" / x["path"]).read_bytes() != (tmp_path / "c" / y["path"]).read_bytes()
        for x, y in zip(a["games"], other["games"], strict=True))


@pytest.mark.parametrize("task", list(ENV_TASKS))
def test_walkthrough_wins_every_generated_game(task, data_dir, corpus):
    if task == "All-v0":
        pytest.skip("All-v0 holds the games of the six single-type envs")
    for split in ("train", "heldout"):
        env = rewardlab.make(f"alfworld/{task}", split=split, data_dir=str(data_dir), **SMALL)
        env_games = env.unwrapped.games
        assert env_games
        for i in range(len(env_games)):
            obs, info = env.reset(options={"game": i})
            total, sub = 0.0, 0
            for cmd in info["walkthrough"]:
                assert cmd in info["admissible_commands"], (cmd, info["admissible_commands"])
                obs, r, term, trunc, info = env.step(info["admissible_commands"].index(cmd))
                total += r
                sub += info["new_subgoals"]
            assert term and not trunc and info["won"] and info["is_success"] and total == 1.0
            assert sub == info["num_subgoals"] == info["subgoals_achieved"]  # every subgoal counted once
        env.close()


def test_all_env_mixes_task_types(data_dir, corpus):
    env = rewardlab.make("alfworld/All-v0", data_dir=str(data_dir), **SMALL)
    assert {g["task"] for g in env.unwrapped.games} == set(TASK_TYPES)
    env.close()


def test_check_env_tokens_and_text(data_dir, corpus):
    env = AlfWorldEnv(("pick_and_place",), data_dir=str(data_dir), max_steps=5, **SMALL)
    check_env(env, skip_render_check=True)
    env.close()
    text = AlfWorldEnv(("pick_and_place",), obs_mode="text", data_dir=str(data_dir), max_steps=5, **SMALL)
    obs, info = text.reset(seed=0)
    assert "Your task is to: " in obs and text.observation_space.contains(obs)
    obs, r, term, trunc, info = text.step(info["walkthrough"][0])
    assert not info["invalid_command"] and obs.startswith("You arrive at")
    obs, r, term, trunc, info = text.step("fly to the moon")
    assert info["invalid_command"] and obs == "Nothing happens." and r == 0.0
    text.close()


def test_masked_slot_is_a_noop_with_invalid_flag(data_dir, corpus):
    env = AlfWorldEnv(("pick_and_place",), data_dir=str(data_dir), max_steps=3, **SMALL)
    obs, info = env.reset(seed=0)
    masked = int(np.flatnonzero(obs["action_mask"] == 0)[0])
    obs2, r, term, trunc, info2 = env.step(masked)
    assert info2["invalid_command"] and r == 0.0 and not term and not trunc
    assert info2["admissible_commands"] == info["admissible_commands"]  # the game did not change
    np.testing.assert_array_equal(obs2["commands"], obs["commands"])
    env.step(masked)
    *_, trunc, _ = env.step(masked)
    assert trunc  # the step limit counts invalid steps too
    env.close()


def test_observation_encodes_commands_and_goal(data_dir, corpus):
    env = AlfWorldEnv(("pick_and_place",), data_dir=str(data_dir), **SMALL)
    obs, info = env.reset(seed=1)
    cmds = info["admissible_commands"]
    assert obs["action_mask"].sum() == len(cmds)
    for i, c in enumerate(cmds):
        np.testing.assert_array_equal(obs["commands"][i], tokenize(c, env.vocab_size, env.cmd_len))
    np.testing.assert_array_equal(obs["goal"], tokenize(info["goal"], env.vocab_size, env.goal_len))
    env.close()


def test_terms_over_a_vector_env(data_dir, corpus):
    reward = ["env", "alfworld/success", "alfworld/subgoal_progress",
              {"name": "alfworld/invalid_command", "params": {"value": 0.5}}, "step_penalty"]
    venv = rewardlab.make_vec("alfworld/PickAndPlace-v0", 2, reward=reward, data_dir=str(data_dir), **SMALL)
    obs, info = venv.reset(seed=0)
    plans = [list(p) for p in info["walkthrough"]]
    sums = {n: np.zeros(2) for n in ("alfworld/success", "alfworld/subgoal_progress", "alfworld/invalid_command")}
    # env 0 plays its walkthrough; env 1 picks a masked slot every step
    for k in range(len(plans[0])):
        a0 = list(info["admissible_commands"][0]).index(plans[0][k])
        a1 = int(np.flatnonzero(obs["action_mask"][1] == 0)[0])
        obs, r, term, trunc, info = venv.step(np.array([a0, a1]))
        for n in sums:
            sums[n] += info["reward_terms"][n]
        np.testing.assert_allclose(r, sum(v for v in info["reward_terms"].values()), rtol=1e-6)
    np.testing.assert_allclose(sums["alfworld/success"], [1.0, 0.0])
    np.testing.assert_allclose(sums["alfworld/subgoal_progress"], [1.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(sums["alfworld/invalid_command"], [0.0, -0.5 * len(plans[0])], rtol=1e-6)
    venv.close()


def test_bad_input(data_dir, corpus):
    with pytest.raises(InvalidArgument, match="split"):
        AlfWorldEnv(("pick_and_place",), split="test", data_dir=str(data_dir), **SMALL)
    with pytest.raises(InvalidArgument, match="obs_mode"):
        AlfWorldEnv(("pick_and_place",), obs_mode="pixels", data_dir=str(data_dir), **SMALL)
    with pytest.raises(InvalidArgument, match="max_receptacles"):
        GenSettings(max_receptacles=1)
    with pytest.raises(InvalidArgument, match="task_types"):
        GenSettings(task_types=("juggle",))
    with pytest.raises(InvalidArgument, match="no heldout games"):
        AlfWorldEnv(("pick_and_place",), split="heldout", data_dir=str(data_dir), games_per_type=1,
                    heldout_per_type=0)
    with pytest.raises(InvalidArgument, match="unexpected keyword"):
        rewardlab.make("alfworld/Clean-v0", colour="red")
    env = AlfWorldEnv(("pick_and_place",), data_dir=str(data_dir), **SMALL)
    with pytest.raises(InvalidArgument, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(InvalidArgument, match="outside the slots"):
        env.step(env.num_slots)
    with pytest.raises(InvalidArgument, match="slot index"):
        env.step("go to cabinet 1")
    with pytest.raises(InvalidArgument, match="out of range"):
        env.reset(options={"game": 99})
    env.close()
    # the primitives name what they miss on an env that is not an alfworld env
    bad = rewardlab.make("CartPole-v1", reward=["alfworld/success"])
    bad.reset(seed=0)
    with pytest.raises(TermError, match="'alfworld/success' raised InvalidArgument: info has no 'won'"):
        bad.step(0)
    with pytest.raises(ConfigError, match="finite"):
        rewardlab.build_stack([{"name": "alfworld/invalid_command", "params": {"value": float("nan")}}])


def test_import_rewardlab_does_not_import_alfworld():
    import subprocess
    import sys

    code = "import sys, rewardlab; print('textworld' in sys.modules or 'alfworld' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_game_cache_evicts_oldest(data_dir, corpus):
    env = AlfWorldEnv(("pick_and_place",), data_dir=str(data_dir), cache_games=1, **SMALL)
    for i in (0, 1, 0):
        obs, info = env.reset(options={"game": i})
        assert len(env._engines) == 1 and info["gamefile"].endswith(env.games[i]["path"])
    env.close()


def test_gym_spaces(data_dir, corpus):
    env = AlfWorldEnv(("cool",), data_dir=str(data_dir), num_slots=24, **SMALL)
    assert isinstance(env.action_space, gym.spaces.Discrete) and env.action_space.n == 24
    assert env.observation_space["commands"].shape == (24, env.cmd_len)
    env.close()


@pytest.mark.slow
def test_generator_makes_over_100_valid_games(tmp_path):
    """≥ 100 games over the six task types, every one solved by the planner and won by its walkthrough."""
    manifest = generate_corpus(tmp_path, GenSettings(seed=3, games_per_type=17, heldout_per_type=0, **EASY))
    games = manifest["games"]
    assert len(games) == 6 * 17
    assert {g["task"] for g in games} == set(TASK_TYPES)


@pytest.mark.slow
def test_handcoded_expert_wins_generated_games(corpus):
    """ALFWorld's own hand-coded expert (what ``AlfredTWEnv`` trains DAgger with) solves our games.
    pick_two is left out: upstream's pick-two expert loops when the second object is in a closed
    container (it does win some; see docs/envs/alfworld.md)."""
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredExpert, AlfredInfos
    from textworld.envs.pddl import PddlEnv

    path, manifest = corpus
    games = [g for g in manifest["games"] if g["task"] != "pick_two" and g["split"] == "train"]
    assert len(games) == 10
    for g in games:
        infos = textworld.EnvInfos(admissible_commands=True, won=True, facts=True, extras=["gamefile", "expert_plan"])
        env = AlfredExpert(AlfredInfos(AlfredDemangler(shuffle=False)(PddlEnv(infos))), expert_type="handcoded")
        env.load(str(path / g["path"]))
        state = env.reset()
        for _ in range(60):
            state, _, _ = env.step(state["extra.expert_plan"][0])
            if state["won"]:
                break
        assert state["won"], g
