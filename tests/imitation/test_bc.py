"""Behaviour cloning, the demo train/held-out split and the policy evaluator shared by ILD and BC."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("brax")

import jax.numpy as jnp  # noqa: E402

from rewardlab.errors import InvalidArgument  # noqa: E402
from rewardlab.imitation.bc import BCConfig, PolicyEvaluator, train_bc  # noqa: E402
from rewardlab.imitation.ild import Demos, collect_demos  # noqa: E402


def _synthetic_demos(n: int = 6, t: int = 20, d: int = 5, a: int = 2, n_train: int | None = None) -> Demos:
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, t + 1, d)).astype(np.float32)
    w = rng.normal(size=(d, a)).astype(np.float32)
    actions = np.tanh(obs[:, :-1] @ w)  # a deterministic expert the MLP can represent
    keys = np.zeros((n, 2), np.uint32)
    return Demos("reacher", "positional", obs, actions, keys, np.zeros(n, np.float32), n_train)


def test_bc_loss_decreases_and_fits_the_expert():
    demos = _synthetic_demos()
    params, losses = train_bc(demos, BCConfig(lr=3e-3, steps=600, batch_size=64), seed=0)
    assert losses.shape == (601,) and np.isfinite(losses).all()
    assert losses[-1] < 0.2 * losses[0]
    # a different seed starts elsewhere and also learns
    _, losses1 = train_bc(demos, BCConfig(lr=3e-3, steps=600, batch_size=64), seed=1)
    assert losses1[0] != pytest.approx(losses[0]) and losses1[-1] < 0.2 * losses1[0]


def test_bc_uses_only_the_training_split_and_validates():
    demos = _synthetic_demos(n_train=4)
    train, held = demos.split()
    assert train.obs.shape[0] == 4 and held.obs.shape[0] == 2 and held.n_train == 2
    # training on the split or on the full file with its n_train gives the same fit
    p1, l1 = train_bc(demos, BCConfig(steps=50), seed=0)
    p2, l2 = train_bc(train, BCConfig(steps=50), seed=0)
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    with pytest.raises(InvalidArgument, match="lr must be > 0"):
        BCConfig(lr=0)
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
    ev = PolicyEvaluator(zero)
    params = [(jnp.zeros((11, 8)), jnp.zeros(8)), (jnp.zeros((8, 2)), jnp.zeros(2))]  # π(obs) = 0
    out = ev(params)
    assert out["trajectory_error"] == pytest.approx(0.0, abs=1e-5)
    assert out["chamfer"] == pytest.approx(0.0, abs=1e-3)
    assert out["return"] == pytest.approx(float(zero.returns.mean()), rel=1e-5)
    assert out["expert_return"] == pytest.approx(float(zero.returns.mean()), rel=1e-6)
    # a policy that pushes the arm moves away from the zero-action trajectories
    push = [(jnp.zeros((11, 8)), jnp.zeros(8)), (jnp.zeros((8, 2)), jnp.ones(2))]
    assert ev(push)["trajectory_error"] > 0.05
