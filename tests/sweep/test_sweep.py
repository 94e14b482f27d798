"""Sweeps end to end on CartPole with tiny budgets: SQLite, PostgreSQL with two worker processes,
a killed worker, crashing and pruned trials, --best and --report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState

from rewardlab.cli import main
from rewardlab.config import load_config
from rewardlab.core.terms import TERMS, Term, register_term
from rewardlab.sweep.study import counted_trials, open_study, plan_sweep, run_worker


def _experiment(tmp_path: Path, steps: int = 1024, **sweep) -> dict:
    return {
        "name": "cp",
        "env": {"id": "CartPole-v1", "n_envs": 2},
        "reward": {"terms": ["env", {"name": "step_penalty", "weight": 1.0, "params": {"value": 0.01}}]},
        "agent": {"name": "ppo", "params": {"n_steps": 64, "n_epochs": 2, "n_minibatches": 2}},
        "train": {"total_steps": steps, "seeds": [0]},
        "eval": {"every_steps": 256, "episodes": 2, "final_episodes": 3, "n_envs": 2},
        "log": {"dir": str(tmp_path / "runs"), "tensorboard": False, "checkpoint_every": 256},
        "sweep": {"n_trials": 4, "n_startup_trials": 2,
                  "params": {"reward.terms": {"choices": [["env"], ["env", "step_penalty"]]},
                             "reward.terms.step_penalty.weight": {"low": 0.1, "high": 10.0, "log": True},
                             "agent.params.learning_rate": {"low": 1e-4, "high": 3e-3, "log": True}},
                  **sweep},
    }


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _no_duplicates(study, n: int) -> list:
    trials = counted_trials(study)
    numbers = [t.number for t in trials]
    assert len(trials) == n and len(set(numbers)) == n, numbers
    assert all(t.state.is_finished() for t in trials), [t.state for t in trials]
    return trials


def test_sqlite_sweep_end_to_end_best_and_report(tmp_path, capsys):
    file = _write(tmp_path, _experiment(tmp_path))
    assert main(["sweep", str(file), "--quiet"]) == 0
    plan = plan_sweep(file)
    study = open_study(plan, load_only=True)
    trials = _no_duplicates(study, 4)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete
    for t in complete:
        # The objective is the unshaped final evaluation (CartPole: +1 per step), read back from disk.
        run = next(Path(t.user_attrs["run_parent"]).glob("cp_trial*__*"))
        final = json.loads((run / "seed_0" / "final_eval.json").read_text())
        assert t.value == pytest.approx(final["true_return_mean"])
        assert yaml.safe_load((run / "config.yaml").read_text())["name"] == f"cp_trial{t.number}"
    assert "sweep cp: " in capsys.readouterr().out

    # --best writes a runnable experiment holding the best trial's values
    assert main(["sweep", str(file), "--best"]) == 0
    best_file = plan.dir / "best.yaml"
    best_cfg, _ = load_config(best_file)
    best = max(complete, key=lambda t: t.value)
    assert best_cfg.agent.params["learning_rate"] == pytest.approx(best.params["agent.params.learning_rate"])
    assert best_cfg.sweep is None
    # --report writes the plots
    assert main(["sweep", str(file), "--report"]) == 0
    for name in ("optimization_history", "intermediate_values"):
        assert (plan.dir / "report" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (plan.dir / "report" / f"{name}.html").stat().st_size > 1000
    # a second invocation has nothing left to do: still exactly n_trials
    assert main(["sweep", str(file), "--quiet"]) == 0
    _no_duplicates(open_study(plan, load_only=True), 4)
    # the study opens in optuna-dashboard (its WSGI app, queried in-process)
    assert any(s["study_name"] == "cp" for s in _dashboard_get(plan.storage, "/api/studies")["study_summaries"])


def _dashboard_get(storage: str, path: str) -> dict:
    from wsgiref.util import setup_testing_defaults

    import optuna_dashboard

    environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    status = []
    body = b"".join(optuna_dashboard.wsgi(storage)(environ, lambda s, h, *a: status.append(s)))
    assert status[0].startswith("200"), status
    return json.loads(body)


class Flaky(Term):
    """NaN reward when ``bad`` (a crashing trial), else zero."""

    name = "flaky"

    def __init__(self, bad: bool = False):
        self.bad = bad

    def __call__(self, t):
        return np.full(len(t.env_reward), np.nan if self.bad else 0.0, np.float32)


@pytest.fixture
def flaky_term():
    if "flaky" not in TERMS:
        register_term("flaky")(Flaky)
    yield
    TERMS.unregister("flaky")  # registries are process-wide: leave no test name behind


def test_crashing_and_pruned_trials_are_recorded_and_the_sweep_goes_on(tmp_path, flaky_term):
    data = _experiment(tmp_path)
    data["reward"]["terms"] = ["env", {"name": "flaky"}]
    data["sweep"] = {"n_trials": 3, "n_startup_trials": 1, "sampler": "random", "params": {
        "reward.terms.flaky.params.bad": {"choices": [True, False]},
        "env.kwargs.max_episode_steps": {"low": 5, "high": 500, "type": "int"}}}
    plan = plan_sweep(_write(tmp_path, data))
    study = open_study(plan)
    # Trial 0 sets the median; trial 1's episodes are cut at 5 steps (CartPole's random policy
    # lasts ~20), so its first evaluation is below the median and it is pruned; trial 2 crashes.
    study.enqueue_trial({"reward.terms.flaky.params.bad": False, "env.kwargs.max_episode_steps": 500})
    study.enqueue_trial({"reward.terms.flaky.params.bad": False, "env.kwargs.max_episode_steps": 5})
    study.enqueue_trial({"reward.terms.flaky.params.bad": True, "env.kwargs.max_episode_steps": 500})
    events = []
    assert run_worker(plan, on_trial=events.append) == 3
    assert [e.state for e in events] == ["COMPLETE", "PRUNED", "FAIL"]
    assert "TermOutputError" in events[2].error and "flaky" in events[2].error
    trials = _no_duplicates(study, 3)
    assert trials[2].user_attrs["error"] == events[2].error
    pruned_run = next(Path(trials[1].user_attrs["run_parent"]).glob("*__*"))
    status = json.loads((pruned_run / "seed_0" / "status.json").read_text())
    assert status["status"] == "stopped" and "pruned" in status["reason"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rewardlab.cli", *args]


def test_killed_worker_trial_is_retried_and_resumes_its_run(tmp_path):
    # Long enough trials that the kill lands mid-trial, after a checkpoint.
    data = _experiment(tmp_path, steps=20_000, heartbeat_interval=1, grace_period=3)
    data["sweep"]["n_trials"] = 2
    data["log"]["checkpoint_every"] = 512
    file = _write(tmp_path, data)
    plan = plan_sweep(file)
    proc = subprocess.Popen(_cli("sweep", str(file), "--quiet"), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = None
    deadline = time.time() + 120
    while time.time() < deadline and ckpt is None:
        time.sleep(0.5)
        found = list((plan.dir / "trials" / "trial_0000").glob("*/seed_0/checkpoint/runner_state.json"))
        ckpt = found[0] if found else None
    assert ckpt is not None, proc.stderr.read().decode() if proc.poll() is not None else "no checkpoint in 120 s"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(ckpt.read_text())["step"]

    assert main(["sweep", str(file), "--quiet"]) == 0  # waits out the grace period, then retries
    study = open_study(plan, load_only=True)
    trials = _no_duplicates(study, 2)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    stale = [t for t in study.get_trials() if t.state == TrialState.FAIL]
    assert [t.number for t in stale] == [0] and "error" not in stale[0].user_attrs
    retry = next(t for t in study.get_trials() if t.system_attrs.get("failed_trial") == 0)
    assert retry.params == stale[0].params
    # The retry resumed the killed run directory instead of starting over.
    runs = list((plan.dir / "trials" / "trial_0000").glob("*__*"))
    assert len(runs) == 1
    rows = [json.loads(x) for x in (runs[0] / "seed_0" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if r["kind"] == "train"]
    assert steps == sorted(steps) and len(steps) == len(set(steps)) and steps[-1] >= 20_000
    assert killed_at < 20_000


def test_two_workers_on_postgresql_finish_exactly_n_trials(tmp_path, postgres_url):
    data = _experiment(tmp_path, steps=512)
    data["sweep"]["n_trials"] = 6
    file = _write(tmp_path, data)
    # Two independent `rewardlab sweep` processes, as on two machines, joining one study.
    procs = [subprocess.Popen(_cli("sweep", str(file), "--storage", postgres_url, "--study", "pg", "--quiet"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1].decode()[-2000:] for o in outs]
    plan = plan_sweep(file, storage=postgres_url, study="pg")
    study = optuna.load_study(study_name="pg", storage=postgres_url)
    trials = _no_duplicates(study, 6)
    assert len(study.get_trials()) == 6  # nothing extra was created and abandoned
    parents = [t.user_attrs["run_parent"] for t in trials]
    assert len(set(parents)) == 6 and all(Path(p).is_dir() for p in parents)
    # both processes did work
    ran = [o[0].decode().count("trial ") for o in outs]
    assert all(r > 0 for r in ran), ran
    assert plan.storage == postgres_url


def test_workers_option_runs_processes_on_sqlite(tmp_path):
    data = _experiment(tmp_path, steps=512)
    data["sweep"]["n_trials"] = 4
    file = _write(tmp_path, data)
    assert main(["sweep", str(file), "--workers", "2", "--quiet"]) == 0
    _no_duplicates(open_study(plan_sweep(file), load_only=True), 4)


def test_bad_sweep_input_is_a_clear_error(tmp_path, capsys):
    data = _experiment(tmp_path)
    del data["sweep"]
    file = _write(tmp_path, data)
    assert main(["sweep", str(file)]) == 2
    assert "has no sweep: section" in capsys.readouterr().err
    data = _experiment(tmp_path)
    file = _write(tmp_path, data)
    assert main(["sweep", str(file), "--storage", "postgresql://nobody@127.0.0.1:1/none", "--quiet"]) == 2
    assert "cannot open sweep storage" in capsys.readouterr().err
    assert main(["sweep", str(file), "--best"]) == 2
    assert "no study 'cp'" in capsys.readouterr().err


@pytest.mark.parametrize(("sampler", "pruner"), [("cmaes", "hyperband"), ("random", "none")])
def test_other_samplers_and_pruners_run(tmp_path, sampler, pruner):
    data = _experiment(tmp_path, steps=512)
    data["sweep"] = {"n_trials": 3, "n_startup_trials": 1, "sampler": sampler, "pruner": pruner,
                     "params": {"agent.params.learning_rate": {"low": 1e-4, "high": 3e-3, "log": True},
                                "reward.terms.step_penalty.weight": {"low": 0.0, "high": 2.0}}}
    file = _write(tmp_path, data)
    events = []
    assert run_worker(plan_sweep(file), on_trial=events.append) == 3
    assert all(e.state in ("COMPLETE", "PRUNED") for e in events)
    assert len({e.values["agent.params.learning_rate"] for e in events}) == 3
