"""The ``bc`` / ``ra_bc`` runner agents: params, weights on the demo styles, and RA-BC beating BC."""

from __future__ import annotations

import numpy as np
import pytest

import rewardlab
from rewardlab.agents.bc import make_bc, make_ra_bc
from rewardlab.errors import ConfigError

MIX = {"clean": 10, "slow": 10, "noisy": 10, "detour": 10, "fail": 20}


def test_bc_params_are_checked():
    with pytest.raises(ConfigError, match="agent.params.chunk"):
        make_bc(None, gamma=0.99, seed=0, params={"chunk": 4})  # an ra_bc-only parameter
    with pytest.raises(ConfigError, match="sloppy"):
        make_bc(None, gamma=0.99, seed=0, params={"demos": {"sloppy": 3}})
    with pytest.raises(ConfigError, match="agent.params.kappa"):
        make_ra_bc(None, gamma=0.99, seed=0, params={"kappa": -1})
    with pytest.raises(ConfigError, match="no demos of styles"):
        make_bc(None, gamma=0.99, seed=0, params={"demos": {"clean": 1}, "styles": ["fail"]})


def test_bc_refuses_another_env():
    venv = rewardlab.make_vec("CartPole-v1", 1)
    with pytest.raises(ConfigError, match="manipulation/ReachSequence-v0"):
        make_bc(venv, gamma=0.99, seed=0, params={"demos": {"clean": 1}})


def test_ra_bc_checkpoint_resume(tmp_path):
    agent = make_bc(None, gamma=0.99, seed=0, params={"demos": {"clean": 1}, "batch_size": 8, "log_every": 4})
    agent.learn(8, callback=None)
    agent.save(tmp_path)
    other = make_bc(None, gamma=0.99, seed=0, params={"demos": {"clean": 1}, "batch_size": 8})
    other.load(tmp_path)
    obs = np.zeros((3, 10), np.float32)
    assert other.num_timesteps == 8
    np.testing.assert_allclose(other.act(obs), agent.act(obs))


@pytest.fixture
def one_torch_thread():
    """One torch thread for this test only: the thread count changes float reductions, and tests
    after this one pin numbers (tests/agents/test_ppo.py)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_ra_bc_beats_bc_on_mixed_demos(one_torch_thread):
    """Same 60 mixed-quality demos, same seed and steps; RA-BC's weights must (1) give failing demos
    a lower mean weight than clean ones and (2) give a higher success rate on 50 fresh episodes."""
    from rewardlab.experiment.evaluate import evaluate

    params = {"demos": MIX, "log_every": 2000}
    ra = make_ra_bc(None, gamma=0.99, seed=0, params={**params, "sarm_styles": ["clean", "slow", "noisy"]})
    bc = make_bc(None, gamma=0.99, seed=0, params=params)
    # Weight per demo style (the pairs are in demo order, styles in STYLES order).
    from rewardlab.imitation.sarm_demos import generate_demos

    ds = generate_demos(MIX, seed=0)
    i, per_style = 0, {}
    for d in ds.demos:
        per_style.setdefault(d.style, []).append(ra.weights[i:i + len(d.actions)].mean())
        i += len(d.actions)
    assert np.mean(per_style["fail"]) < np.mean(per_style["clean"]) - 0.3
    successes = {}
    for name, agent in (("ra_bc", ra), ("bc", bc)):
        agent.learn(2000, callback=None)
        venv = rewardlab.make_vec("manipulation/ReachSequence-v0", 10)
        res = evaluate(lambda o, det, a=agent: a.act(o), venv, 50, seed=10_000)
        successes[name] = res.success_rate
    print(successes)
    assert successes["ra_bc"] >= successes["bc"] + 0.1, successes
