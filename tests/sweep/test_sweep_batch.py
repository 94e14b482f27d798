"""Batched sweeps (``sweep.batch``): K trials trained as reward variants of one jax_ppo program,
each told the mean final true return of its own variant; what cannot be batched is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState

pytest.importorskip("gymnax")

from rewardlab.errors import ConfigError  # noqa: E402
from rewardlab.sweep.batch import variant_name  # noqa: E402
from rewardlab.sweep.study import counted_trials, open_study, plan_sweep, run_worker  # noqa: E402


def _experiment(tmp_path: Path, **sweep) -> dict:
    return {
        "name": "jcp",
        "env": {"id": "gymnax/CartPole-v1", "n_envs": 4},
        "reward": {"terms": ["env", {"name": "step_penalty", "weight": 1.0, "params": {"value": 0.01}}]},
        "agent": {"name": "jax_ppo", "gamma": 0.99, "params": {"n_steps": 32, "learning_rate": 0.001}},
        "train": {"total_steps": 4 * 128, "seeds": [0]},
        "eval": {"every_steps": 256, "episodes": 4, "final_episodes": 6},
        "log": {"dir": str(tmp_path / "runs"), "tensorboard": False, "checkpoint_every": 256},
        "sweep": {"n_trials": 3, "batch": 3, "sampler": "random", "seeds_per_trial": 2,
                  "params": {"reward.terms.step_penalty.weight": {"low": 0.0, "high": 50.0}}} | sweep,
    }


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_batch_of_trials_trains_in_one_program_and_each_gets_its_variants_return(tmp_path):
    plan = plan_sweep(_write(tmp_path, _experiment(tmp_path)))
    assert run_worker(plan) == 3
    trials = counted_trials(open_study(plan, load_only=True))
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    batches = list((plan.dir / "trials").glob("batch_0000/*__*"))
    assert len(batches) == 1  # one run of the program for all three trials
    weights = set()
    for t in trials:
        run = batches[0] / variant_name(t.number)
        finals = [json.loads((run / f"seed_{s}" / "final_eval.json").read_text())["true_return_mean"]
                  for s in (0, 1)]
        assert t.value == pytest.approx(sum(finals) / 2)  # the unshaped return of this trial's own runs
        w = t.params["reward.terms.step_penalty.weight"]
        assert yaml.safe_load((run / "config.yaml").read_text())["reward"]["terms"][1]["weight"] == pytest.approx(w)
        weights.add(w)
    assert len(weights) == 3


@pytest.mark.parametrize(("change", "message"), [
    ({"agent": {"name": "ppo"}}, "trains one run at a time"),
    ({"sweep_params": {"agent.params.learning_rate": {"low": 1e-4, "high": 1e-3}}}, "not: agent.params.learning_rate"),
    ({"sweep_params": {"reward.terms": {"choices": [["env"], ["env", "step_penalty"]]}}}, "not: reward.terms"),
])
def test_what_one_program_cannot_train_is_refused_before_any_trial(tmp_path, change, message):
    data = _experiment(tmp_path)
    if "agent" in change:
        data["agent"] = change["agent"]
    else:
        data["sweep"]["params"] = change["sweep_params"]
    with pytest.raises(ConfigError, match=message):
        plan_sweep(_write(tmp_path, data))
