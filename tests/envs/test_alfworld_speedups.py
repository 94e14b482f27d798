"""Differential test of ``rewardlab.envs.alfworld.speedups``: with the template caches installed,
textworld's engine must produce exactly the texts, admissible commands, facts and ``won`` it
produces untouched, on every task type (random play, then the planner walkthrough)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("alfworld")
pytest.importorskip("textworld")

from rewardlab.envs.alfworld import speedups  # noqa: E402
from rewardlab.envs.alfworld.env import AlfWorldEnv, _facts  # noqa: E402
from rewardlab.envs.alfworld.generate import TASK_TYPES  # noqa: E402


def _env(fast: bool, data_dir) -> AlfWorldEnv:
    return AlfWorldEnv(TASK_TYPES, games_per_type=1, heldout_per_type=1, obs_mode="text", max_steps=200,
                       data_dir=str(data_dir), fast_text=fast, engine="textworld")


def _play(fast: bool, data_dir, random_steps: int = 15) -> list[tuple]:
    env = _env(fast, data_dir)
    trace = []

    def record(text: str, info: dict) -> None:
        trace.append((text, tuple(info["admissible_commands"]), tuple(sorted(_facts(env._state))), info["won"]))

    for game in range(len(env.games)):
        rng = np.random.default_rng(game)
        text, info = env.reset(seed=game, options={"game": game})
        record(text, info)
        for _ in range(random_steps):
            cmds = info["admissible_commands"]
            text, _, term, _, info = env.step(cmds[int(rng.integers(len(cmds)))])
            record(text, info)
            if term:
                break
        text, info = env.reset(seed=game, options={"game": game})
        for cmd in info["walkthrough"]:
            text, _, term, _, info = env.step(cmd)
            record(text, info)
        assert info["won"], f"walkthrough did not win game {game}"
    env.close()
    return trace


def test_cached_parsing_gives_identical_games(tmp_path):
    _env(False, tmp_path).close()  # generates the corpus first (its planner check uses the caches)
    speedups.uninstall()
    try:
        reference = _play(False, tmp_path)
        assert not speedups.installed()
        fast = _play(True, tmp_path)
        assert speedups.installed() and speedups.cache_sizes()["templates"] > 0
    finally:
        speedups.uninstall()
    assert len(reference) == len(fast) > 6 * 16
    for i, (ref, got) in enumerate(zip(reference, fast, strict=True)):
        assert got == ref, f"step {i} differs: {ref[0]!r} vs {got[0]!r}"


def test_install_is_idempotent_and_uninstall_restores():
    from textworld.envs.pddl import textgen
    from textworld.logic import Rule

    speedups.uninstall()
    original = textgen._parse_and_convert
    speedups.install()
    speedups.install()
    patched = textgen._parse_and_convert
    assert patched is not original
    q1 = Rule.parse_conjunctive_query("inreceptacle(o: object, r: receptacle)")
    assert Rule.parse_conjunctive_query("inreceptacle(o: object, r: receptacle)") is q1  # cached
    speedups.uninstall()
    assert textgen._parse_and_convert is original and not speedups.installed()
    assert Rule.parse_conjunctive_query("inreceptacle(o: object, r: receptacle)") is not q1


def test_pddl_translation_no_longer_clobbers_sys_argv(tmp_path):
    import sys

    speedups.uninstall()
    argv = sys.argv
    try:
        env = AlfWorldEnv(games_per_type=1, heldout_per_type=0, max_steps=5, data_dir=str(tmp_path))
        env.reset(seed=0)
        env.close()
        assert sys.argv is argv and speedups.cache_sizes()["translations"] >= 1
    finally:
        speedups.uninstall()
