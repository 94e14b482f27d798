"""ShapedVectorEnv / ShapedEnv on real Gymnasium envs, in both autoreset modes.

Every step is compared with an unwrapped twin run with the same seed and actions, so the
wrapper must neither change the dynamics nor lose the env's own reward, and each term value
is known exactly (deterministic env-dependent terms, imitation's FunkyReward idea).
"""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from rewardlab.core import EpisodeRecord, RewardStack, ShapedEnv, ShapedVectorEnv, Term, Transition
from rewardlab.errors import InvalidArgument
from rewardlab.shaping.basic import EnvReward, StepPenalty
from rewardlab.shaping.potential import PotentialShaping

MODES = [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP]
GAMMA = np.float32(0.9)


class Funky(Term):
    """``0.5 * (env_id + 1)``: a different, exactly representable value per env."""

    name = "funky"

    def __call__(self, t: Transition) -> np.ndarray:
        return (0.5 * (t.env_ids + 1)).astype(np.float32)


def _copy(x):
    return {k: _copy(v) for k, v in x.items()} if isinstance(x, dict) else np.array(x, copy=True)


class Recorder(Term):
    """Stores (copies of) everything it is shown and returns 0."""

    name = "rec"

    def __init__(self):
        self.calls: list[dict] = []

    def __call__(self, t: Transition) -> np.ndarray:
        self.calls.append({
            "obs": _copy(t.obs), "next_obs": _copy(t.next_obs), "env_ids": t.env_ids.copy(),
            "terminated": t.terminated.copy(), "truncated": t.truncated.copy(), "info": t.info,
        })
        return np.zeros(t.num_envs, np.float32)


def cart_x(obs, info):
    """Potential Φ(s) = 10 * cart position (a batch of CartPole observations)."""
    return 10.0 * np.asarray(obs, np.float32)[:, 0]


def make_stack() -> tuple[RewardStack, Recorder]:
    rec = Recorder()
    stack = RewardStack([EnvReward(), Funky(), StepPenalty(0.25), PotentialShaping(cart_x, gamma=float(GAMMA)), rec])
    return stack, rec


def cartpole_venv(mode, num_envs=3, copy=True):
    fns = [functools.partial(gym.make, "CartPole-v1", max_episode_steps=15)] * num_envs
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode, copy=copy)


class LineEnv(gym.Env):
    """Walk on 0..4 from 0; reaching 3 ends the episode with reward 1 and ``is_success``."""

    action_space = gym.spaces.Discrete(2)

    def __init__(self, dict_obs: bool = False):
        self.dict_obs = dict_obs
        box = gym.spaces.Box(-4, 4, (1,), np.float32)
        self.observation_space = gym.spaces.Dict({"pos": box, "neg": box}) if dict_obs else box
        self.pos = 0

    def _obs(self):
        p = np.array([self.pos], np.float32)
        return {"pos": p, "neg": -p} if self.dict_obs else p

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = 0
        return self._obs(), {}

    def step(self, action):
        self.pos = min(max(self.pos + (1 if action == 1 else -1), 0), 4)
        terminated = self.pos == 3
        return self._obs(), float(terminated), terminated, False, {"is_success": True} if terminated else {}


def line_env(dict_obs=False):
    # TimeLimit says is_success=False on truncation via a tiny wrapper (SB3 convention).
    class SuccessOnTruncation(gym.Wrapper):
        def step(self, action):
            obs, r, term, trunc, info = self.env.step(action)
            if trunc and not term:
                info = {**info, "is_success": False}
            return obs, r, term, trunc, info

    return SuccessOnTruncation(gym.wrappers.TimeLimit(LineEnv(dict_obs), max_episode_steps=6))


# -- ShapedVectorEnv --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_vector_rewards_terms_final_obs_and_episode_stats(mode):
    n = 3
    stack, rec = make_stack()
    env = ShapedVectorEnv(cartpole_venv(mode, n), stack)
    twin = cartpole_venv(mode, n)
    obs, _ = env.reset(seed=123)
    tobs, _ = twin.reset(seed=123)
    np.testing.assert_array_equal(obs, tobs)

    rng = np.random.default_rng(0)
    prev_obs = obs.copy()
    prev_done = np.zeros(n, bool)
    acc = {"true": np.zeros(n), "shaped": np.zeros(n), "len": np.zeros(n, int), "terms": np.zeros((5, n))}
    expected_eps: list[EpisodeRecord] = []
    popped: list[EpisodeRecord] = []
    n_done = n_same_step_checked = n_reset_rows = 0

    for step in range(200):
        if step == 100:
            popped += env.pop_episodes()
        actions = rng.integers(0, 2, n)
        calls_before = len(rec.calls)
        obs, reward, term, trunc, info = env.step(actions)
        tobs, treward, tterm, ttrunc, tinfo = twin.step(actions)
        done = term | trunc

        # The wrapper changes only the reward.
        np.testing.assert_array_equal(obs, tobs)
        np.testing.assert_array_equal(term, tterm)
        np.testing.assert_array_equal(trunc, ttrunc)
        np.testing.assert_array_equal(info["reward_env"], treward)
        parts = info["reward_terms"]
        assert list(parts) == ["env", "funky", "step_penalty", "potential", "rec"]
        np.testing.assert_array_equal(sum(parts.values()), reward)  # exact, every step

        # NEXT_STEP: rows whose previous step ended are reset rows, not transitions.
        reset_rows = prev_done if mode == AutoresetMode.NEXT_STEP else np.zeros(n, bool)
        active = np.flatnonzero(~reset_rows)
        n_reset_rows += int(reset_rows.sum())
        if len(active) == 0:  # every row is a reset row (all hit the time limit together)
            assert len(rec.calls) == calls_before
            np.testing.assert_array_equal(reward, 0.0)
            prev_obs, prev_done = obs.copy(), done.copy()
            continue
        assert len(rec.calls) == calls_before + 1
        call = rec.calls[-1]
        np.testing.assert_array_equal(call["env_ids"], active)  # terms never see a reset row
        for name, value in parts.items():
            np.testing.assert_array_equal(value[reset_rows], 0.0, err_msg=name)
        np.testing.assert_array_equal(reward[reset_rows], 0.0)

        # The true successor state of each transition.
        if mode == AutoresetMode.SAME_STEP:
            true_next = np.stack([info["final_obs"][i] if done[i] else obs[i] for i in range(n)])
            for i in np.flatnonzero(done):
                assert not np.array_equal(call["next_obs"][i], obs[i])  # obs[i] is already the reset obs
                n_same_step_checked += 1
        else:
            true_next = obs
        np.testing.assert_array_equal(call["next_obs"], true_next[active])
        np.testing.assert_array_equal(call["obs"], prev_obs[active])
        np.testing.assert_array_equal(call["terminated"], term[active])
        np.testing.assert_array_equal(call["truncated"], trunc[active])

        # Exact per-term values on the active rows.
        np.testing.assert_array_equal(parts["env"][active], treward[active].astype(np.float32))
        np.testing.assert_array_equal(parts["funky"][active], 0.5 * (active + 1))
        np.testing.assert_array_equal(parts["step_penalty"][active], -0.25)
        phi_next = np.where(term, 0.0, cart_x(true_next, None))
        expected_pot = (GAMMA * phi_next - cart_x(prev_obs, None)).astype(np.float32)
        np.testing.assert_allclose(parts["potential"][active], expected_pot[active], rtol=1e-5, atol=1e-6)

        # Episode bookkeeping, done independently.
        for i in active:
            acc["true"][i] += treward[i]
            acc["shaped"][i] += float(reward[i])
            acc["len"][i] += 1
            for k, name in enumerate(parts):
                acc["terms"][k, i] += float(parts[name][i])
        ended = done & ~reset_rows
        if ended.any():
            np.testing.assert_array_equal(info["_episode_stats"], ended)
        else:
            assert "episode_stats" not in info
        for i in np.flatnonzero(ended):
            n_done += 1
            assert info["episode_stats"]["true_return"][i] == acc["true"][i]
            assert info["episode_stats"]["length"][i] == acc["len"][i]
            expected_eps.append(EpisodeRecord(
                env_id=int(i), true_return=acc["true"][i], shaped_return=acc["shaped"][i], length=int(acc["len"][i]),
                success=None, terms={name: acc["terms"][k, i] for k, name in enumerate(parts)},
                truncated=bool(trunc[i]),
            ))
            acc["true"][i] = acc["shaped"][i] = acc["len"][i] = 0
            acc["terms"][:, i] = 0

        prev_obs, prev_done = obs.copy(), done.copy()

    popped += env.pop_episodes()
    assert env.pop_episodes() == []
    assert n_done >= 20 and len(popped) == n_done
    assert {e.truncated for e in popped} == {True, False}  # both endings covered (limit is 15 steps)
    if mode == AutoresetMode.SAME_STEP:
        assert n_same_step_checked == n_done
    else:
        assert n_reset_rows >= n_done - n  # every ended episode but the last few produced a reset row
    for got, want in zip(popped, expected_eps, strict=True):
        assert (got.env_id, got.length, got.truncated, got.success) == (want.env_id, want.length, want.truncated, None)
        assert got.true_return == want.true_return == got.length  # CartPole pays 1 per step
        assert got.shaped_return == pytest.approx(want.shaped_return, abs=1e-9)
        assert got.terms == pytest.approx(want.terms, abs=1e-9)
        assert got.terms["funky"] == pytest.approx(0.5 * (got.env_id + 1) * got.length)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
@pytest.mark.parametrize("dict_obs", [False, True], ids=["box", "dict"])
def test_vector_success_and_final_obs_of_dict_observations(mode, dict_obs):
    rec = Recorder()
    venv = gym.vector.SyncVectorEnv([functools.partial(line_env, dict_obs)] * 2, autoreset_mode=mode)
    env = ShapedVectorEnv(venv, RewardStack([EnvReward(), Funky(), rec]))
    env.reset(seed=0)
    # env 0 walks right: reaches 3 at step 3 (success); env 1 walks left: truncated at step 6.
    for _ in range(3):
        obs, reward, term, trunc, info = env.step(np.array([1, 0]))
    np.testing.assert_array_equal(term, [True, False])
    np.testing.assert_array_equal(reward, [1.0 + 0.5, 1.0])
    pos_seen = rec.calls[-1]["next_obs"]["pos"] if dict_obs else rec.calls[-1]["next_obs"]
    np.testing.assert_array_equal(pos_seen[:, 0], [3.0, 0.0])  # the final obs, not the reset obs (0)
    if dict_obs:
        np.testing.assert_array_equal(rec.calls[-1]["next_obs"]["neg"][:, 0], [-3.0, 0.0])
    for _ in range(3):
        env.step(np.array([1, 0]))
    # SAME_STEP: env 0 already finished a second episode at step 6; NEXT_STEP lost a step to the reset.
    episodes = env.pop_episodes()
    expected = [(0, 1.0, 1.0, 3, False), (0, 1.0, 1.0, 3, False), (1, 0.0, 0.0, 6, True)]
    if mode == AutoresetMode.NEXT_STEP:
        expected.pop(1)
    assert [(e.env_id, e.success, e.true_return, e.length, e.truncated) for e in episodes] == expected
    assert [e.shaped_return for e in episodes] == [1.0 + 3 * 0.5] * (len(expected) - 1) + [6 * 1.0]


def test_vector_env_without_copy_shows_terms_the_previous_obs():
    # SyncVectorEnv(copy=False) overwrites one obs buffer in place every step.
    stack, rec = make_stack()
    env = ShapedVectorEnv(cartpole_venv(AutoresetMode.NEXT_STEP, 2, copy=False), stack)
    twin = cartpole_venv(AutoresetMode.NEXT_STEP, 2)
    obs, _ = env.reset(seed=5)
    tobs, _ = twin.reset(seed=5)
    for _ in range(5):
        prev = tobs.copy()
        obs, *_ = env.step(np.array([0, 1]))
        tobs, *_ = twin.step(np.array([0, 1]))
        np.testing.assert_array_equal(rec.calls[-1]["obs"], prev)
        np.testing.assert_array_equal(rec.calls[-1]["next_obs"], tobs)
        assert not np.array_equal(rec.calls[-1]["obs"], rec.calls[-1]["next_obs"])


def test_vector_wrapper_argument_errors():
    venv = cartpole_venv(AutoresetMode.DISABLED, 1)
    with pytest.raises(InvalidArgument, match="needs an autoresetting vector env .* got DISABLED"):
        ShapedVectorEnv(venv, RewardStack([EnvReward()]))
    with pytest.raises(InvalidArgument, match="stack must be a RewardStack, got list"):
        ShapedVectorEnv(cartpole_venv(AutoresetMode.SAME_STEP, 1), [EnvReward()])


# -- ShapedEnv --------------------------------------------------------------------------------


def test_single_env_rewards_terms_and_episode_stats():
    stack, rec = make_stack()
    env = ShapedEnv(gym.make("CartPole-v1", max_episode_steps=15), stack)
    twin = gym.make("CartPole-v1", max_episode_steps=15)
    obs, _ = env.reset(seed=7)
    tobs, _ = twin.reset(seed=7)
    rng = np.random.default_rng(1)
    true_ret = shaped_ret = 0.0
    length = 0
    ends = []
    for _ in range(120):
        a = int(rng.integers(0, 2))
        prev = obs
        obs, reward, term, trunc, info = env.step(a)
        tobs, treward, tterm, ttrunc, _ = twin.step(a)
        np.testing.assert_array_equal(obs, tobs)
        assert (term, trunc, info["reward_env"]) == (tterm, ttrunc, treward)
        terms = info["reward_terms"]
        assert all(type(v) is float for v in terms.values()) and type(reward) is float
        acc = np.float32(0.0)
        for v in terms.values():
            acc = np.float32(acc + np.float32(v))
        assert float(acc) == reward  # the parts add up to the reward (same float32 arithmetic)
        assert (terms["env"], terms["funky"], terms["step_penalty"], terms["rec"]) == (1.0, 0.5, -0.25, 0.0)
        expected_pot = GAMMA * (0.0 if term else np.float32(10 * obs[0])) - np.float32(10 * prev[0])
        assert terms["potential"] == pytest.approx(float(expected_pot), abs=1e-5)
        call = rec.calls[-1]
        np.testing.assert_array_equal(call["obs"], prev[None])
        np.testing.assert_array_equal(call["next_obs"], obs[None])  # the true final obs at the end too
        true_ret += treward
        shaped_ret += reward
        length += 1
        if term or trunc:
            stats = info["episode_stats"]
            assert (stats["true_return"], stats["length"]) == (true_ret, length)
            assert stats["shaped_return"] == pytest.approx(shaped_ret, abs=1e-9)
            assert stats["terms"]["funky"] == 0.5 * length
            ends.append((true_ret, shaped_ret, length, bool(trunc)))
            true_ret = shaped_ret = 0.0
            length = 0
            obs, _ = env.reset()
            tobs, _ = twin.reset()
            np.testing.assert_array_equal(obs, tobs)
        else:
            assert "episode_stats" not in info
    episodes = env.pop_episodes()
    assert len(episodes) == len(ends) >= 5
    assert {e[3] for e in ends} == {True, False}
    for e, (t, s, n, tr) in zip(episodes, ends, strict=True):
        assert (e.env_id, e.true_return, e.length, e.truncated, e.success) == (0, t, n, tr, None)
        assert e.shaped_return == pytest.approx(s, abs=1e-9)
    assert env.pop_episodes() == []


def test_single_env_success_flag_and_reset_clears_partial_episode():
    env = ShapedEnv(line_env(), RewardStack([EnvReward(), StepPenalty(0.25)]))
    env.reset(seed=0)
    env.step(1)
    env.reset()  # the partial episode (1 step) is discarded, not recorded
    rewards = [env.step(1)[1] for _ in range(3)]
    assert rewards == [-0.25, -0.25, 0.75]
    env.reset()
    for _ in range(6):
        *_, trunc, info = env.step(0)
    assert trunc and info["episode_stats"]["true_return"] == 0.0
    success, failure = env.pop_episodes()
    assert (success.success, success.true_return, success.shaped_return, success.length) == (1.0, 1.0, 0.25, 3)
    assert (failure.success, failure.truncated, failure.shaped_return, failure.length) == (0.0, True, -1.5, 6)
    assert success.terms == {"env": 1.0, "step_penalty": -0.75}


def test_single_env_wrapper_argument_error():
    with pytest.raises(InvalidArgument, match="stack must be a RewardStack or a list of term specs, got EnvReward"):
        ShapedEnv(gym.make("CartPole-v1"), EnvReward())


def test_single_env_built_from_specs_is_rebuilt_from_its_spec_with_a_fresh_stack():
    from gymnasium.utils.env_checker import check_env

    specs = ["env", {"name": "step_penalty", "params": {"value": 0.25}}]
    env = ShapedEnv(gym.make("CartPole-v1"), specs, gamma=0.9)
    specs[1]["params"]["value"] = 9.0  # the caller's list is copied, not referenced
    check_env(env, skip_render_check=True)  # includes gym.make(env.spec)
    twin = gym.make(env.spec)
    assert isinstance(twin, ShapedEnv) and twin.stack is not env.stack
    for e in (env, twin):
        e.reset(seed=3)
    steps = [(env.step(a)[1], twin.step(a)[1]) for a in (0, 1, 1, 0)]
    assert steps == [(0.75, 0.75)] * 4
    assert twin.spec.additional_wrappers[-1].kwargs == {"stack": ["env", {"name": "step_penalty",
                                                                         "params": {"value": 0.25}}], "gamma": 0.9}


def test_single_env_built_from_a_stack_object_says_why_its_spec_cannot_rebuild_it():
    env = ShapedEnv(gym.make("CartPole-v1"), RewardStack([EnvReward()]))
    with pytest.raises(InvalidArgument, match="built from a RewardStack object .* cannot be rebuilt from env.spec"):
        gym.make(env.spec)


def test_single_env_from_specs_holding_an_uncopyable_object_still_works():
    import threading

    from rewardlab.core.terms import TERMS, register_term

    @register_term("test_holds_a_lock")
    class HoldsALock(Term):
        def __init__(self, lock):
            self.lock = lock

        def __call__(self, t):
            with self.lock:
                return np.ones(t.num_envs, np.float32)

    try:
        lock = threading.Lock()  # deepcopy refuses locks
        env = ShapedEnv(gym.make("CartPole-v1"), [{"name": "test_holds_a_lock", "params": {"lock": lock}}])
        env.reset(seed=0)
        assert env.step(0)[1] == 1.0 and env.stack.terms[0].lock is lock
        with pytest.raises(InvalidArgument, match="cannot be rebuilt from env.spec"):
            gym.make(env.spec)
    finally:
        TERMS.unregister("test_holds_a_lock")
