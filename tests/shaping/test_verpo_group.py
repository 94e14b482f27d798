"""VeRPO's group prior (``verpo`` with ``prior: group``, the default): test pass rates estimated
within each group of episodes of one task, on hand-computed groups and through ``rloo`` on
``swe/PatchSelect-v0``; the per-test priors stay options; errors name the fix."""

from __future__ import annotations

import numpy as np
import pytest

import rewardlab
from rewardlab.agents.ppo import make_ppo
from rewardlab.agents.rloo import make_rloo
from rewardlab.config.agents import check_term_hooks
from rewardlab.core import RewardStack
from rewardlab.core.terms import Term
from rewardlab.errors import ConfigError, InvalidArgument
from rewardlab.shaping.basic import EnvReward
from rewardlab.shaping.verpo import VerpoReward, group_scores

A, B, C = "t_a", "t_b", "t_c"


def test_group_scores_of_two_hand_computed_groups():
    runs = [
        ((A, True), (B, False), (C, False)),   # group 0
        ((A, True), (B, True), (C, False)),
        ((A, False), (B, False), (C, False)),
        ((A, True), (B, True), (C, True)),     # group 1
        (),                                    # ran no tests: passes none, still counts in the rate
    ]
    scores, rates = group_scores(runs, np.array([0, 0, 0, 1, 1]), floor=0.05)
    # group 0: rho = (2/3, 1/3, 0) -> w = (0.3833, 0.7167, 1.05), sum 2.15
    assert rates[0] == pytest.approx({A: 2 / 3, B: 1 / 3, C: 0.0})
    w0 = np.array([1 - 2 / 3, 1 - 1 / 3, 1.0]) + 0.05
    # group 1: rho = (1/2, 1/2, 1/2) -> equal weights
    assert rates[1] == pytest.approx({A: 0.5, B: 0.5, C: 0.5})
    expected = [w0[0] / w0.sum(), (w0[0] + w0[1]) / w0.sum(), 0.0, 1.0, 0.0]
    np.testing.assert_allclose(scores, expected)
    # the same run scores differently in another group: difficulty is per problem and group
    other, _ = group_scores([runs[0], runs[3]], np.array([0, 0]), floor=0.05)
    assert other[0] == pytest.approx(0.05 / (0.05 + 0.55 + 0.55)) and other[0] != pytest.approx(scores[0])


class RecordTests(Term):
    """Records each env's test runs (a plain term paying nothing), for the hand computation."""

    name = "record_tests"

    def __init__(self):
        self.steps = []

    def __call__(self, t):
        res, mask = t.info["test_results"], t.info.get("_test_results")
        self.steps.append([tuple(res[r]) if (mask is None or mask[r]) and res[r] is not None else ()
                           for r in range(t.num_envs)])
        return np.zeros(t.num_envs, np.float32)


def swe_rloo(verpo_params, weight=0.5, seed=0, baseline="rloo"):
    recorder, verpo = RecordTests(), VerpoReward(**verpo_params)
    venv = rewardlab.make_vec("swe/PatchSelect-v0", 8, reward=RewardStack(
        [EnvReward(), verpo, recorder], weights=[1.0, weight, 0.0]),
        split="train", max_steps=6, outcomes="shipped")
    agent = make_rloo(venv, gamma=1.0, seed=seed, params={"group_size": 4, "n_steps": 6, "baseline": baseline})
    return agent, recorder


def leave_one_out(x, groups):
    out = np.zeros_like(x)
    for i in range(len(x)):
        others = [x[j] for j in range(len(x)) if groups[j] == groups[i] and j != i]
        out[i] = x[i] - np.mean(others)
    return out


@pytest.mark.parametrize("baseline", ["rloo", "grpo"])
def test_group_prior_through_rloo_on_swe_matches_a_hand_computation(baseline):
    agent, recorder = swe_rloo({}, weight=0.5, seed=1, baseline=baseline)
    agent.learn(0)
    agent.collect_rollout()
    advantages, _, _ = agent.compute_advantages()
    ep = agent._episodes
    # each episode's last test run, from the recorder's own log of the batch's steps
    steps = recorder.steps[-agent._steps:]
    last = [()] * 8
    for t, row in enumerate(steps):
        for i in range(8):
            if row[i] and ep.active[t, i]:
                last[i] = row[i]
    assert sum(bool(r) for r in last) >= 4, "too few test runs to test anything; change the seed"
    scores = np.zeros(8)
    for g in (0, 1):
        members = range(4 * g, 4 * g + 4)
        tests = {name for i in members for name, _ in last[i]}
        w = {name: 1 - sum(dict(last[i]).get(name, False) for i in members) / 4 + 0.05 for name in tests}
        for i in members:
            scores[i] = sum(w[n] for n, ok in last[i] if ok) / sum(w.values()) if last[i] else 0.0
    assert np.ptp(scores) > 0
    if baseline == "rloo":
        expected = leave_one_out(ep.returns, ep.group) + 0.5 * leave_one_out(scores, ep.group)
    else:
        def z(x):
            out = np.zeros_like(x)
            for g in (0, 1):
                v = x[4 * g: 4 * g + 4]
                out[4 * g: 4 * g + 4] = (v - v.mean()) / (v.std(ddof=1) + 1e-6) if v.std() > 0 else 0.0
            return out
        expected = z(ep.returns) + 0.5 * z(scores)
    np.testing.assert_allclose(advantages.numpy(), np.where(ep.active, expected[None, :], 0.0), rtol=1e-4, atol=1e-5)
    assert agent.venv.stack.terms[1].update(None)["group_score"] == pytest.approx(scores.mean())


def test_group_prior_pays_nothing_per_step_and_the_corpus_prior_does():
    agent, _ = swe_rloo({}, seed=1)
    agent.learn(0)
    agent.collect_rollout()
    agent2, _ = swe_rloo({"prior": "corpus", "online": False}, seed=1)
    agent2.learn(0)
    agent2.collect_rollout()
    # the corpus prior pays its score at each episode's end: returns exceed the outcome alone
    assert (agent2._episodes.returns > agent2._episodes.won()).any()
    assert (agent._episodes.returns == agent._episodes.won()).all()


def test_group_prior_needs_a_group_agent_and_mode_final():
    venv = rewardlab.make_vec("swe/PatchSelect-v0", 2, reward=[{"name": "env"}, {"name": "verpo"}],
                              split="train", max_steps=6, outcomes="shipped")
    with pytest.raises(InvalidArgument, match=r"needs a group-relative agent \(rloo, text_rloo\); agent 'PPO' has no "
                                              r"groups: use prior 'corpus' with it"):
        make_ppo(venv, gamma=0.9, seed=0, params={"n_steps": 8})
    with pytest.raises(InvalidArgument, match=r"verpo mode 'delta' needs a per-test prior"):
        VerpoReward(mode="delta")
    with pytest.raises(InvalidArgument, match=r"verpo online applies to prior 'corpus' or 'uniform'"):
        VerpoReward(online=True)
    with pytest.raises(InvalidArgument, match=r"verpo prior must be one of group, corpus, uniform, got 'global'"):
        VerpoReward(prior="global")


def test_config_check_knows_which_priors_need_agent_hooks():
    with pytest.raises(ConfigError, match=r"term 'verpo' .*agent 'sb3_ppo' never"):
        check_term_hooks("sb3_ppo", [{"name": "verpo"}])
    check_term_hooks("sb3_ppo", [{"name": "verpo", "params": {"prior": "corpus"}}])  # pays through the reward
    check_term_hooks("rloo", [{"name": "verpo"}])
