"""OPRL (``rewardlab.shaping.oprl``): the trajectory DPO loss (gradient sign on a hand-built pair,
pairs only within a group), the gradient reaches the PRM's parameters, step rewards sum to β
times the trajectory log-ratio, batch normalisation, rewards from the PRM before its update,
A_S against a hand computation, the agent and config checks, checkpoints, and (slow) that OPRL
on a sparse task beats a random policy by a margin measured in the same test."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import rewardlab
from rewardlab import results as R
from rewardlab.agents.ppo import make_ppo
from rewardlab.agents.rloo import make_rloo
from rewardlab.config import load_config
from rewardlab.config.agents import check_term_hooks
from rewardlab.core.terms import build_stack
from rewardlab.errors import ConfigError, InvalidArgument
from rewardlab.experiment.evaluate import evaluate
from rewardlab.experiment.runner import run_experiment
from rewardlab.shaping.oprl import OPRLReward, trajectory_dpo_loss

BETA = 0.05


def grid_agent(seed=0, n_envs=8, group_size=4, **term_params):
    """rloo + oprl on a 3x3 GridWorld (+1 at the far corner, 6 steps): random play mixes outcomes."""
    stack = build_stack(["env", {"name": "oprl", "params": {"beta": BETA, **term_params}}])
    venv = rewardlab.make_vec("toy/GridWorld-v0", n_envs, reward=stack, size=3, max_episode_steps=6)
    agent = make_rloo(venv, gamma=1.0, seed=seed, params={"group_size": group_size, "n_steps": 6})
    return agent, stack.terms[1]


def a_batch(agent):
    """Collect one group batch (as ``learn`` does) and return its rollout; it holds a pair."""
    agent.learn(0)
    for _ in range(20):
        agent.collect_rollout()
        _, _, rollout = agent.compute_advantages()
        won = rollout.episodes.won()
        if any(won[g == rollout.episodes.group].any() and (~won[g == rollout.episodes.group]).any()
               for g in np.unique(rollout.episodes.group)):
            return rollout
    raise AssertionError("no batch with a (success, failure) pair")


def perturb(term, seed=0, scale=0.3):
    """Move the PRM away from the agent's policy so its log-ratios are not all zero."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in term.prm.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


# -- the DPO loss -------------------------------------------------------------------------------
def test_dpo_gradient_raises_the_preferred_trajectory_and_lowers_the_other():
    # Episode 0 (won): steps 0-2; episode 1 (lost): steps 3-4; one group.
    scores = torch.tensor([0.3, -0.1, 0.1, 0.2, 0.4], requires_grad=True)
    loss, pairs, acc = trajectory_dpo_loss(scores, torch.tensor([0, 0, 0, 1, 1]), torch.tensor([True, False]),
                                           torch.tensor([0, 0]))
    q_win, q_lose = 0.1, 0.3
    assert pairs == 1 and acc == 0.0
    assert loss.item() == pytest.approx(-np.log(1 / (1 + np.exp(-(q_win - q_lose)))), rel=1e-6)
    loss.backward()
    sig = 1 / (1 + np.exp(q_win - q_lose))  # σ(−margin)
    np.testing.assert_allclose(scores.grad.numpy(), [-sig / 3] * 3 + [sig / 2] * 2, rtol=1e-5)
    # A descent step raises the preferred episode's score and lowers the other's.
    with torch.no_grad():
        new = scores - 0.5 * scores.grad
    assert new[:3].mean() > q_win and new[3:].mean() < q_lose


def test_pairs_only_within_a_group():
    ep = torch.tensor([0, 1, 2, 3, 4, 5])  # one step per episode
    scores = torch.tensor([1.0, 0.0, 2.0, 0.5, -1.0, 3.0])
    group = torch.tensor([0, 0, 1, 1, 2, 2])
    # group 0: won/lost -> 1 pair; group 1: both won -> none; group 2: lost/won -> 1 pair.
    won = torch.tensor([True, False, True, True, False, True])
    loss, pairs, _ = trajectory_dpo_loss(scores, ep, won, group)
    assert pairs == 2
    expected = np.mean([np.log1p(np.exp(-(1.0 - 0.0))), np.log1p(np.exp(-(3.0 - (-1.0))))])
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # Winners and losers only in different groups: no pair at all.
    none, pairs, _ = trajectory_dpo_loss(scores, ep, torch.tensor([True, True, False, False, True, True]), group)
    assert none is None and pairs == 0


# -- the PRM inside an agent --------------------------------------------------------------------
def test_prm_is_a_copy_of_the_agent_policy_with_its_own_weights():
    agent, term = grid_agent()
    for (name, p), q in zip(agent.policy.named_parameters(), term.prm.parameters(), strict=True):
        assert torch.equal(p, q) and p.data_ptr() != q.data_ptr(), name
    assert term.opt.param_groups[0]["lr"] == pytest.approx(2 * agent.cfg.learning_rate)


def test_the_gradient_reaches_the_prm_and_only_the_prm():
    agent, term = grid_agent()
    rollout = a_batch(agent)
    perturb(term)
    loss, pairs, _, _ = term.prm_loss(rollout)
    assert pairs > 0 and loss.grad_fn is not None  # no detach between the PRM and the loss
    grads = torch.autograd.grad(loss, [p for p in term.prm.actor.parameters()])
    assert sum(float(g.abs().sum()) for g in grads) > 0
    policy_before = [p.detach().clone() for p in agent.policy.parameters()]
    prm_before = [p.detach().clone() for p in term.prm.parameters()]
    metrics = term.update(rollout)
    assert metrics["pairs"] == pairs and metrics["grad_norm"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(prm_before, term.prm.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(policy_before, agent.policy.parameters(), strict=True))
    after, _, _, _ = term.prm_loss(rollout)
    assert after.item() < loss.item()  # the step lowered the DPO loss on this batch


def test_step_rewards_sum_to_beta_times_the_trajectory_log_ratio():
    agent, term = grid_agent(normalise=False)
    rollout = a_batch(agent)
    perturb(term)
    r = term.step_rewards(rollout)
    ep = rollout.episodes
    obs, actions = rollout.obs, rollout.actions
    with torch.no_grad():
        for i in range(ep.active.shape[1]):
            log_prm = log_old = 0.0
            for t in range(ep.lengths[i]):  # step by step, one observation at a time
                o = torch.from_numpy(obs[t, i][None].copy())
                a = torch.tensor([int(actions[t, i])])
                log_prm += float(term.prm(o, a)[0])
                log_old += float(agent.policy(o, a)[0])  # the rollout policy (no update yet)
            assert r[:, i].sum() == pytest.approx(BETA * (log_prm - log_old), rel=1e-4, abs=1e-6)
            assert (r[ep.lengths[i]:, i] == 0).all()


def test_batch_normalisation_divides_by_the_largest_step_reward():
    agent, term = grid_agent(normalise=False)
    rollout = a_batch(agent)
    perturb(term)
    raw = term.step_rewards(rollout)
    term.normalise = True
    normed = term.step_rewards(rollout)
    active = rollout.episodes.active
    scale = np.abs(raw[active]).max()
    assert scale > 0
    np.testing.assert_allclose(normed, raw / (scale + 1e-6), rtol=1e-6)
    assert np.abs(normed[active]).max() == pytest.approx(1.0, abs=1e-5)
    assert (normed[~active] == 0).all()


def test_step_advantages_are_the_leave_one_out_of_the_groups_steps():
    agent, term = grid_agent(step_weight=0.5)
    rollout = a_batch(agent)
    perturb(term)
    extra = term.extra_advantages(rollout)
    r, ep = term.last_step_rewards, rollout.episodes
    steps = [(t, i) for t, i in zip(*np.nonzero(ep.active), strict=True)]
    for t, i in steps:
        others = [r[u, j] for u, j in steps if ep.group[j] == ep.group[i] and (u, j) != (t, i)]
        assert extra[t, i] == pytest.approx(0.5 * (r[t, i] - np.mean(others)), rel=1e-4, abs=1e-6)
    assert (extra[~ep.active] == 0).all()


def test_advantages_are_outcome_plus_weighted_step_advantages():
    agent, term = grid_agent(step_weight=1.0)
    agent.learn(0)
    perturb(term)
    agent.collect_rollout()
    adv, _, rollout = agent.compute_advantages()
    ep = rollout.episodes
    from rewardlab.core.groups import group_relative

    a_e = np.where(ep.active, group_relative(ep.returns, ep.group)[None, :], 0.0)
    np.testing.assert_allclose(adv.numpy(), a_e + term.extra_advantages(rollout), rtol=1e-5, atol=1e-6)


def test_rewards_come_from_the_prm_before_it_learns_from_the_batch():
    agent, term = grid_agent()
    agent.learn(0)
    perturb(term)
    before = copy.deepcopy(term.prm.state_dict())
    seen = {}
    update = term.update

    def spy(rollout):
        seen["metrics"] = update(rollout)
        return seen["metrics"]

    term.update = spy
    for _ in range(20):  # iterations until one batch held a pair (and the PRM was updated)
        before = copy.deepcopy(term.prm.state_dict())
        agent.learn(agent.num_timesteps + 1)
        if seen["metrics"]["pairs"] > 0:
            break
    assert seen["metrics"]["pairs"] > 0
    used = term.last_step_rewards
    _, _, rollout = agent.compute_advantages()  # the same batch again, with the updated PRM
    after = term.step_rewards(rollout)
    term.prm.load_state_dict(before)
    pre = term.step_rewards(rollout)
    np.testing.assert_allclose(used, pre, rtol=1e-6, atol=1e-9)
    assert not np.allclose(used, after)


def test_oprl_needs_a_group_rollout_agent():
    venv = rewardlab.make_vec("toy/GridWorld-v0", 4, reward=build_stack(["env", "oprl"]), size=3)
    with pytest.raises(InvalidArgument, match=r"oprl compares episodes .* needs an agent with group rollouts "
                                              r"\(rloo or text_rloo\); got PPO"):
        make_ppo(venv, gamma=0.99, seed=0, params={})
    with pytest.raises(ConfigError, match=r"term 'oprl' learns through update\(\); agent 'sb3_ppo' never calls it"):
        check_term_hooks("sb3_ppo", [{"name": "oprl"}])
    check_term_hooks("rloo", [{"name": "oprl"}])


@pytest.mark.parametrize(("params", "match"), [
    ({"beta": 0}, "beta = 0 is invalid"), ({"baseline": "mean"}, "allowed: one of rloo, grpo"),
    ({"learning_rate": -1.0}, "learning_rate = -1.0"), ({"normalise": "yes"}, "normalise = 'yes'"),
])
def test_bad_params_are_refused(params, match):
    with pytest.raises(InvalidArgument, match=match):
        OPRLReward(**params)


def test_prm_resumes_with_the_agent_checkpoint(tmp_path):
    agent, term = grid_agent()
    agent.learn(400)
    assert term._n_updates > 0
    agent.save(tmp_path)
    other, other_term = grid_agent()
    other.load(tmp_path)
    for (name, p), q in zip(term.prm.named_parameters(), other_term.prm.parameters(), strict=True):
        assert torch.equal(p, q), name
    assert other_term._n_updates == term._n_updates


# -- the experiment files and the report script ------------------------------------------------
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["oprl_swe", "oprl_alfworld", "oprl_minihack_keyroom"])
def test_experiment_files_are_valid(name):
    cfg, _ = load_config(REPO / "experiments" / f"{name}.yaml")
    assert cfg.agent.name in ("rloo", "text_rloo") and [t.name for t in cfg.reward.terms] == ["env", "oprl"]
    assert len(cfg.train.seeds) >= 5


def test_swe_experiment_runs_through_the_runner_and_the_report_script(tmp_path):
    tiny = ["train.total_steps=200", "train.seeds=[0]", "eval.every_steps=100", "eval.episodes=4",
            "eval.final_episodes=4", "log.checkpoint_every=1000"]
    for name, extra in (("oprl", []), ("rloo", ["reward.terms=[env]"])):
        cfg, _ = load_config(REPO / "experiments" / "oprl_swe.yaml", [*tiny, *extra])
        run_experiment(cfg, out=tmp_path / name)
    spec = importlib.util.spec_from_file_location("oprl_report", REPO / "scripts" / "oprl_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    runs = [R.load_runs(tmp_path / n, name=n) for n in ("oprl", "rloo")]
    lines = module.report(runs)
    assert lines[2].startswith("| oprl | 1 | ") and "(baseline)" in lines[2]
    assert lines[3].startswith("| rloo | 1 | ")
    assert module.plot(runs, tmp_path / "curves.png", "tiny").stat().st_size > 5000
    metrics = R.load_runs(tmp_path / "oprl").keys("reward_terms/oprl/")
    assert "reward_terms/oprl/step_reward_scale" in metrics


# -- learning -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_oprl_beats_a_random_policy_on_a_sparse_task():
    """6x6 GridWorld, +1 only at the far corner (10 moves away), 20 steps: OPRL on rloo must
    beat a uniformly random policy's success rate, measured here, by 0.5."""
    def make_env(n, reward=None):
        return rewardlab.make_vec("toy/GridWorld-v0", n, reward=reward, size=6, max_episode_steps=20)

    stack = build_stack(["env", {"name": "oprl"}])
    agent = make_rloo(make_env(16, stack), gamma=1.0, seed=0,
                      params={"group_size": 8, "n_steps": 20, "learning_rate": 1e-3, "n_epochs": 2})
    probe = make_env(4)
    space = probe.single_action_space
    rng = np.random.default_rng(0)
    random = evaluate(lambda obs, det: rng.integers(space.n, size=len(obs)), probe, 200, seed=1).mean_return
    agent.learn(60_000, None)
    trained = evaluate(agent.act, probe, 200, seed=1, deterministic=False).mean_return
    assert term_updates(stack) > 0
    assert trained >= random + 0.5, (trained, random)


def term_updates(stack) -> int:
    return stack.terms[1]._n_updates
