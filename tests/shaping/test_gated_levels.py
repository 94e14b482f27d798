"""G-RA with more than two priority levels: a gate per level, a lower level pays only when every
higher level clears its threshold (episode and running modes), the YAML form, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.config import RewardConfig
from rewardlab.core.stack import RewardStack
from rewardlab.core.terms import Term
from rewardlab.core.transition import Transition
from rewardlab.errors import ConfigError, InvalidArgument
from rewardlab.shaping.basic import EnvReward
from rewardlab.shaping.gated import GatedAccumulation


class Info(Term):
    """Pays ``info[key]`` (per env)."""

    def __init__(self, name):
        self.name = name

    def __call__(self, t):
        return np.asarray(t.info[self.name], np.float32)


def step(env_r, done, **info):
    n = len(env_r)
    return Transition(None, None, None, np.asarray(env_r, float), np.asarray(done, bool), np.zeros(n, bool),
                      {k: np.asarray(v, float) for k, v in info.items()})


def three_level_stack(mode="episode"):
    # outcome env (threshold 1) > tests (threshold 0.5) > tip
    gate = GatedAccumulation(levels=[["env"], ["tests"], ["tip"]], threshold=[1.0, 0.5], mode=mode)
    stack = RewardStack([EnvReward(), Info("tests"), Info("tip")], gate=gate)
    stack.bind(4)
    return stack


def test_three_levels_episode_mode_pays_a_level_only_when_all_higher_levels_clear():
    stack = three_level_stack()
    # four episodes: (outcome, tests) = (ok, ok), (ok, fail), (fail, ok), (fail, fail)
    total, parts = stack(step([0, 0, 0, 0], [False] * 4, tests=[0.3, 0.1, 0.3, 0.1], tip=[0.2] * 4))
    assert not total.any()  # levels 1 and 2 held back, no outcome yet
    total, parts = stack(step([1, 1, 0, 0], [True] * 4, tests=[0.3, 0.1, 0.3, 0.1], tip=[0.2] * 4))
    np.testing.assert_allclose(parts["env"], [1, 1, 0, 0])
    np.testing.assert_allclose(parts["tests"], [0.6, 0.2, 0, 0], rtol=1e-6)  # gated by env only
    np.testing.assert_allclose(parts["tip"], [0.4, 0, 0, 0], rtol=1e-6)  # needs env AND tests
    np.testing.assert_allclose(total, sum(parts.values()), rtol=1e-6)


def test_three_levels_running_mode_opens_each_level_when_the_higher_sums_clear():
    stack = three_level_stack("running")
    seen = []
    for env_r, tests in [(0, 0.3), (1, 0.0), (0, 0.3), (0, 0.0)]:
        _, parts = stack(step([env_r], [False], tests=[tests], tip=[0.1]))
        seen.append((float(parts["tests"][0]), float(parts["tip"][0])))
    # step 0: env sum 0 -> both closed; step 1: env clears, tests sum 0.3 < 0.5 -> tip closed;
    # step 2: tests sum 0.6 clears -> tip open; step 3: still open
    np.testing.assert_allclose(seen, [(0, 0), (0, 0), (0.3, 0.1), (0, 0.1)], rtol=1e-6)


def test_level_sums_reset_between_episodes_and_per_env():
    stack = three_level_stack()
    stack(step([1, 1, 0, 0], [True, False, False, False], tests=[1, 1, 0, 0], tip=[1, 1, 1, 1]))
    stack.reset(np.array([0]))
    # env 0's next episode starts from zero: no outcome -> nothing paid
    _, parts = stack(step([0, 0, 0, 0], [True, True, False, False], tests=[0, 0, 0, 0], tip=[1, 1, 1, 1]))
    np.testing.assert_allclose(parts["tip"], [0, 2, 0, 0])  # env 1 cleared both levels over its 2 steps


def test_two_level_short_form_equals_levels_form():
    a = GatedAccumulation("env", ["tests", "tip"], threshold=0.5)
    b = GatedAccumulation(levels=[["env"], ["tests", "tip"]], threshold=0.5)
    out = []
    for gate in (a, b):
        stack = RewardStack([EnvReward(), Info("tests"), Info("tip")], gate=gate)
        stack.bind(2)
        stack(step([0, 0], [False, False], tests=[0.1, 0.1], tip=[0.2, 0.2]))
        out.append(stack(step([1, 0], [True, True], tests=[0.1, 0.1], tip=[0.2, 0.2]))[0])
    np.testing.assert_allclose(out[0], out[1])
    np.testing.assert_allclose(out[0], [1.0 + 0.2 + 0.4, 0.0], rtol=1e-6)
    assert (a.outcome, a.gated, a.threshold) == ("env", ["tests", "tip"], 0.5)
    assert repr(a).startswith("GatedAccumulation(outcome='env'")
    assert "levels=[['env'], ['tests'], ['tip']]" in repr(three_level_stack().gate)


def test_levels_from_yaml_config():
    cfg = RewardConfig(terms=["env", {"name": "info_signal", "as": "tests", "params": {"key": "t"}},
                              {"name": "info_signal", "as": "tip", "params": {"key": "p"}}],
                       gate={"levels": [["env"], ["tests"], ["tip"]], "threshold": [1.0, 0.5]})
    stack = cfg.build_stack(0.99)
    assert stack.gate.levels == [["env"], ["tests"], ["tip"]] and stack.gate.thresholds == [1.0, 0.5]


def test_bad_levels_are_named():
    with pytest.raises(InvalidArgument, match="one per gating level .2 for 3 levels."):
        GatedAccumulation(levels=[["a"], ["b"], ["c"]], threshold=[0.5])
    with pytest.raises(InvalidArgument, match=r"name \['b'\] more than once"):
        GatedAccumulation(levels=[["a", "b"], ["b"]])
    with pytest.raises(InvalidArgument, match="levels must be a list of >= 2 lists"):
        GatedAccumulation(levels=[["a"]])
    with pytest.raises(InvalidArgument, match="level 1 must be a non-empty list of term names"):
        GatedAccumulation(levels=[["a"], []])
    with pytest.raises(InvalidArgument, match="either 'levels' or 'outcome'"):
        GatedAccumulation("a", ["b"], levels=[["a"], ["b"]])
    with pytest.raises(InvalidArgument, match="needs 'outcome' and 'gated'"):
        GatedAccumulation()
    with pytest.raises(InvalidArgument, match="threshold must be finite"):
        GatedAccumulation(levels=[["a"], ["b"], ["c"]], threshold=[0.5, float("nan")])
    with pytest.raises(InvalidArgument, match=r"gate names \['c'\] are not terms"):
        RewardStack([EnvReward(), Info("b")], gate=GatedAccumulation(levels=[["env"], ["b"], ["c"]]))
    with pytest.raises(ConfigError, match="reward.gate"):
        RewardConfig(terms=["env"], gate={"levels": [["env"], ["env"]]}).build_stack(0.99)
