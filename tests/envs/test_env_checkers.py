"""Gymnasium's and SB3's env checkers, render check included, on a headless machine, for the env
families the MiniHack/SB3 tests do not cover: MuJoCo (no ``human`` mode without a display: the
window would abort the interpreter), the SWE envs (``ansi``), the manipulation task. The whole
list of ids: ``python scripts/check_env_ids.py``."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

pytest.importorskip("mujoco")

import rewardlab  # noqa: E402
from rewardlab.errors import InvalidArgument  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_env_ids.py"


@pytest.fixture
def headless(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("MUJOCO_GL", os.environ.get("MUJOCO_GL", "egl"))


def _checker():
    spec = importlib.util.spec_from_file_location("check_env_ids", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.check


@pytest.mark.parametrize("env_id", ["robotics/ReacherSparse-v5", "manipulation/ReachSequence-v0"])
def test_mujoco_envs_offer_no_window_without_a_display(headless, env_id):
    env = rewardlab.make(env_id)
    assert "human" not in env.metadata["render_modes"] and "rgb_array" in env.metadata["render_modes"]
    env.close()
    with pytest.raises(InvalidArgument, match="render_mode 'human' opens a window and this machine has no display"):
        rewardlab.make(env_id, render_mode="human")


@pytest.mark.parametrize(("env_id", "note"), [
    ("robotics/ReacherSparse-v5", None),
    ("manipulation/ReachSequence-v0", None),
    ("swe/PatchSelect-v0", None),
    ("swe/TextEdit-v0", "SB3 checker n/a: Text spaces"),
])
def test_both_checkers_pass_with_render(headless, env_id, note):
    mode, error, got_note = _checker()(env_id)
    assert error is None and got_note == note
    assert mode == ("None" if env_id.startswith("swe/") else "rgb_array")


def test_swe_envs_render_ansi_and_refuse_other_modes():
    env = rewardlab.make("swe/TextEdit-v0", render_mode="ansi", outcomes="shipped")
    assert env.render() == "no episode yet (call reset)"
    env.reset(seed=0)
    assert env.render().startswith("task ")
    with pytest.raises(InvalidArgument, match="render_mode 'human': the SWE envs render ansi"):
        rewardlab.make("swe/PatchSelect-v0", render_mode="human")
