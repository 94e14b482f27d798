"""Differential test of the native ALFWorld simulator (``rewardlab.envs.alfworld.native``) against
textworld's engine: on generated games of all six task types, the planner walkthroughs and random
trajectories (admissible commands with inadmissible ones mixed in) must give identical feedback,
admissible commands (same order), ``won``, score, done and facts at every step; and
``AlfWorldEnv(engine="native")`` must give the same observations, rewards, termination and infos
as ``engine="textworld"``. ``scripts/alfworld_native_diff.py`` runs the same check over whole
corpora."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("alfworld")
pytest.importorskip("textworld")

from rewardlab.envs.alfworld import native  # noqa: E402
from rewardlab.envs.alfworld.env import AlfWorldEnv  # noqa: E402
from rewardlab.envs.alfworld.generate import TASK_TYPES, GenSettings, ensure_corpus  # noqa: E402
from rewardlab.errors import InvalidArgument  # noqa: E402

SETTINGS = dict(games_per_type=2, heldout_per_type=1)  # 18 games, every task type in both splits


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("alfworld_native")


@pytest.fixture(scope="module")
def corpus(data_dir):
    return ensure_corpus(GenSettings(**SETTINGS), data_dir)


@pytest.fixture(scope="module")
def reference():
    return native.reference_engine()


def test_demangled_names_number_instances_like_alfworld():
    names = native.demangled_names(["drawer_bar_1", "drawer_bar_10", "drawer_bar_2", "sink_bar_1_bar_sinkbasin",
                                    "loc_bar_start", "agent1"])
    # sorted ids get the numbers from the highest down (ALFWorld's Demangler pops them)
    assert names["drawer_bar_1"] == "drawer 3" and names["drawer_bar_10"] == "drawer 2"
    assert names["drawer_bar_2"] == "drawer 1" and names["sink_bar_1_bar_sinkbasin"] == "sinkbasin 1"
    assert names["agent1"] == "agent1 " and names["loc_bar_start"] == "loc 1"


def test_native_refuses_games_it_does_not_model(corpus):
    path, manifest = corpus
    data = json.loads((path / manifest["games"][0]["path"]).read_text())
    assert native.check_supported(data) is None
    other_domain = dict(data, pddl_domain=data["pddl_domain"].replace("(isHot ?o)", "(isCool ?o)"))
    assert "alfred.pddl" in native.check_supported(other_domain)
    with pytest.raises(InvalidArgument, match="engine='textworld'"):
        native.NativeGame.from_data(other_domain)
    sliced = dict(data, pddl_problem=data["pddl_problem"].replace("(:init", "(:init\n (sliceable Apple_bar_1)"))
    assert "slicing" in native.check_supported(sliced)
    other_grammar = dict(data, grammar=data["grammar"].replace("You arrive at", "You reach"))
    assert "alfred.twl2" in native.check_supported(other_grammar)


def test_unknown_command_changes_nothing(corpus):
    path, manifest = corpus
    engine = native.NativeEngine()
    engine.load(path / manifest["games"][0]["path"])
    with pytest.raises(InvalidArgument, match="reset"):
        engine.step("look")
    first = engine.reset()
    state, score, done = engine.step("dance with the fridge")
    assert state.feedback == native.NOTHING_HAPPENS and (score, done) == (0, False)
    assert state["admissible_commands"] == first["admissible_commands"] and state["facts"] == first["facts"]


def test_native_matches_textworld_on_every_task_type(corpus, reference):
    path, manifest = corpus
    total, tasks = native.DiffResult(), set()
    for i, game in enumerate(manifest["games"]):
        res = native.diff_game(path / game["path"], reference, random_episodes=4, max_steps=40,
                               invalid_prob=0.15, seed=i)
        assert res.mismatches == 0, res.examples
        total.add(res)
        tasks.add(game["task"])
    assert tasks == set(TASK_TYPES)
    assert total.episodes == 5 * len(manifest["games"]) and total.steps > 2000 and total.inadmissible > 100


def test_differential_check_catches_a_wrong_text_or_order(corpus, reference, monkeypatch):
    """The comparison above can fail: a changed list rendering, or the same commands in another
    order, is reported."""
    path, manifest = corpus
    game = path / manifest["games"][0]["path"]
    monkeypatch.setattr(native, "_display_list", lambda items: ", ".join(items) or "nothing")
    assert native.diff_game(game, reference, random_episodes=1, seed=0).mismatches > 0
    monkeypatch.undo()
    assert native.diff_game(game, reference, random_episodes=1, seed=0).mismatches == 0
    state_of = native.NativeEngine._state

    def reversed_commands(self, feedback):
        state = state_of(self, feedback)
        state["admissible_commands"] = state["admissible_commands"][::-1]
        return state

    monkeypatch.setattr(native.NativeEngine, "_state", reversed_commands)
    assert native.diff_game(game, reference, random_episodes=1, seed=0).mismatches > 0


@pytest.mark.parametrize("obs_mode", ["tokens", "text"])
def test_env_engines_agree(obs_mode, data_dir, corpus):
    """The same seeds and actions through ``AlfWorldEnv`` on both engines: identical observations,
    rewards, termination, truncation and infos (subgoal counts included), bad actions included."""
    envs = [AlfWorldEnv(tuple(TASK_TYPES), obs_mode=obs_mode, engine=e, max_steps=20, data_dir=str(data_dir),
                        **SETTINGS) for e in ("textworld", "native")]
    rng = np.random.default_rng(1)
    for ep in range(24):
        (ref_obs, ref_info), (obs, info) = (env.reset(seed=ep) for env in envs)
        _assert_same(ref_obs, obs)
        assert ref_info == info
        for _ in range(20):
            cmds = info["admissible_commands"]
            if obs_mode == "tokens":
                action = int(rng.integers(envs[0].num_slots)) if rng.random() < 0.1 else int(rng.integers(len(cmds)))
            else:
                action = "jump" if rng.random() < 0.1 else cmds[int(rng.integers(len(cmds)))]
            ref, got = envs[0].step(action), envs[1].step(action)
            _assert_same(ref[0], got[0])
            assert ref[1:] == got[1:]
            info = got[4]
            if got[2] or got[3]:
                break
    wins = 0
    for game in range(len(envs[0].games)):  # the planner walkthroughs: reward 1 and termination on both
        (_, ref_info), (_, info) = (env.reset(options={"game": game}) for env in envs)
        for cmd in info["walkthrough"]:
            action = info["admissible_commands"].index(cmd) if obs_mode == "tokens" else cmd
            ref, got = envs[0].step(action), envs[1].step(action)
            _assert_same(ref[0], got[0])
            assert ref[1:] == got[1:]
            info = got[4]
        wins += got[1] == 1.0 and got[2]
    assert wins == len(envs[0].games)
    for env in envs:
        env.close()


def _assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    else:
        assert a == b


def test_engine_argument_is_checked(data_dir, corpus):
    with pytest.raises(InvalidArgument, match="engine"):
        AlfWorldEnv(("pick_and_place",), engine="unity", data_dir=str(data_dir), **SETTINGS)
