"""Behaviour cloning, the shared NormalTanh policy, the demo split and the policy evaluator shared by ILD and BC."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("brax")

import jax.numpy as jnp  # noqa: E402

from rewardlab.errors import InvalidArgument  # noqa: E402
from rewardlab.imitation.bc import BCConfig, PolicyEvaluator, train_bc  # noqa: E402
from rewardlab.imitation.ild import Actor, Demos, NormalTanhPolicy, collect_demos  # noqa: E402


def _synthetic_demos(n: int = 6, t: int = 20, d: int = 5, a: int = 2, n_train: int | None = None) -> Demos:
    rng = np.random.default_rng(0)
    obs = (3.0 + 2.0 * rng.normal(size=(n, t + 1, d))).astype(np.float32)  # off-centre: the normaliser matters
    w = rng.normal(size=(d, a)).astype(np.float32)
    actions = np.tanh((obs[:, :-1] - 3.0) @ w / 2.0)  # a deterministic expert the MLP can represent
    keys = np.zeros((n, 2), np.uint32)
    return Demos("reacher", "positional", obs, actions, keys, np.zeros(n, np.float32), n_train)


SMALL = {"hidden": (16,), "lr": 3e-3}


def test_normal_tanh_policy_samples_and_mode():
    pol = NormalTanhPolicy(3, 2, (8,))
    actor = pol.init_actor(jax.random.PRNGKey(0))
    obs = jnp.ones((4, 3))
    a = pol.act(actor, obs, jax.random.PRNGKey(1))
    assert a.shape == (4, 2) and float(jnp.abs(a).max()) < 1.0
    # the mode is tanh of the mean half of the output; samples differ from it by the learned scale
    loc = pol.logits(actor.params, obs)[:, :2]
    np.testing.assert_allclose(pol.act(actor, obs), jnp.tanh(loc), rtol=1e-6)
    assert float(jnp.abs(a - pol.act(actor, obs)).max()) > 1e-3
    # reparameterised: the sample is differentiable in the parameters
    g = jax.grad(lambda p: jnp.sum(pol.act(Actor(p, actor.obs_stats), obs, jax.random.PRNGKey(1))))(actor.params)
    assert float(jnp.abs(g[0][0]).sum()) > 0
    with pytest.raises(InvalidArgument, match="unknown activation 'gelu'; valid: swish, tanh, relu"):
        NormalTanhPolicy(3, 2, activation="gelu")


def test_bc_loss_decreases_and_fits_the_expert():
    demos = _synthetic_demos()
    actor, losses = train_bc(demos, BCConfig(steps=300, **SMALL), seed=0)
    assert losses.shape == (301,) and np.isfinite(losses).all()
    assert losses[-1] < 0.1 * losses[0]
    # the observation statistics learned the demos' mean (3.0), as the reference's normaliser does
    assert float(jnp.abs(actor.obs_stats.mean - demos.obs[:, :-1].reshape(-1, 5).mean(0)).max()) < 1e-3
    # a different seed starts elsewhere and also learns
    _, losses1 = train_bc(demos, BCConfig(steps=300, **SMALL), seed=1)
    assert losses1[0] != pytest.approx(losses[0]) and losses1[-1] < 0.1 * losses1[0]


def test_bc_uses_only_the_training_split_and_validates():
    demos = _synthetic_demos(n_train=4)
    train, held = demos.split()
    assert train.obs.shape[0] == 4 and held.obs.shape[0] == 2 and held.n_train == 2
    # training on the split or on the full file with its n_train gives the same fit
    _, l1 = train_bc(demos, BCConfig(steps=50, **SMALL), seed=0)
    _, l2 = train_bc(train, BCConfig(steps=50, **SMALL), seed=0)
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    with pytest.raises(InvalidArgument, match="lr must be > 0"):
        BCConfig(lr=0)
    with pytest.raises(InvalidArgument, match="activation must be one of swish, tanh, relu"):
        BCConfig(activation="gelu")
    with pytest.raises(InvalidArgument, match=r"n_demos must be in \[1, 6\]"):
        train_bc(demos, n_demos=7)
    with pytest.raises(InvalidArgument, match=r"n_train must be in \[1, 6\]"):
        _synthetic_demos(n_train=0)


def test_demos_n_train_round_trips(tmp_path):
    demos = _synthetic_demos(n_train=5)
    demos.save(tmp_path / "d.npz")
    back = Demos.load(tmp_path / "d.npz")
    assert back.n_train == 5 and back.split()[1].obs.shape[0] == 1
    np.testing.assert_array_equal(back.actions, demos.actions.astype(np.float32))


@pytest.mark.slow
def test_policy_evaluator_matches_a_recorded_rollout():
    # zero actions on Brax reacher: the evaluator's rollout must reproduce collect_demos' trajectories exactly
    zero = collect_demos("reacher", "positional", lambda obs: jnp.zeros(2), horizon=20, n=3, seed=7)
    ev = PolicyEvaluator(zero, hidden=(8,))
    pol = NormalTanhPolicy(11, 2, (8,))
    actor = pol.init_actor(jax.random.PRNGKey(0))
    w, b = actor.params[-1]
    still = actor._replace(params=[actor.params[0], (jnp.zeros_like(w), jnp.zeros_like(b))])  # mode = tanh(0)
    out = ev(still)
    assert out["trajectory_error"] == pytest.approx(0.0, abs=1e-4)
    assert out["chamfer"] == pytest.approx(0.0, abs=1e-3)
    assert out["return"] == pytest.approx(float(zero.returns.mean()), rel=1e-5)
    assert out["final_distance"] == pytest.approx(out["expert_final_distance"], rel=1e-4)
    # a policy that pushes the arm moves away from the zero-action trajectories
    push = actor._replace(params=[actor.params[0], (jnp.zeros_like(w), b.at[:2].set(1.0))])
    assert ev(push)["trajectory_error"] > 0.05
