"""The MiniHack family on the real game: upstream-defect fixes, env checkers, encoders, info,
potentials and a solved episode."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("minihack")
pytest.importorskip("nle")

import gymnasium as gym  # noqa: E402
from gymnasium.utils.env_checker import check_env as gym_check_env  # noqa: E402
from nle import nethack  # noqa: E402

import rewardlab  # noqa: E402
from rewardlab.envs.minihack import CHAR_CLASSES, make_minihack  # noqa: E402
from rewardlab.errors import InvalidArgument, UnknownNameError  # noqa: E402
from rewardlab.shaping.potential import resolve_potential  # noqa: E402

ROOM = "minihack/Room-5x5"          # fixed layout: start at the room's top-left, '>' at its bottom-right
RANDOM_ROOM = "minihack/Room-Random-5x5"  # random start and stairs
N, E, S, W, NE, SE, SW, NW = range(8)
MOVES = {(0, -1): N, (1, 0): E, (0, 1): S, (-1, 0): W, (1, -1): NE, (1, 1): SE, (-1, 1): SW, (-1, -1): NW}


@pytest.fixture
def make():
    """``rewardlab.make`` that closes every env it made (NLE holds a game and a temp dir)."""
    envs = []

    def _make(*args, **kwargs):
        env = rewardlab.make(*args, **kwargs)
        envs.append(env)
        return env

    yield _make
    for env in envs:
        env.close()


def find(chars: np.ndarray, c: str) -> tuple[int, int] | None:
    ys, xs = np.nonzero(chars == ord(c))
    return (int(xs[0]), int(ys[0])) if len(xs) else None


def greedy_to_stairs(info) -> int:
    """The compass move that brings '@' one step closer to '>' (both read from the map)."""
    (ax, ay), (sx, sy) = find(info["chars"], "@"), find(info["chars"], ">")
    return MOVES[(int(np.sign(sx - ax)), int(np.sign(sy - ay)))]


def batch(info) -> dict:
    """One env's info as a batch of one, the way potentials receive it."""
    return {"chars": info["chars"][None], "agent_pos": info["agent_pos"][None],
            "inventory": np.array([info["inventory"]], dtype=object)}


def test_action_set_is_the_eight_compass_directions_in_order(make):
    env = make(ROOM)
    assert env.action_space == gym.spaces.Discrete(8)
    assert [a.name for a in env.unwrapped.actions] == ["N", "E", "S", "W", "NE", "SE", "SW", "NW"]
    assert tuple(env.unwrapped.actions) == tuple(nethack.CompassDirection)
    assert make(ROOM, actions="basic").action_space == gym.spaces.Discrete(17)


# -- upstream defect 1: the time limit is a truncation ------------------------------------------


def run_into_wall(env, seed=0):
    env.reset(seed=seed)
    flags = []
    while True:
        _, reward, terminated, truncated, info = env.step(N)  # the start is the top-left corner: N is a wall
        flags.append((terminated, truncated))
        if terminated or truncated:
            return flags, reward, info


def test_time_limit_gives_truncated_not_terminated(make):
    flags, _, info = run_into_wall(make(ROOM, max_episode_steps=5))
    assert flags == [(False, False)] * 4 + [(False, True)]
    assert info["is_success"] is False


@pytest.mark.parametrize(("kwargs", "length"), [({}, 100), ({"max_episode_steps": 150}, 150)])
def test_nle_own_step_limit_is_a_truncation_and_can_be_raised(make, kwargs, length):
    # Room-5x5's built-in limit is 100 steps; a larger max_episode_steps must really allow more.
    flags, _, info = run_into_wall(make(ROOM, **kwargs))
    assert len(flags) == length and flags[-1] == (False, True)
    assert info["is_success"] is False


def test_time_limit_keeps_gamma_phi_next_in_potential_shaping(make):
    reward = ["env", {"name": "potential", "params": {"potential": "minihack/stairs_distance"}}]
    env = make(ROOM, reward=reward, gamma=0.9, max_episode_steps=3)
    flags, _, info = run_into_wall(env)
    assert flags[-1] == (False, True)
    # Stuck at distance 4 of '>': Φ = -0.2 before and after. Truncated: 0.9*(-0.2) + 0.2 = 0.02
    # (a termination would have paid +0.2).
    assert info["reward_terms"]["potential"] == pytest.approx(0.02, abs=1e-6)
    (episode,) = env.pop_episodes()
    assert (episode.truncated, episode.length, episode.success) == (True, 3, 0.0)


# -- upstream defect 2: reset(seed=) fixes the episode -------------------------------------------


def rollout(env, seed, actions):
    obs, info = env.reset(seed=seed)
    out = [(obs, info["chars"], info["message"])]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(int(a))
        out.append((obs, info["chars"], info["message"], reward, terminated, truncated))
        if terminated or truncated:
            break
    return out


def assert_same_rollout(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("task", [RANDOM_ROOM, "minihack/Room-Monster-5x5"])
def test_same_seed_gives_same_first_obs_and_trajectory(make, task):
    actions = np.random.default_rng(0).integers(0, 8, 40)
    env_a, env_b = make(task), make(task)
    first = rollout(env_a, 11, actions)
    assert len(first) > 5
    assert_same_rollout(first, rollout(env_b, 11, actions))
    assert_same_rollout(first, rollout(env_a, 11, actions))  # re-seeding the same instance too


def test_different_seeds_give_different_layouts_and_unseeded_resets_follow_the_seed(make):
    env = make(RANDOM_ROOM)
    layouts = {env.reset(seed=s)[1]["chars"].tobytes() for s in range(6)}
    assert len(layouts) >= 4  # random start and stairs: seeds must not all give one layout
    twin = make(RANDOM_ROOM)
    seq_a = [env.reset(seed=3)[1]["chars"]] + [env.reset()[1]["chars"] for _ in range(3)]
    seq_b = [twin.reset(seed=3)[1]["chars"]] + [twin.reset()[1]["chars"] for _ in range(3)]
    for x, y in zip(seq_a, seq_b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert len({c.tobytes() for c in seq_a}) >= 2  # the unseeded resets still vary


# -- upstream defect 3: reset(options={}) --------------------------------------------------------


@pytest.mark.parametrize("options", [{}, None, {"unrelated": 1}])
def test_reset_with_options(make, options):
    env = make(ROOM)
    obs, info = env.reset(seed=0, options=options)
    assert env.observation_space.contains(obs)
    assert info["agent_pos"].tolist() == list(find(info["chars"], "@"))


# -- env checkers ------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*is different from the unwrapped version")
@pytest.mark.filterwarnings("ignore:.*Box observation space (minimum|maximum) value is")
@pytest.mark.parametrize("task", [ROOM, "minihack/KeyRoom-S5"])
@pytest.mark.parametrize("obs", [("chars_crop",), ("chars_crop", "glyphs_crop", "blstats")], ids=["box", "dict"])
def test_gymnasium_env_checker_passes(make, task, obs):
    env = make(task, obs=obs)
    gym_check_env(env)  # includes reset/step determinism under a seed and rebuilding from env.spec
    assert env.spec.additional_wrappers[-1].kwargs == {"obs": obs}


@pytest.mark.filterwarnings("ignore:It seems that your observation")
@pytest.mark.filterwarnings("ignore:Treating image space as channels-last")
@pytest.mark.filterwarnings("ignore:The minimal resolution for an image")
@pytest.mark.filterwarnings("ignore:Your observation glyphs_crop has an unconventional shape")
@pytest.mark.parametrize("task", [ROOM, "minihack/KeyRoom-S5"])
def test_sb3_env_checker_passes(make, task):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    sb3_check_env(make(task), warn=True)
    sb3_check_env(make(task, obs=["glyphs_crop", "blstats"]), warn=True)
    sb3_check_env(make(task, reward=["env", "step_penalty"]), warn=True)  # the shaped env too


def test_broken_upstream_render_mode_is_refused_and_not_advertised(make):
    assert "full" not in make(ROOM).metadata["render_modes"]
    with pytest.raises(InvalidArgument, match="render_mode 'full' is broken upstream"):
        make(ROOM, render_mode="full")


# -- observation encoders ---------------------------------------------------------------------


def classes(onehot: np.ndarray) -> np.ndarray:
    return np.array(CHAR_CLASSES)[onehot.argmax(axis=0)]


def test_chars_crop_is_one_hot_with_the_agent_at_the_centre(make):
    env = make(ROOM)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (len(CHAR_CLASSES), 9, 9) and obs.dtype == np.float32
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs.sum(axis=0), np.ones((9, 9)))
    assert set(np.unique(obs)) == {0.0, 1.0}
    c = classes(obs)
    assert c[4, 4] == "agent" and (c == "agent").sum() == 1
    assert c[8, 8] == "stairs_down"  # '>' is 4 right and 4 down of the start
    assert c[4, 5] == "floor" and c[4, 3] == "unseen" and c[3, 4] == "unseen"
    obs, *_ = env.step(SE)
    c = classes(obs)
    assert c[4, 4] == "agent" and c[7, 7] == "stairs_down"
    assert c[3, 3] == "stairs_up" and c[3, 4] == "floor"  # the start cell: the '@' stood on '<'


def test_glyphs_crop_and_blstats(make):
    env = make(ROOM, obs=["glyphs_crop"])
    glyphs, info = env.reset(seed=0)
    assert glyphs.shape == (9, 9) and glyphs.dtype == np.int64 and env.observation_space.contains(glyphs)
    assert nethack.glyph_is_monster(int(glyphs[4, 4]))  # the agent
    assert nethack.glyph_is_cmap(int(glyphs[8, 8])) and nethack.glyph_to_cmap(int(glyphs[8, 8])) == 24  # S_dnstair
    assert nethack.glyph_to_cmap(int(glyphs[4, 5])) == 19  # S_room (floor)

    env = make(ROOM, obs=["blstats"])
    bl, info = env.reset(seed=0)
    assert bl.shape == (27,) and bl.dtype == np.float32 and np.isfinite(bl).all()
    np.testing.assert_allclose(bl[:2], np.log1p(info["agent_pos"]), rtol=1e-6)  # x, y, log-scaled
    bl2, *_, info2 = env.step(SE)
    np.testing.assert_allclose(np.expm1(bl2[:2]), info["agent_pos"] + 1, rtol=1e-5)


def test_several_encoders_give_a_dict(make):
    env = make(ROOM, obs=["chars_crop", "glyphs_crop", "blstats"])
    assert isinstance(env.observation_space, gym.spaces.Dict)
    assert set(env.observation_space.spaces) == {"chars_crop", "glyphs_crop", "blstats"}
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs) and set(obs) == {"chars_crop", "glyphs_crop", "blstats"}
    single, _ = make(ROOM).reset(seed=0)
    np.testing.assert_array_equal(obs["chars_crop"], single)


@pytest.mark.parametrize(("obs", "shown"), [(["pixels"], r"\['pixels'\]"), (["chars_crop", "rgb"], r"\['rgb'\]"),
                                            ([], r"\(\)")])
def test_unknown_encoder(make, obs, shown):
    with pytest.raises(InvalidArgument, match=rf"unknown MiniHack observation encoder {shown}; "
                                              r"valid: chars_crop, glyphs_crop, blstats"):
        make(ROOM, obs=obs)


def test_unknown_task_action_set_and_limit():
    with pytest.raises(UnknownNameError, match=r"unknown env 'minihack/Room-5x6'\. Did you mean 'minihack/Room-5x5'\?"):
        rewardlab.make("minihack/Room-5x6")
    with pytest.raises(UnknownNameError, match=r"unknown MiniHack task 'KeyRom-S5'\. Did you mean 'KeyRoom-S5'\?"):
        make_minihack("KeyRom-S5")
    with pytest.raises(InvalidArgument, match="action set 'fly'; valid: nav, nav_apply, basic, default"):
        make_minihack("Room-5x5", actions="fly")
    with pytest.raises(InvalidArgument, match="max_episode_steps must be >= 1, got 0"):
        make_minihack("Room-5x5", max_episode_steps=0)


# -- info -------------------------------------------------------------------------------------


def check_info(info):
    assert info["agent_pos"].dtype == np.int64 and info["agent_pos"].shape == (2,)
    assert info["chars"].shape == (21, 79) and info["chars"].dtype == np.uint8
    x, y = info["agent_pos"]
    assert info["chars"][y, x] == ord("@")
    assert isinstance(info["message"], str) and isinstance(info["inventory"], str)


def test_info_keys_every_step_and_success_flag_at_the_end(make):
    env = make(ROOM)
    _, info = env.reset(seed=0)
    check_info(info)
    assert "short sword" in info["inventory"] and "\n" in info["inventory"]
    _, _, _, _, info = env.step(N)
    check_info(info)
    assert info["message"] == "It's solid stone." and "is_success" not in info


# -- potentials -------------------------------------------------------------------------------


def test_stairs_distance_rises_towards_the_stairs(make):
    phi = resolve_potential("minihack/stairs_distance")
    env = make(ROOM)
    _, info = env.reset(seed=0)
    values = [float(phi(None, batch(info))[0])]
    for _ in range(3):
        _, _, terminated, _, info = env.step(SE)
        assert not terminated
        values.append(float(phi(None, batch(info))[0]))
    np.testing.assert_allclose(values, [-4 / 20, -3 / 20, -2 / 20, -1 / 20], rtol=1e-6)
    _, _, _, _, info = env.step(E)  # (3, 3) -> (4, 3), sideways: the Chebyshev distance stays 1
    assert float(phi(None, batch(info))[0]) == pytest.approx(-1 / 20)


def test_stairs_distance_through_the_potential_term(make):
    env = make(ROOM, reward=[{"name": "potential", "params": {"potential": "minihack/stairs_distance"}}], gamma=0.99)
    env.reset(seed=0)
    _, reward, *_, info = env.step(SE)
    assert reward == info["reward_terms"]["potential"] == pytest.approx(0.99 * -0.15 + 0.2, abs=1e-6)
    _, reward, *_, info = env.step(W)  # (1,1) -> (0,1): distance 3 -> 4
    assert reward == pytest.approx(0.99 * -0.2 + 0.15, abs=1e-6)


def test_keyroom_progress_is_finite_and_staged(make):
    phi = resolve_potential("minihack/keyroom_progress")
    env = make("minihack/KeyRoom-S5")
    for seed in range(4):  # at reset no key is held: stage 0, whether or not the door is in view
        _, info = env.reset(seed=seed)
        value = float(phi(None, batch(info))[0])
        assert -3.0 <= value < -2.0
    rng = np.random.default_rng(0)
    for _ in range(60):
        *_, terminated, truncated, info = env.step(int(rng.integers(0, env.action_space.n)))
        assert np.isfinite(phi(None, batch(info))).all()
        if terminated or truncated:
            env.reset()


def test_keyroom_progress_stages_on_hand_made_maps():
    phi = resolve_potential("minihack/keyroom_progress", {"cap": 10.0})

    def value(marks, inventory):
        chars = np.full((1, 5, 12), ord("."), np.uint8)
        for (x, y), c in marks:
            chars[0, y, x] = ord(c)
        info = {"chars": chars, "agent_pos": np.array([[0, 0]]), "inventory": np.array([inventory], dtype=object)}
        return float(phi(None, info)[0])

    no_key, key = "a - a short sword", "a - a short sword\ng - a key named The Master Key of Thievery"
    assert value([((3, 0), "(")], no_key) == pytest.approx(-2 - 0.3)                    # go to the key
    assert value([((3, 0), "("), ((5, 2), "+")], no_key) == pytest.approx(-2 - 0.3)     # door seen, still no key
    assert value([((6, 1), "+")], key) == pytest.approx(-1 - 0.6)                       # go to the door
    assert value([], key) == pytest.approx(-1 - 1.0)                                    # door not found yet
    assert value([((8, 4), ">")], key) == pytest.approx(0 - 0.8)                        # door open: the stairs
    assert value([((8, 4), ">"), ((6, 1), "+")], key) == pytest.approx(-1 - 0.6)        # stairs seen, door shut


# -- a solved episode ---------------------------------------------------------------------------


@pytest.mark.parametrize(("task", "seed"), [(ROOM, 0), (RANDOM_ROOM, 1), (RANDOM_ROOM, 2)])
def test_greedy_walk_to_the_stairs_succeeds(make, task, seed):
    env = make(task, reward=["env", {"name": "reach", "params": {"char": ">"}}])
    _, info = env.reset(seed=seed)
    stairs = find(info["chars"], ">")
    env_rewards = []
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(greedy_to_stairs(info))
        env_rewards.append(info["reward_env"])
        if terminated or truncated:
            break
    assert terminated and not truncated
    assert info["is_success"] is True and info["reward_env"] > 0
    # The final obs/info show the agent on the stairs (not the blank screen NLE leaves after quitting).
    assert tuple(info["agent_pos"]) == stairs == find(info["chars"], "@")
    assert classes(obs)[4, 4] == "agent" and (classes(obs) == "floor").sum() >= 8
    assert info["reward_terms"]["reach"] == 1.0 and reward == info["reward_env"] + 1.0
    (episode,) = env.pop_episodes()
    assert episode.success == 1.0 and episode.true_return == pytest.approx(sum(env_rewards))
    assert episode.terms["reach"] == 1.0 and episode.length == len(env_rewards)


@pytest.mark.parametrize("mode", [gym.vector.AutoresetMode.SAME_STEP, gym.vector.AutoresetMode.NEXT_STEP],
                         ids=lambda m: m.name)
def test_vector_minihack_final_info_reaches_the_terms(mode):
    # With SAME_STEP the returned info of a finished row is the next episode's; the reach term must
    # still see the final agent_pos/chars, or it would never pay at the stairs.
    venv = rewardlab.make_vec(RANDOM_ROOM, 2, reward=["env", {"name": "reach", "params": {"char": ">"}}],
                              autoreset_mode=mode)
    try:
        _, info = venv.reset(seed=4)
        finished: dict[int, tuple] = {}
        done = np.zeros(2, bool)
        for _ in range(25):
            # NEXT_STEP: a row that just ended shows its final map ('@' on '>'); its next action is ignored.
            actions = np.array([0 if done[i] else greedy_to_stairs({"chars": info["chars"][i]}) for i in range(2)])
            _, reward, terminated, truncated, info = venv.step(actions)
            done = terminated | truncated
            for i in np.flatnonzero(terminated | truncated):
                finished.setdefault(int(i), (bool(terminated[i]), info["reward_terms"]["reach"][i], reward[i]))
            if len(finished) == 2:
                break
        assert finished == {0: (True, 1.0, pytest.approx(2.0)), 1: (True, 1.0, pytest.approx(2.0))}
        episodes = venv.pop_episodes()
        assert sorted(e.env_id for e in episodes) == [0, 1]
        assert all(e.success == 1.0 and e.terms["reach"] == 1.0 and e.true_return == 1.0 for e in episodes)
    finally:
        venv.close()
