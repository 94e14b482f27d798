"""MiniHack rendering and observation keys as MiniHack users expect: rgb_array frames (drawn
like MiniHack's GlyphMapper), ansi text, NetHackScore's human render, raw keys (``glyphs``),
``observation_keys=``, MultiRoom (minigrid) seeding, and Gymnasium's and SB3's env checkers
with their render checks on a headless machine."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

pytest.importorskip("minihack")

import rewardlab  # noqa: E402
from rewardlab.envs.minihack import glyphs_to_rgb  # noqa: E402
from rewardlab.errors import InvalidArgument  # noqa: E402

ROOM = "minihack/Room-5x5"


def _quiet(fn, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()) as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fn(*args, **kwargs)
    return result, out.getvalue()


def test_rgb_array_frames_match_minihack_glyph_mapper():
    from minihack.tiles.glyph_mapper import GlyphMapper

    env = rewardlab.make(ROOM, obs=["glyphs_crop", "glyphs"], render_mode="rgb_array")
    assert env.render_mode == "rgb_array" and "rgb_array" in env.metadata["render_modes"]
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (21 * 16, 79 * 16, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, _quiet(GlyphMapper)[0].to_rgb(obs["glyphs"]))
    obs, *_ = env.step(1)
    np.testing.assert_array_equal(env.render(), glyphs_to_rgb(obs["glyphs"]))  # follows the game


def test_final_frame_shows_the_real_final_state():
    env = rewardlab.make(ROOM, obs=["glyphs"], render_mode="rgb_array", max_episode_steps=3)
    env.reset(seed=0)
    for _ in range(3):
        obs, _, term, trunc, info = env.step(0)
    assert term or trunc
    # NLE quit the game at the end; the frame is drawn from the kept final glyphs, agent included
    np.testing.assert_array_equal(env.render(), glyphs_to_rgb(obs))  # one key: obs is the glyph map
    x, y = info["agent_pos"]
    assert info["chars"][y, x] == ord("@")


def test_ansi_is_the_map_text_and_nethackscore_human_render_prints_it():
    env = rewardlab.make(ROOM, render_mode="ansi")
    _, info = env.reset(seed=0)
    text = env.render()
    assert text.splitlines()[int(info["agent_pos"][1])][int(info["agent_pos"][0])] == "@"
    nhs = rewardlab.make("minihack/NetHackScore")  # NLE's default: human
    nhs.reset(seed=0)
    result, printed = _quiet(nhs.render)  # upstream: ValueError 'tty_chars' is not in list
    assert result is None and "@" in printed


def test_raw_minihack_keys_and_observation_keys_alias():
    env = rewardlab.make(ROOM, observation_keys=("glyphs", "glyphs_crop"))
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert obs["glyphs"].shape == (21, 79) and obs["glyphs"].dtype == np.int16
    x, y = info["agent_pos"]
    assert obs["glyphs_crop"][4, 4] == obs["glyphs"][y, x]  # our crop is centred on the agent
    single = rewardlab.make(ROOM, obs=["glyphs"])
    assert single.reset(seed=3)[0].shape == (21, 79)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"obs": ["pixels"]}, r"unknown MiniHack observation encoder \['pixels'\]"),
    ({"obs": ["glyphs"], "observation_keys": ["chars"]}, "not both"),
    ({"render_mode": "rgb"}, "render_mode 'rgb' is not one of human, ansi, rgb_array, pixel"),
    ({"render_mode": "full"}, "broken upstream"),
])
def test_bad_keys_and_render_modes_are_refused(kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        rewardlab.make(ROOM, **kwargs)


def test_nethackscore_refuses_minihack_only_keys():
    with pytest.raises(InvalidArgument, match="MiniHack-only"):
        rewardlab.make("minihack/NetHackScore", obs=["pixel_crop"])


def test_multiroom_builds_and_a_seed_fixes_its_layout():
    env = rewardlab.make("minihack/MultiRoom-N2")
    a = env.reset(seed=3)[1]["chars"]
    b = env.reset(seed=3)[1]["chars"]
    np.testing.assert_array_equal(a, b)
    layouts = {env.reset(seed=s)[1]["chars"].tobytes() for s in range(4)}
    assert len(layouts) > 1  # the seed reaches MiniGrid's layout generator


@pytest.mark.parametrize("env_id", [ROOM, "minihack/NetHackScore", "minihack/MultiRoom-N2"])
def test_gymnasium_and_sb3_env_checkers_pass_with_render(env_id):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = rewardlab.make(env_id, render_mode="rgb_array")
    # Gymnasium's checker also rebuilds the env in every advertised render mode and renders it
    _quiet(check_env, env)
    _quiet(sb3_check_env, env)


def test_gymnasium_record_video_on_minihack(tmp_path):
    import gymnasium as gym
    import imageio.v3 as iio

    env = rewardlab.make(ROOM, render_mode="rgb_array", max_episode_steps=5)
    env = gym.wrappers.RecordVideo(env, str(tmp_path / "videos"), episode_trigger=lambda ep: True,
                                   disable_logger=True)
    env.reset(seed=0)
    done = False
    while not done:
        *_, term, trunc, _ = env.step(0)
        done = term or trunc
    env.close()
    (video,) = (tmp_path / "videos").glob("*.mp4")
    assert len(iio.imread(video)) >= 2  # moviepy (the render extra) wrote the episode's frames
