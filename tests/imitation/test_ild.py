"""ILD: Chamfer distance, per-step gradient clipping, demos, learning, and the runner's ``ild`` agent."""

from __future__ import annotations

import json

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("brax")

import jax.numpy as jnp  # noqa: E402

from rewardlab.errors import ConfigError  # noqa: E402
from rewardlab.imitation.ild import ILD, Demos, ILDConfig, chamfer_distance, clip_gradient, make_ild  # noqa: E402


def test_chamfer_distance_properties():
    rng = np.random.default_rng(0)
    a, b = jnp.asarray(rng.normal(size=(7, 3))), jnp.asarray(rng.normal(size=(5, 3)))
    assert float(chamfer_distance(a, a)) == pytest.approx(0.0, abs=1e-5)
    assert float(chamfer_distance(a, b)) == pytest.approx(float(chamfer_distance(b, a)), rel=1e-6)
    # order within a trajectory does not matter, only the set of visited states
    assert float(chamfer_distance(a[::-1], b)) == pytest.approx(float(chamfer_distance(a, b)), rel=1e-6)
    # two-way: a subset of the expert's states is still penalised for the states it misses
    assert float(chamfer_distance(a[:1], a)) > 0.1


def test_clip_gradient_rescales_only_large_cotangents():
    big = jax.grad(lambda x: jnp.sum(clip_gradient({"p": x, "q": x}, 0.3)["p"] * 100.0))(jnp.ones(3))
    assert float(jnp.linalg.norm(big)) == pytest.approx(0.3, rel=1e-4)
    small = jax.grad(lambda x: jnp.sum(clip_gradient(x, 0.3) * 0.01))(jnp.ones(3))
    np.testing.assert_allclose(small, 0.01, rtol=1e-5)
    # forward is the identity
    np.testing.assert_array_equal(clip_gradient(jnp.arange(3.0), 0.3), jnp.arange(3.0))


def test_shipped_demos_and_clear_errors():
    demos = Demos.load("reacher")
    assert demos.obs.shape == (16, 51, 11) and demos.actions.shape == (16, 50, 2)
    # the expert reaches: the fingertip ends closer to the target than it started
    dist = np.linalg.norm(demos.obs[:, :, 8:10], axis=-1)
    assert dist[:, -1].mean() < 0.6 * dist[:, 0].mean()
    with pytest.raises(ConfigError, match="ILD demos 'walker' not found; shipped demos: ant, reacher"):
        Demos.load("walker")
    with pytest.raises(ConfigError, match=r"agent\.params\.learning_rate: unknown parameter for agent 'ild'"):
        make_ild(None, gamma=0.99, seed=0, params={"learning_rate": 1e-3})
    with pytest.raises(ConfigError, match=r"agent\.params\.truncation: 0 is invalid for agent 'ild'; allowed: an "
                                          r"integer >= 1"):
        make_ild(None, gamma=0.99, seed=0, params={"truncation": 0})


def test_shipped_ant_demos_come_from_a_walking_expert():
    demos = Demos.load("ant")
    assert demos.env == "ant" and demos.backend == "spring"
    assert demos.obs.shape == (24, 101, 27) and demos.actions.shape == (24, 100, 8) and demos.n_train == 16
    train, held = demos.split()
    assert train.obs.shape[0] == 16 and held.obs.shape[0] == 8
    assert np.abs(demos.actions).max() <= 1.0
    # Ant's reward is forward velocity + 1 per healthy step - control/contact costs: over 100 steps
    # standing still earns at most ~100, so returns well above that mean the expert walks forward.
    assert demos.returns.mean() > 200 and np.median(held.returns) > 200


@pytest.mark.slow
def test_ild_reduces_chamfer_loss_and_trajectory_error():
    demos = Demos.load("reacher")
    # The same settings as experiments/ild_brax_reacher.yaml (one compiled update for both).
    ild = ILD(demos, ILDConfig(), seed=0)
    before = ild.evaluate()
    losses = [ild.update()["losses/chamfer"] for _ in range(40)]
    after = ild.evaluate()
    assert np.isfinite(losses).all()
    assert after["ild/chamfer"] < 0.9 * before["ild/chamfer"]
    assert after["ild/trajectory_error"] < 0.9 * before["ild/trajectory_error"]


@pytest.mark.slow
def test_ild_agent_runs_through_the_runner(tmp_path):
    from rewardlab.config import parse_config
    from rewardlab.experiment.runner import run_experiment

    cfg = parse_config({
        "name": "ild_runner_test",
        "env": {"id": "brax/reacher", "n_envs": 1, "kwargs": {"backend": "positional", "episode_length": 50}},
        "agent": {"name": "ild", "params": {"demos": "reacher", "eval_every": 5}},
        "train": {"total_steps": 15 * 16 * 50},
        "eval": {"every_steps": 10_000, "episodes": 2, "final_episodes": 2, "n_envs": 1},
        "log": {"tensorboard": False, "checkpoint_every": 10_000},
    })
    run = run_experiment(cfg, out=tmp_path).run_dir
    final = json.loads((run / "seed_0" / "final_eval.json").read_text())
    assert final["episodes"] == 2 and final["episode_length_mean"] == 50 and np.isfinite(final["true_return_mean"])
    rows = [json.loads(x) for x in (run / "seed_0" / "metrics.jsonl").read_text().splitlines()]
    chamfer = [r["ild/chamfer"] for r in rows if "ild/chamfer" in r]
    assert len(chamfer) == 3 and chamfer[-1] < chamfer[0]
    assert (run / "seed_0" / "checkpoint" / "ild.pkl").is_file()
