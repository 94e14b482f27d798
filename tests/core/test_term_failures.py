"""A reward term that raises, or returns values that are not real numbers, is reported with the
term's name and the env (issue #23, numeric terms) — never a raw exception or a silent cast."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rewardlab.core.stack import RewardStack
from rewardlab.core.transition import Transition
from rewardlab.core.wrappers import ShapedEnv, ShapedVectorEnv
from rewardlab.errors import InvalidArgument, RewardLabError, TermOutputError
from rewardlab.shaping.basic import EnvReward


class Fixed:
    """A term returning ``make(n)`` (or raising it)."""

    def __init__(self, name, make):
        self.name, self.make = name, make

    def reset(self, env_ids):
        pass

    def __call__(self, t):
        return self.make(t.num_envs)


def boom(n):
    raise ZeroDivisionError("division by zero in my term")


def t2() -> Transition:
    return Transition(None, None, None, np.array([1.0, 0.0]), np.zeros(2, bool), np.zeros(2, bool))


def test_a_raising_term_is_named():
    stack = RewardStack([EnvReward(), Fixed("my_term", boom)])
    with pytest.raises(RewardLabError) as e:
        stack(t2())
    msg = str(e.value)
    assert "reward term 'my_term' raised ZeroDivisionError: division by zero in my term" in msg
    assert "test_term_failures.py" in msg  # where it was raised
    assert isinstance(e.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize("vector", [True, False])
def test_a_raising_term_names_the_env(vector):
    stack = RewardStack([EnvReward(), Fixed("my_term", boom)])
    if vector:
        env = ShapedVectorEnv(gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync"), stack)
        action = np.array([0, 1])
    else:
        env = ShapedEnv(gym.make("CartPole-v1"), stack)
        action = 0
    env.reset(seed=0)
    with pytest.raises(RewardLabError, match=r"reward term 'my_term' raised ZeroDivisionError.*env CartPole-v1"):
        env.step(action)


@pytest.mark.parametrize(("make", "what"), [
    (lambda n: np.ones(n, np.complex64), "complex64"),
    (lambda n: np.full(n, 1 + 1e-3j), "complex128"),
    (lambda n: np.array(["1.0"] * n), "<U3"),
    (lambda n: np.array([b"1"] * n), "|S1"),
    (lambda n: np.array([object()] * n, dtype=object), "object"),
    (lambda n: np.array([1.0] * n, dtype=object), "object"),
    (lambda n: np.zeros(n, "datetime64[s]"), "datetime64[s]"),
    (lambda n: np.zeros(n, [("a", "f4")]), "[('a', '<f4')]"),
])
def test_non_real_outputs_are_refused_with_the_term_name(make, what):
    stack = RewardStack([EnvReward(), Fixed("odd", make)])
    with pytest.raises(TermOutputError) as e:
        stack(t2())
    assert f"reward term 'odd' returned values of dtype {what}; expected real numbers" in str(e.value)


@pytest.mark.parametrize(("dtype", "value"), [(np.float64, 0.5), (np.int64, 2), (np.bool_, True), (np.float16, 0.5),
                                              (np.uint8, 3)])
def test_real_dtypes_still_pass(dtype, value):
    total, parts = RewardStack([Fixed("ok", lambda n: np.full(n, value, dtype))])(t2())
    assert total.dtype == np.float32 and parts["ok"].tolist() == [float(value)] * 2


def test_a_non_array_output_is_refused():
    with pytest.raises(TermOutputError, match="reward term 'lst' returned shape list"):
        RewardStack([Fixed("lst", lambda n: [0.0] * n)])(t2())


@pytest.mark.parametrize("w", [float("nan"), float("inf"), 1e39])
def test_weights_must_be_finite_float32(w):
    with pytest.raises(InvalidArgument, match="weight of reward term 'env'"):
        RewardStack([EnvReward()], weights=[w])


def test_the_runner_records_the_term_and_env(tmp_path):
    import json

    from rewardlab.config import parse_config
    from rewardlab.core.terms import TERMS, Term, register_term
    from rewardlab.experiment.runner import run_experiment

    @register_term("test_raises_later")
    class RaisesLater(Term):
        def __init__(self, after: int = 20):
            self.after, self.calls = after, 0

        def __call__(self, t):
            self.calls += 1
            if self.calls > self.after:
                raise KeyError("missing info key")
            return np.zeros(t.num_envs, np.float32)

    try:
        cfg = parse_config({"name": "t", "env": {"id": "CartPole-v1", "n_envs": 2},
                            "reward": {"terms": ["env", "test_raises_later"]},
                            "agent": {"name": "ppo", "params": {"n_steps": 32}},
                            "train": {"total_steps": 256}, "log": {"tensorboard": False}})
        with pytest.raises(RewardLabError, match="reward term 'test_raises_later' raised KeyError"):
            run_experiment(cfg, out=tmp_path)
    finally:
        TERMS.unregister("test_raises_later")
    status = json.loads(next(tmp_path.glob("*/seed_0/status.json")).read_text())
    assert status["status"] == "failed" and "test_raises_later" in status["error"] and "CartPole-v1" in status["error"]
