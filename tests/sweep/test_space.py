"""The sweep: section as data: validation messages, conditional dimensions, term-list choices."""

from __future__ import annotations

import optuna
import pytest
from pydantic import ValidationError

from rewardlab.config import parse_config
from rewardlab.config.sweep import SweepConfig, check_space
from rewardlab.errors import ConfigError
from rewardlab.sweep.space import sample

BASE = {
    "env": {"id": "CartPole-v1"},
    "reward": {"terms": [{"name": "env"}, {"name": "step_penalty", "weight": 2.0, "params": {"value": 0.05}},
                         {"name": "novelty", "weight": 0.1}]},
    "agent": {"name": "ppo"},
}


def _sweep(**params) -> SweepConfig:
    return SweepConfig(params=params)


@pytest.mark.parametrize(("spec", "match"), [
    ({"low": 2.0, "high": 1.0}, "must be smaller"),
    ({"low": 0.0, "high": 1.0, "log": True}, "log scale needs low > 0"),
    ({"low": 0.0, "high": 1.0, "choices": [1, 2]}, "either choices or low/high"),
    ({"low": 0.5, "high": 3, "type": "int"}, "integer bounds"),
    ({"high": 1.0}, "needs both low and high"),
    ({"choices": []}, "must not be empty"),
])
def test_bad_dimensions_are_named(spec, match):
    with pytest.raises(ConfigError, match=rf"sweep\.params\..*{match}"):
        parse_config({**BASE, "sweep": {"params": {"reward.terms.novelty.weight": spec}}})


def test_the_objective_cannot_be_changed():
    with pytest.raises(ConfigError, match="always maximises the unshaped evaluation return"):
        parse_config({**BASE, "sweep": {"direction": "minimize", "params": {"agent.gamma": {"low": 0.9, "high": 1}}}})
    with pytest.raises(ConfigError, match="at least one dimension"):
        parse_config({**BASE, "sweep": {"params": {}}})


def test_term_choice_takes_specs_from_the_base_and_gates_term_dimensions():
    sweep = _sweep(**{"reward.terms": {"choices": [["env"], ["env", "step_penalty"]]},
                      "reward.terms.step_penalty.weight": {"low": 0.1, "high": 10.0, "log": True}})
    data, values = sample(optuna.trial.FixedTrial({"reward.terms": "[env, step_penalty]",
                                                   "reward.terms.step_penalty.weight": 0.5}), sweep, BASE)
    assert data["reward"]["terms"] == [{"name": "env"},
                                       {"name": "step_penalty", "weight": 0.5, "params": {"value": 0.05}}]
    assert values == {"reward.terms": ["env", "step_penalty"], "reward.terms.step_penalty.weight": 0.5}
    assert "sweep" not in data and BASE["reward"]["terms"][1]["weight"] == 2.0  # the base is untouched
    # Without step_penalty in the trial's terms, its weight is not sampled at all.
    data, values = sample(optuna.trial.FixedTrial({"reward.terms": "[env]"}), sweep, BASE)
    assert values == {"reward.terms": ["env"]} and data["reward"]["terms"] == [{"name": "env"}]
    parse_config(data)  # a runnable experiment


def test_when_conditions_on_earlier_dimensions():
    sweep = _sweep(**{"agent.name": {"choices": ["ppo", "sb3_ppo"]},
                      "agent.params.n_epochs": {"low": 1, "high": 8, "type": "int", "when": {"agent.name": "ppo"}}})
    _, values = sample(optuna.trial.FixedTrial({"agent.name": "sb3_ppo"}), sweep, BASE)
    assert values == {"agent.name": "sb3_ppo"}
    data, values = sample(optuna.trial.FixedTrial({"agent.name": "ppo", "agent.params.n_epochs": 3}), sweep, BASE)
    assert data["agent"] == {"name": "ppo", "params": {"n_epochs": 3}}


def test_sampled_values_stay_in_range_with_a_real_sampler():
    sweep = _sweep(**{"reward.terms.novelty.weight": {"low": 0.001, "high": 0.1, "log": True},
                      "agent.params.n_steps": {"low": 32, "high": 256, "step": 32, "type": "int"},
                      "agent.gamma": {"choices": [0.9, 0.99]}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []
    for _ in range(30):
        trial = study.ask()
        data, values = sample(trial, sweep, BASE)
        study.tell(trial, 0.0)
        assert 0.001 <= data["reward"]["terms"][2]["weight"] <= 0.1
        assert data["agent"]["params"]["n_steps"] % 32 == 0 and isinstance(data["agent"]["params"]["n_steps"], int)
        seen.append(values["agent.gamma"])
    assert set(seen) == {0.9, 0.99}


def test_term_paths_by_index_and_typos():
    sweep = _sweep(**{"reward.terms.1.params.value": {"low": 0.0, "high": 1.0}})
    data, _ = sample(optuna.trial.FixedTrial({"reward.terms.1.params.value": 0.3}), sweep, BASE)
    assert data["reward"]["terms"][1]["params"]["value"] == 0.3
    check_space(sweep, BASE)
    typo = _sweep(**{"reward.terms.step_penatly.weight": {"low": 0.0, "high": 1.0}})
    with pytest.raises(ConfigError, match=r"no reward term named 'step_penatly'.*step_penalty"):
        check_space(typo, BASE)
    # a term that only appears in a terms choice is fine
    check_space(_sweep(**{"reward.terms": {"choices": [["env", "potential"]]},
                          "reward.terms.potential.weight": {"low": 0.0, "high": 1.0}}), BASE)


def test_when_must_refer_to_an_earlier_dimension():
    late = _sweep(**{"agent.params.n_epochs": {"low": 1, "high": 4, "type": "int", "when": {"agent.name": "ppo"}},
                     "agent.name": {"choices": ["ppo", "sb3_ppo"]}})
    with pytest.raises(ConfigError, match="comes later"):
        check_space(late, BASE)


def test_cmaes_needs_a_numeric_unconditional_space():
    check_space(SweepConfig(sampler="cmaes", params={"agent.gamma": {"low": 0.9, "high": 0.999}}), BASE)
    with pytest.raises(ConfigError, match=r"cmaes.*reward\.terms"):
        check_space(SweepConfig(sampler="cmaes", params={"reward.terms": {"choices": [["env"]]}}), BASE)


def test_unknown_sweep_field_is_rejected():
    with pytest.raises(ValidationError):
        SweepConfig(params={"agent.gamma": {"low": 0.9, "high": 1.0}}, trials=3)
