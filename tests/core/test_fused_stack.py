"""The fused reward stack gives, bit for bit, what the terms' own calls give.

``RewardStack.evaluate`` lets the built-in ``env``, ``step_penalty`` and ``potential`` terms
write straight into one float32 matrix (``Term._evaluate_into`` / ``Term._constant``), and the
wrappers accumulate that matrix in one addition. These tests compare it with an independent
reference: the pre-fusion stack written out plainly (each term called, weighted, checked,
summed in order onto zeros), and, through ``ShapedVectorEnv``, a step-by-step recomputation
from an unwrapped twin of the env (final observations and final infos on episode ends,
NEXT_STEP reset steps, episode statistics). Values are compared as bits (``-0.0`` is not
``0.0`` here), on random rewards, episode ends, weights, gates and a clip.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from rewardlab.core import RewardStack, ShapedVectorEnv, Term, Transition
from rewardlab.errors import TermError
from rewardlab.shaping.basic import EnvReward, StepPenalty
from rewardlab.shaping.gated import GatedAccumulation
from rewardlab.shaping.potential import PotentialShaping

GAMMA = 0.97
N = 6


def phi(obs, info):
    """Φ from the observation and the info (so a wrong final obs *or* final info shows)."""
    return np.asarray(obs, np.float32)[:, 0] * np.float32(0.7) + np.asarray(info["x"], np.float32)


def phi_rowwise(obs, info):
    return phi(obs, info)


phi_rowwise.rowwise = True  # Φ(s₀) of new episodes from one call on the whole reset batch


def bits(x) -> np.ndarray:
    return np.asarray(x, np.float32).view(np.uint32)


class Funky(Term):
    """A generic (not fused) term: float64 values that depend on the env and the action."""

    name = "funky"

    def __call__(self, t: Transition) -> np.ndarray:
        return 0.3 * (t.env_ids + 1) - 0.1 * np.asarray(t.action, np.float64)


class Unfused:
    """A term seen by the stack only through ``__call__`` (a plain ``RewardTerm``, not a ``Term``)."""

    def __init__(self, term):
        self.term, self.name = term, term.name

    def __call__(self, t):
        return self.term(t)

    def reset(self, env_ids):
        self.term.reset(env_ids)

    def bind(self, num_envs):
        self.term.bind(num_envs)

    def observe_reset(self, obs, info, env_ids):
        self.term.observe_reset(obs, info, env_ids)


def make_terms(penalty: float):
    return [EnvReward(), StepPenalty(penalty), PotentialShaping(phi, gamma=GAMMA), Funky()]


def reference(stack: RewardStack, t: Transition):
    """The stack before fusion: call, check shape, weight, gate, sum onto zeros, clip."""
    total = np.zeros(t.num_envs, np.float32)
    parts = {}
    for term, w in zip(stack.terms, stack.weights, strict=True):
        value = term(t)
        assert value.shape == (t.num_envs,)
        parts[term.name] = value if w == 1.0 and value.dtype == np.float32 else (value * w).astype(np.float32)
    if stack.gate is not None:
        parts = stack.gate.apply(parts, t)
    for contrib in parts.values():
        total += contrib
    assert np.isfinite(total).all()
    if stack.clip is not None:
        np.clip(total, stack.clip[0], stack.clip[1], out=total)
    return total, parts


def random_rewards(rng, n):
    """float64 rewards that float32 cannot hold exactly, with exact zeros and negative zeros."""
    r = rng.normal(0.0, 3.0, n) * (1.0 + 1e-9)
    r[rng.random(n) < 0.2] = 0.0
    r[rng.random(n) < 0.2] = -0.0
    return r


WEIGHTS = [[1.0, 1.0, 1.0, 1.0], [-1.5, 0.0, 2.0, 1.0], [0.3, -1.0, 1.0, 0.1], [1.0, 3.0, -0.7, -2.5]]


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("variant", ["plain", "gate", "clip"])
def test_fused_stack_matches_the_unfused_reference_bit_for_bit(weights, variant):
    rng = np.random.default_rng(len(variant) * 100 + int(10 * weights[0]))

    def stack_of(terms):
        gate = GatedAccumulation("env", ["potential", "funky"], threshold=0.5) if variant == "gate" else None
        clip = (-1.0, 1.5) if variant == "clip" else None
        return RewardStack(terms, weights, clip=clip, gate=gate)

    fused = stack_of(make_terms(0.01))
    ref = stack_of([Unfused(t) for t in make_terms(0.01)])
    assert [d for *_, d in fused._plan] == [True, None, True, False]  # what is fused
    assert [d for *_, d in ref._plan] == [False, False, False, False]
    for s in (fused, ref):
        s.bind(N)
    obs = rng.normal(size=(N, 2)).astype(np.float32)
    info = {"x": rng.normal(size=N)}
    for s in (fused, ref):
        s.reset(fused.all_ids)
        s.observe_reset(obs, info, fused.all_ids)
    ends = 0
    for step in range(300):
        next_obs = rng.normal(size=(N, 2)).astype(np.float32)
        next_info = {"x": rng.normal(size=N)}
        term, trunc = rng.random(N) < 0.1, rng.random(N) < 0.05
        trunc &= ~term
        action = rng.integers(0, 3, N)
        r = random_rewards(rng, N)
        if step == 7:  # a changed step penalty is picked up
            fused.terms[1].value = ref.terms[1].term.value = 0.25
        t_f = Transition(obs, action, next_obs, r, term, trunc, next_info, fused.all_ids)
        t_r = Transition(obs, action, next_obs, r, term, trunc, next_info, np.arange(N))
        m = fused.evaluate(t_f)
        want_total, want_parts = reference(ref, t_r)
        assert m.shape == (5, N) and m.dtype == np.float32
        np.testing.assert_array_equal(bits(m[-1]), bits(want_total))
        for k, name in enumerate(fused.names):
            np.testing.assert_array_equal(bits(m[k]), bits(want_parts[name]), err_msg=f"{name} at step {step}")
        # __call__ on a batch that is not marked full (the terms' own calls inside the fused
        # stack): the same values as the reference too; both stacks' states advance alike.
        stay = Transition(next_obs, action, next_obs, r, np.zeros(N, bool), np.zeros(N, bool), next_info)
        total, parts = fused(stay)
        want_total, want_parts = reference(ref, stay)
        assert list(parts) == fused.names
        np.testing.assert_array_equal(bits(total), bits(want_total))
        for name in fused.names:
            np.testing.assert_array_equal(bits(parts[name]), bits(want_parts[name]))
        ended = np.flatnonzero(term | trunc)
        ends += len(ended)
        obs, info = next_obs, next_info
        if len(ended):
            reset_obs = rng.normal(size=(N, 2)).astype(np.float32)
            reset_info = {"x": rng.normal(size=N)}
            for s in (fused, ref):
                s.reset(ended)
                s.observe_reset(reset_obs, reset_info, ended)
            obs = obs.copy()
            obs[ended] = reset_obs[ended]
            info = {"x": np.where(term | trunc, reset_info["x"], info["x"])}
    assert ends > 50


def test_template_rows_are_not_shared_between_steps():
    stack = RewardStack([EnvReward(), StepPenalty(0.5)], weights=[1.0, 2.0])
    stack.bind(2)
    t = Transition(None, None, None, np.array([1.0, 2.0]), np.zeros(2, bool), np.zeros(2, bool), {}, stack.all_ids)
    a = stack.evaluate(t)
    a[1] = 99.0
    b = stack.evaluate(t)
    np.testing.assert_array_equal(b, np.float32([[1.0, 2.0], [-1.0, -1.0], [0.0, 1.0]]))
    assert not stack.all_ids.flags.writeable


def test_a_subclass_that_overrides_call_is_called_not_fused():
    class Doubled(StepPenalty):
        def __call__(self, t):
            return 2.0 * super().__call__(t)

    class Plus(EnvReward):
        def __call__(self, t):
            return super().__call__(t) + np.float32(1.0)

    stack = RewardStack([Plus(), Doubled(0.25)])
    assert [d for *_, d in stack._plan] == [False, False]
    stack.bind(2)
    t = Transition(None, None, None, np.array([1.0, 2.0]), np.zeros(2, bool), np.zeros(2, bool), {}, stack.all_ids)
    np.testing.assert_array_equal(stack.evaluate(t), np.float32([[2.0, 3.0], [-0.5, -0.5], [1.5, 2.5]]))


def test_the_total_is_summed_onto_zero_as_before():
    """All parts -0.0: the reference's zeros + parts gives +0.0, so must the fused sum."""
    t = Transition(None, None, None, np.array([-0.0, 2.0]), np.zeros(2, bool), np.zeros(2, bool))
    fused = RewardStack([EnvReward(), StepPenalty(0.0)])
    fused.bind(2)
    t.env_ids = fused.all_ids
    want, _ = reference(RewardStack([Unfused(EnvReward()), Unfused(StepPenalty(0.0))]), t)
    np.testing.assert_array_equal(bits(fused.evaluate(t)[-1]), bits(want))
    assert bits(want)[0] == 0  # +0.0


def test_a_fused_term_that_raises_is_named():
    def bad_phi(obs, info):
        raise KeyError("chars")

    stack = RewardStack([EnvReward(), PotentialShaping(lambda o, i: np.zeros(2, np.float32))])
    stack.bind(2)
    stack.observe_reset(np.zeros((2, 1)), {}, stack.all_ids)
    stack.terms[1].phi = bad_phi
    t = Transition(None, None, None, np.zeros(2), np.zeros(2, bool), np.zeros(2, bool), {}, stack.all_ids)
    with pytest.raises(TermError, match="reward term 'potential' raised KeyError"):
        stack.evaluate(t)


class RandomEnv(gym.Env):
    """Random observations, float64 rewards, info["x"], terminations and truncations."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Discrete(3)

    def _obs(self):
        return self.np_random.normal(size=2).astype(np.float32), {"x": float(self.np_random.normal())}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs()

    def step(self, action):
        self.t += 1
        obs, info = self._obs()
        u = self.np_random.random()
        r = float(random_rewards(self.np_random, 1)[0])
        info["is_success"] = bool(u < 0.05)
        return obs, r, bool(u < 0.1), bool(0.1 <= u < 0.14 or self.t >= 25), info


def make_venv(mode):
    return gym.vector.SyncVectorEnv([RandomEnv for _ in range(N)], autoreset_mode=mode)


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
@pytest.mark.parametrize("weights", WEIGHTS[:3])
@pytest.mark.parametrize("rowwise", [False, True])
def test_shaped_vector_env_matches_a_recomputation_from_the_raw_env(mode, weights, rowwise):
    """Every reward, info["reward_terms"] entry and episode statistic, recomputed from a twin env."""
    weights = weights[:3]
    penalty = 0.01
    terms = [EnvReward(), StepPenalty(penalty), PotentialShaping(phi_rowwise if rowwise else phi, gamma=GAMMA)]
    assert terms[2]._rowwise == rowwise
    env = ShapedVectorEnv(make_venv(mode), RewardStack(terms, weights))
    twin = make_venv(mode)
    w = np.asarray(weights, np.float32)
    obs, _ = env.reset(seed=3)
    tobs, tinfo = twin.reset(seed=3)
    np.testing.assert_array_equal(obs, tobs)
    phi_s = phi(tobs, tinfo)
    reset_next = np.zeros(N, bool)
    sums = np.zeros((5, N))  # true return, env, step_penalty, potential, shaped
    length = np.zeros(N, np.int64)
    rng = np.random.default_rng(1)
    records, episodes = [], 0
    for step in range(400):
        action = rng.integers(0, 3, N)
        obs, reward, term, trunc, info = env.step(action)
        tobs, r, tterm, ttrunc, tinfo = twin.step(action)
        np.testing.assert_array_equal(obs, tobs)
        done = tterm | ttrunc
        next_obs, next_x = tobs.copy(), np.asarray(tinfo["x"], np.float64).copy()
        if mode == AutoresetMode.SAME_STEP:
            for i in np.flatnonzero(done):  # the true successor: the final obs and final info
                next_obs[i] = tinfo["final_obs"][i]
                next_x[i] = tinfo["final_info"]["x"][i]
        phi_next = phi(next_obs, {"x": next_x})
        parts = np.stack([
            np.asarray(r, np.float32) * w[0],
            np.full(N, np.float32(-penalty) * w[1]),
            (np.float32(GAMMA) * np.where(tterm, np.float32(0.0), phi_next) - phi_s) * w[2],
        ]).astype(np.float32)
        parts[:, reset_next] = 0.0  # NEXT_STEP: a reset step is no transition
        want = ((np.zeros(N, np.float32) + parts[0]) + parts[1]) + parts[2]
        np.testing.assert_array_equal(bits(reward), bits(want), err_msg=f"step {step}")
        for k, name in enumerate(["env", "step_penalty", "potential"]):
            np.testing.assert_array_equal(bits(info["reward_terms"][name]), bits(parts[k]), err_msg=name)
        np.testing.assert_array_equal(info["reward_env"], r)
        live = ~reset_next
        sums[0, live] += r[live]
        sums[1:4, live] += parts[:, live]
        sums[4, live] += want[live]
        length[live] += 1
        ended = done & live
        if ended.any():
            stats = info["episode_stats"]
            np.testing.assert_array_equal(info["_episode_stats"], ended)
            for i in np.flatnonzero(ended):
                assert stats["true_return"][i] == sums[0, i] and stats["shaped_return"][i] == sums[4, i]
                assert stats["length"][i] == length[i]
                for k, name in enumerate(["env", "step_penalty", "potential"]):
                    assert stats["terms"][name][i] == sums[1 + k, i]
                final = tinfo["final_info"] if mode == AutoresetMode.SAME_STEP else tinfo
                records.append((i, sums[0, i], sums[4, i], length[i], float(final["is_success"][i]),
                                tuple(sums[1:4, i]), bool(ttrunc[i])))
            sums[:, ended] = 0.0
            length[ended] = 0
            episodes += int(ended.sum())
        else:
            assert "episode_stats" not in info
        # Φ(s) for the next step: the new episode's first state where one ended.
        phi_s = phi_next
        if mode == AutoresetMode.SAME_STEP and done.any():
            phi_s = np.where(done, phi(tobs, tinfo), phi_next)
        if mode == AutoresetMode.NEXT_STEP:
            phi_s = np.where(reset_next, phi(tobs, tinfo), phi_next)
            reset_next = done & live
    got = [(r.env_id, r.true_return, r.shaped_return, r.length, r.success, tuple(r.terms.values()), r.truncated)
           for r in env.pop_episodes()]
    assert got == records and episodes > 40


@pytest.mark.parametrize("char", [">", "(", "+"])
def test_small_batch_distance_matches_the_batched_numpy_one(char):
    """The MiniHack potentials' per-env byte scan gives the batched NumPy path's values, bit for bit
    (several targets on a map, none, the agent on the target, odd caps)."""
    from rewardlab.envs.minihack_potentials import _distance_to_batch, _distance_to_small

    rng = np.random.default_rng(ord(char))
    for _ in range(300):
        n = int(rng.integers(1, 12))
        chars = rng.choice(np.frombuffer(b" .|-#@<", np.uint8), size=(n, 21, 79))
        for i in range(n):
            for _ in range(rng.choice([0, 1, 1, 2, 4])):
                chars[i, rng.integers(21), rng.integers(79)] = ord(char)
        pos = np.stack([rng.integers(0, 79, n), rng.integers(0, 21, n)], 1).astype(np.int64)
        if rng.random() < 0.3:  # the agent stands on a target
            i = int(rng.integers(n))
            chars[i, pos[i, 1], pos[i, 0]] = ord(char)
        cap = float(rng.choice([20.0, 7.3, 3.0, 100.0, 0.1]))
        want = _distance_to_batch(chars, pos, char, cap)
        got = _distance_to_small(chars, pos, char, cap)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(bits(got), bits(want))
