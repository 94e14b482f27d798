"""ILD: Chamfer distance, running normalisation, per-step gradient normalisation, demos, the BC warm
start, learning, and the runner's ``ild`` agent."""

from __future__ import annotations

import json

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("brax")

import jax.numpy as jnp  # noqa: E402

from rewardlab.errors import ConfigError  # noqa: E402
from rewardlab.imitation.ild import (  # noqa: E402
    ILD,
    Demos,
    ILDConfig,
    chamfer_distance,
    clip_gradient,
    make_ild,
    norm_apply,
    norm_init,
    norm_update,
)


def test_chamfer_distance_properties():
    rng = np.random.default_rng(0)
    a, b = jnp.asarray(rng.normal(size=(7, 3))), jnp.asarray(rng.normal(size=(5, 3)))
    assert float(chamfer_distance(a, a)) == pytest.approx(0.0, abs=1e-5)
    assert float(chamfer_distance(a, b)) == pytest.approx(float(chamfer_distance(b, a)), rel=1e-6)
    # order within a trajectory does not matter, only the set of visited states
    assert float(chamfer_distance(a[::-1], b)) == pytest.approx(float(chamfer_distance(a, b)), rel=1e-6)
    # two-way: a subset of the expert's states is still penalised for the states it misses
    assert float(chamfer_distance(a[:1], a)) > 0.1
    # RMS (the reference's) is the L2 distance divided by sqrt(dim) when one pair is nearest either way
    x, y = jnp.zeros((1, 4)), jnp.full((1, 4), 2.0)
    assert float(chamfer_distance(x, y)) == pytest.approx(2 * 2.0, rel=1e-5)
    assert float(chamfer_distance(x, y, "l2")) == pytest.approx(2 * 4.0, rel=1e-5)


def test_running_normaliser_matches_batch_statistics():
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(3.0, 2.0, size=(50, 4)), rng.normal(3.0, 2.0, size=(30, 4))
    s = norm_update(norm_update(norm_init(4), jnp.asarray(x1)), jnp.asarray(x2))
    full = np.concatenate([x1, x2])
    assert float(s.count) == 80
    np.testing.assert_allclose(s.mean, full.mean(0), rtol=1e-5)
    # Brax's normaliser: the running sum of squared deviations starts at 1
    np.testing.assert_allclose(s.var_sum - 1.0, ((full - full.mean(0)) ** 2).sum(0), rtol=1e-4)
    z = norm_apply(s, jnp.asarray(full))
    assert float(jnp.abs(z.mean(0)).max()) < 1e-4 and float(jnp.abs(z.std(0) - 1).max()) < 0.02
    assert float(norm_apply(s, jnp.full((1, 4), 1e6)).max()) == 5.0  # clipped to ±5


def test_clip_gradient_rescales_only_large_cotangents():
    big = jax.grad(lambda x: jnp.sum(clip_gradient({"p": x, "q": x}, 1.0)["p"] * 100.0))(jnp.ones(3))
    assert float(jnp.linalg.norm(big)) == pytest.approx(1.0, rel=1e-4)
    small = jax.grad(lambda x: jnp.sum(clip_gradient(x, 1.0) * 0.01))(jnp.ones(3))
    np.testing.assert_allclose(small, 0.01, rtol=1e-5)
    # forward is the identity
    np.testing.assert_array_equal(clip_gradient(jnp.arange(3.0), 0.3), jnp.arange(3.0))


def test_defaults_are_the_reference_settings_and_errors_are_clear():
    cfg = ILDConfig()
    assert (cfg.lr, cfg.lr_end, cfg.truncation, cfg.step_grad_clip, cfg.max_grad_norm) == (1e-3, 1e-5, 10, 1.0, 0.3)
    assert (cfg.hidden, cfg.activation, cfg.stochastic, cfg.match, cfg.bc_warmstart) == (
        (512, 256), "swish", True, "state", 1000)
    assert cfg.normalize and cfg.tanh_loss
    with pytest.raises(ConfigError, match=r"agent\.params\.match: 'pixels' is invalid for agent 'ild'; allowed: one of "
                                          r"state, obs"):
        make_ild(None, gamma=0.99, seed=0, params={"match": "pixels"})
    with pytest.raises(ConfigError, match=r"agent\.params\.bc_warmstart: -1 is invalid"):
        make_ild(None, gamma=0.99, seed=0, params={"bc_warmstart": -1})


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


# Small settings shared by the slow tests (one compiled update for both): 4 Reacher demos x 25 steps.
SMALL = {"hidden": (64, 64), "n_demos": 4, "horizon": 25}


@pytest.mark.slow
def test_ild_warm_start_is_bc_and_updates_cut_the_state_chamfer():
    from rewardlab.imitation.bc import BCConfig, train_bc

    demos = Demos.load("reacher")
    # the reset keys and actions re-simulate the demos (the matched simulator states come from this replay)
    ild = ILD(demos, ILDConfig(bc_warmstart=0, **SMALL), seed=0)
    assert ild.replay_gap < 1e-3 and ild.expert_states.shape == (4, 26, 3 * 13)
    before = ild.evaluate()
    out = [ild.update(progress=u / 30) for u in range(30)]
    after = ild.evaluate()
    assert all(np.isfinite(o["losses/chamfer"]) for o in out)
    assert out[0]["losses/lr"] == pytest.approx(1e-3) and out[-1]["losses/lr"] < 1e-4  # linear decay
    assert out[0]["losses/loss"] == pytest.approx(np.tanh(out[0]["losses/chamfer"]), rel=1e-5)
    assert after["ild/chamfer"] < 0.9 * before["ild/chamfer"]
    # the warm start is BC: same seed, same settings, same demos (all 50 steps), same policy
    warm = ILD(demos, ILDConfig(bc_warmstart=100, hidden=(64, 64), n_demos=4), seed=3)
    logs = warm.warm_start()
    assert logs["losses/bc_last"] < 0.5 * logs["losses/bc_first"]
    bc, _ = train_bc(demos, BCConfig(steps=100, hidden=(64, 64)), seed=3, n_demos=4)
    for (w1, b1), (w2, b2) in zip(warm.actor.params, bc.params, strict=True):
        np.testing.assert_allclose(w1, w2, atol=1e-5)
        np.testing.assert_allclose(b1, b2, atol=1e-5)


@pytest.mark.slow
def test_ild_agent_runs_through_the_runner(tmp_path):
    from rewardlab.config import parse_config
    from rewardlab.experiment.runner import run_experiment

    cfg = parse_config({
        "name": "ild_runner_test",
        "env": {"id": "brax/reacher", "n_envs": 1, "kwargs": {"backend": "positional", "episode_length": 50}},
        "agent": {"name": "ild", "params": {"demos": "reacher", "eval_every": 5, "bc_warmstart": 0, **SMALL}},
        "train": {"total_steps": 15 * 4 * 25},
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
