"""Brax envs: JAX reward terms inside the jitted step, autoreset, Gymnasium and torch adapters.

JAX compiles each distinct step once per process (tens of seconds on 2 shared CPU cores), so
the tests share a few module-scoped envs.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("brax")

import jax.numpy as jnp  # noqa: E402

import rewardlab  # noqa: E402
from rewardlab.core.transition import Transition  # noqa: E402
from rewardlab.envs.brax import BraxGymEnv, BraxTask, BraxVectorEnv, build_jax_terms  # noqa: E402
from rewardlab.errors import ConfigError, InvalidArgument, UnknownNameError  # noqa: E402
from rewardlab.shaping.potential import PotentialShaping  # noqa: E402
from rewardlab.shaping.reach import ControlCost, ReachDistance  # noqa: E402

GAMMA = 0.9
TERMS = [
    {"name": "metric", "params": {"key": "reward_dist"}, "as": "dist"},
    {"name": "metric", "params": {"key": "reward_ctrl"}, "as": "ctrl"},
    {"name": "env", "weight": 0.0},
    {"name": "potential", "params": {"start": 8, "stop": 11}},
]


def _policy(obs):  # deterministic, non-zero actions inside [-1, 1]
    return jnp.sin(jnp.arange(2.0) + obs[:, :2] * 3.0)


@pytest.fixture(scope="module")
def task():
    return BraxTask("reacher", num_envs=3, backend="positional", episode_length=4, terms=TERMS, gamma=GAMMA)


@pytest.fixture(scope="module")
def rollout(task):
    vs0 = task.reset(jax.random.PRNGKey(0))
    run = jax.jit(lambda vs: task.rollout(vs, _policy, 9))
    return vs0, run(vs0)


def test_metric_terms_with_weight_one_sum_to_the_env_reward(rollout):
    _, (_, out) = rollout
    np.testing.assert_allclose(out.terms["dist"] + out.terms["ctrl"], out.reward_env, rtol=1e-5, atol=1e-6)
    # the weight-0 env term adds 0
    np.testing.assert_allclose(out.reward, out.reward_env + out.terms["potential"], rtol=1e-5, atol=1e-6)
    assert (out.terms["ctrl"] < 0).all() and (out.terms["dist"] < 0).all()


def test_truncation_and_same_step_autoreset(rollout):
    vs0, (vs, out) = rollout
    trunc = np.asarray(out.truncated)
    # episode_length 4: steps 4 and 8 (1-based) truncate every env; nothing terminates on Reacher
    assert trunc[[3, 7]].all() and trunc.sum() == 6 and not np.asarray(out.terminated).any()
    # after a reset row the obs is a fresh episode's, not the final one
    assert not np.allclose(out.obs[3], out.final_obs[3])
    np.testing.assert_array_equal(np.asarray(vs.steps), [1, 1, 1])


def test_potential_term_matches_the_formula(task):
    fn = dict((n, f) for n, _, f in task.terms)["potential"]
    obs, nobs = jnp.arange(11.0) / 10, jnp.arange(11.0) / 20
    phi = lambda o: -float(np.linalg.norm(np.asarray(o)[8:11]))
    got = float(fn(obs, None, nobs, {}, 0.0, 0.0))
    assert got == pytest.approx(GAMMA * phi(nobs) - phi(obs), rel=1e-5)
    assert float(fn(obs, None, nobs, {}, 0.0, 1.0)) == pytest.approx(-phi(obs), rel=1e-5)  # Φ(terminal) = 0


def test_jax_terms_equal_their_numpy_twins_on_the_same_states(rollout):
    """The JAX terms (inside the jitted step, and as functions) against the NumPy terms that
    ShapedEnv uses, on the states of a real Brax rollout with truncations and autoresets."""
    vs0, (_, out) = rollout
    final, terminated, truncated = (np.asarray(x) for x in (out.final_obs, out.terminated, out.truncated))
    obs = np.concatenate([np.asarray(vs0.core.obs)[None], np.asarray(out.obs)[:-1]])  # each step's start
    act = np.asarray(jax.vmap(_policy)(jnp.asarray(obs)))
    steps, n = terminated.shape
    radius = float(np.median(np.linalg.norm(final[..., 8:11], axis=-1)))  # half inside, half outside
    fns = {name: jax.vmap(fn) for name, _, fn in build_jax_terms([
        {"name": "reach", "params": {"start": 8, "stop": 11}},
        {"name": "ctrl_cost"},
        {"name": "reach_success", "params": {"start": 8, "stop": 11, "radius": radius}},
        {"name": "potential", "params": {"start": 8, "stop": 11, "gamma": GAMMA, "scale": 2.0}},
    ])}
    reach, ctrl = ReachDistance(a=[8, 11]), ControlCost()
    pot_in_step = PotentialShaping("robotics/reach_distance", gamma=GAMMA, params={"a": [8, 11]})
    pot_in_step.observe_reset(obs[0], {}, np.arange(n))
    pot2 = PotentialShaping("robotics/reach_distance", gamma=GAMMA, scale=2.0, params={"a": [8, 11]})
    ends = terminal_rows = 0
    for i in range(steps):
        t = Transition(obs[i], act[i], final[i], np.asarray(out.reward_env[i]), terminated[i], truncated[i])

        def jax_term(name, done=terminated[i], t=t):
            return np.asarray(fns[name](t.obs, t.action, t.next_obs, {}, t.env_reward, done.astype(np.float32)))

        close = dict(rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(reach(t), jax_term("reach"), **close)
        np.testing.assert_allclose(ctrl(t), jax_term("ctrl_cost"), **close)
        np.testing.assert_allclose(ctrl(t), out.terms["ctrl"][i], **close)  # Brax reacher's reward_ctrl is -Σa²
        np.testing.assert_array_equal(-reach(t) < radius, jax_term("reach_success") > 0.5)
        # the stateful NumPy potential (Φ(s) cached at reset) vs the stateless one inside the step
        np.testing.assert_allclose(pot_in_step(t), out.terms["potential"][i], **close)
        # Reacher never terminates: pretend every other env did, to check Φ(terminal) = 0 on both sides
        fake_end = np.arange(n) % 2 == i % 2
        t_end = Transition(obs[i], act[i], final[i], t.env_reward, fake_end, np.zeros(n, bool))
        pot2.reset(np.arange(n))  # no cache: Φ(s) from the obs, as the JAX term computes it
        np.testing.assert_allclose(pot2(t_end), jax_term("potential", fake_end), **close)
        terminal_rows += int(fake_end.sum())
        done = terminated[i] | truncated[i]
        if done.any():  # same-step autoreset: the next episode starts from out.obs[i]
            ids = np.flatnonzero(done)
            pot_in_step.reset(ids)
            pot_in_step.observe_reset(np.asarray(out.obs[i]), {}, ids)
            ends += len(ids)
    assert ends == 6 and terminal_rows > 0
    assert 0 < (np.linalg.norm(final[..., 8:11], axis=-1) < radius).mean() < 1


def test_gymnasium_env_checker_passes_on_brax_gym_env():
    from gymnasium.utils.env_checker import check_env

    check_env(BraxGymEnv("reacher", episode_length=5), skip_render_check=True)


def test_bad_term_specs_and_names():
    with pytest.raises(UnknownNameError, match="unknown JAX reward term 'metrik'"):
        build_jax_terms(["metrik"])
    with pytest.raises(ConfigError, match="used twice"):
        build_jax_terms(["env", "env"])
    with pytest.raises(InvalidArgument, match="gamma must be in"):
        build_jax_terms([{"name": "potential", "params": {"start": 0, "stop": 2, "gamma": 2.0}}])
    with pytest.raises(InvalidArgument, match="unknown Brax backend 'warp'"):
        BraxTask("reacher", backend="warp")


def test_gymnasium_env_components_sum_to_reward_through_shaped_vector_env():
    reward = [{"name": "info_component", "params": {"key": "reward_dist"}},
              {"name": "info_component", "params": {"key": "reward_ctrl"}, "as": "ctrl"}]
    venv = rewardlab.make_vec("brax/reacher", 2, reward=reward, episode_length=3)
    venv.reset(seed=1)
    ends = 0
    for i in range(4):
        _, rew, term, trunc, info = venv.step(np.full((2, 2), 0.3, np.float32))
        np.testing.assert_allclose(rew, info["reward_env"], rtol=1e-5, atol=1e-6)
        ends += int(trunc.sum())
        assert trunc.all() == (i == 2)
    assert ends == 2
    venv.close()


@pytest.mark.slow
def test_torch_vector_env_via_dlpack():
    torch = pytest.importorskip("torch")
    venv = BraxVectorEnv("reacher", num_envs=4, episode_length=2, array="torch",
                         terms=["env", {"name": "reach", "params": {"start": 8, "stop": 11}, "weight": 0.5}])
    obs, _ = venv.reset(seed=0)
    assert isinstance(obs, torch.Tensor) and obs.shape == (4, 11)
    _, rew, _, _, info = venv.step(torch.zeros(4, 2))
    _, rew, term, trunc, info = venv.step(torch.full((4, 2), 0.5))
    assert isinstance(rew, torch.Tensor)
    np.testing.assert_allclose(rew.numpy(), info["reward_terms"]["env"] + info["reward_terms"]["reach"], rtol=1e-5)
    assert trunc.all() and info["_final_obs"].all()
    with pytest.raises(InvalidArgument, match="actions must have shape"):
        venv.step(torch.zeros(3, 2))
