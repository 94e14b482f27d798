"""G-RA gate, VeRPO weighted test reward, GDPO group normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.config import RewardConfig
from rewardlab.core.stack import RewardStack, group_advantages
from rewardlab.core.terms import Term
from rewardlab.core.transition import Transition
from rewardlab.errors import ConfigError, InvalidArgument, TermOutputError
from rewardlab.shaping.basic import EnvReward, InfoComponent, InfoSignal
from rewardlab.shaping.gated import GatedAccumulation
from rewardlab.shaping.verpo import TestDifficulty, VerpoReward, corpus_pass_counts


class Const(Term):
    def __init__(self, name, value):
        self.name, self.value = name, value

    def __call__(self, t):
        return np.full(t.num_envs, self.value, np.float32)


def tr(env_r, done, ids=None, info=None):
    n = len(env_r)
    return Transition(None, None, None, np.asarray(env_r, float), np.asarray(done, bool), np.zeros(n, bool),
                      info or {}, None if ids is None else np.asarray(ids))


def gated_stack(mode="episode", threshold=0.5):
    stack = RewardStack([EnvReward(), Const("bonus", 0.25)],
                        gate=GatedAccumulation("env", ["bonus"], threshold=threshold, mode=mode))
    stack.bind(3)
    return stack


def test_episode_gate_releases_only_on_success_and_parts_sum():
    stack = gated_stack()
    totals = []
    for step in range(4):
        done = [step == 3] * 3
        env_r = [1.0 if step == 3 else 0.0, 0.0, 0.0]
        total, parts = stack(tr(env_r, done))
        assert np.allclose(total, parts["env"] + parts["bonus"])
        totals.append(total)
    totals = np.array(totals)
    assert np.allclose(totals[:3], 0.0)  # held back while the episode runs
    assert np.allclose(totals[3], [1.0 + 4 * 0.25, 0.0, 0.0])  # env 0 solved: 4 bonuses released


def test_episode_gate_resets_between_episodes_and_handles_env_subsets():
    stack = gated_stack()
    stack(tr([0.0, 0.0], [False, False], ids=[0, 2]))
    stack.reset(np.array([0]))  # env 0's episode was cut (e.g. an env reset): pending dropped
    total, parts = stack(tr([1.0, 1.0], [True, True], ids=[0, 2]))
    assert np.allclose(parts["bonus"], [0.25, 0.5])


def test_running_gate_counts_after_outcome_clears():
    stack = gated_stack(mode="running")
    t1, p1 = stack(tr([0.0, 1.0, 0.0], [False] * 3))
    assert np.allclose(p1["bonus"], [0.0, 0.25, 0.0])
    t2, p2 = stack(tr([0.0, 0.0, 0.0], [False] * 3))
    assert np.allclose(p2["bonus"], [0.0, 0.25, 0.0])


def test_ungated_stack_pays_step_rewards_without_success():
    stack = RewardStack([EnvReward(), Const("bonus", 0.25)])
    total, _ = stack(tr([0.0, 0.0, 0.0], [True] * 3))
    assert np.allclose(total, 0.25)


def test_gate_errors():
    with pytest.raises(InvalidArgument, match="not terms of the stack"):
        RewardStack([EnvReward()], gate=GatedAccumulation("env", ["missing"]))
    with pytest.raises(InvalidArgument, match="cannot gate itself"):
        GatedAccumulation("env", ["env"])
    with pytest.raises(InvalidArgument, match="mode"):
        GatedAccumulation("env", ["x"], mode="sometimes")
    with pytest.raises(InvalidArgument, match="non-empty list"):
        GatedAccumulation("env", "x")


def test_reward_config_builds_gate_and_reports_bad_gate():
    cfg = RewardConfig(terms=["env", {"name": "info_signal", "as": "loc", "params": {"key": "k"}}],
                       gate={"outcome": "env", "gated": ["loc"], "threshold": 1.0})
    stack = cfg.build_stack(0.99)
    assert isinstance(stack.gate, GatedAccumulation) and stack.gate.threshold == 1.0
    bad = RewardConfig(terms=["env"], gate={"outcome": "env", "gated": ["nope"]})
    with pytest.raises(ConfigError, match="not terms of the stack"):
        bad.build_stack(0.99)
    with pytest.raises(ConfigError, match="unexpected keyword"):
        RewardConfig(terms=["env"], gate={"outcome": "env", "gated": ["env2"], "tau": 1}).build_stack(0.99)


def test_info_signal_errors_name_the_key():
    with pytest.raises(InvalidArgument, match="info_signal needs info\\['missing'\\]"):
        InfoSignal("missing")(tr([0.0], [False]))


def test_info_signal_zeroes_missing_entries_info_component_requires_them():
    info = {"k": np.array([2.0, 5.0]), "_k": np.array([True, False])}
    assert InfoSignal("k", reward=0.5)(tr([0.0, 0.0], [False, False], info=info)).tolist() == [1.0, 0.0]
    assert InfoComponent.name == "info_component"
    with pytest.raises(TermOutputError, match="info_component: info\\['k'\\] is missing for envs \\[1\\]"):
        InfoComponent("k")(tr([0.0, 0.0], [False, False], info=info))


def _results(*pairs):
    arr = np.empty(len(pairs), dtype=object)
    arr[:] = list(pairs)
    return {"test_results": arr}


def test_verpo_weights_rare_tests_more_and_scores_partial_success():
    d = TestDifficulty({"easy": (95, 100), "hard": (5, 100)}, floor=0.05)
    assert d.weight("hard") > d.weight("easy")
    assert d.score([("easy", True), ("hard", False)]) < d.score([("easy", False), ("hard", True)])
    assert d.score([("easy", True), ("hard", True)]) == pytest.approx(1.0)


def test_verpo_final_pays_last_run_at_episode_end():
    term = VerpoReward(prior="uniform", mode="final", online=False)
    term.bind(1)
    r1 = term(tr([0.0], [False], info=_results((("a", True), ("b", False)))))
    r2 = term(tr([0.0], [False], info=_results(())))
    r3 = term(tr([0.0], [True], info=_results(())))
    assert r1[0] == 0.0 and r2[0] == 0.0 and r3[0] == pytest.approx(0.5)


def test_verpo_delta_telescopes_to_last_score():
    term = VerpoReward(prior="uniform", mode="delta", online=False)
    term.bind(1)
    runs = [(("a", True), ("b", False)), (("a", False), ("b", False)), (("a", True), ("b", True))]
    total = sum(term(tr([0.0], [i == 2], info=_results(r)))[0] for i, r in enumerate(runs))
    assert total == pytest.approx(1.0)


def test_verpo_online_difficulty_moves():
    term = VerpoReward(prior="uniform", mode="final", online=True)
    term.bind(1)
    for _ in range(20):
        term(tr([0.0], [False], info=_results((("a", True), ("b", False)))))
    assert term.difficulty.weight("b") > term.difficulty.weight("a")


def test_corpus_prior_has_varied_difficulty():
    counts = corpus_pass_counts()
    rates = np.array([p / n for p, n in counts.values()])
    assert len(counts) > 100 and rates.min() < 0.8 and rates.max() == 1.0


def test_group_advantages_sum_is_grpo_and_gdpo_is_scale_free():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, (16, 8)).astype(float)
    b = rng.random((16, 8))
    s = group_advantages([a, b], [1.0, 1.0], "sum")
    # The GDPO reference's z-score: unbiased std, eps 1e-4
    ref = (a + b - (a + b).mean(1, keepdims=True)) / ((a + b).std(1, keepdims=True, ddof=1) + 1e-4)
    assert np.allclose(s, ref)
    g1 = group_advantages([a, b], [1.0, 1.0], "gdpo")
    g2 = group_advantages([a, 10.0 * b], [1.0, 1.0], "gdpo")
    assert np.allclose(g1, g2, atol=1e-3)  # each term normalised in its group: scale does not matter
    assert not np.allclose(s, group_advantages([a, 10.0 * b], [1.0, 1.0], "sum"))
    assert abs(g1.mean()) < 1e-6 and g1.std(ddof=1) == pytest.approx(1.0, abs=1e-3)  # batch-normalised


def test_gdpo_keeps_reward_combinations_apart():
    """Two binary terms over many random groups: GDPO separates more distinct combinations."""
    rng = np.random.default_rng(1)
    a = (rng.random((500, 4)) < 0.2).astype(float)
    b = (rng.random((500, 4)) < 0.6).astype(float)
    collapsed = {"sum": 0, "gdpo": 0}
    for mode in collapsed:
        adv = group_advantages([a, b], [1.0, 1.0], mode)
        for g in range(500):
            combos = {}
            for i in range(4):
                combos.setdefault(round(adv[g, i], 6), set()).add((a[g, i], b[g, i]))
            collapsed[mode] += sum(len(v) > 1 for v in combos.values())
    assert collapsed["gdpo"] < collapsed["sum"]


def test_stack_group_advantages_and_errors():
    stack = RewardStack([EnvReward(), Const("bonus", 1.0)], normalize="gdpo")
    adv = stack.group_advantages({"env": np.eye(4)[:1], "bonus": np.ones((1, 4))})
    assert adv.shape == (1, 4)
    with pytest.raises(InvalidArgument, match="no returns"):
        stack.group_advantages({"env": np.ones((1, 4))})
    with pytest.raises(InvalidArgument, match="normalize"):
        RewardStack([EnvReward()], normalize="batchnorm")
    with pytest.raises(InvalidArgument, match="shape"):
        group_advantages([np.ones(4)], [1.0])
