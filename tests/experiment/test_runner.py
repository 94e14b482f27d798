"""The runner on real (small) envs: run directory contents, failing terms, crash + resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from test_config_and_cli import BASE

from rewardlab.cli import main
from rewardlab.config import parse_config
from rewardlab.core.terms import TERMS, Term, register_term
from rewardlab.errors import TermOutputError
from rewardlab.experiment.runner import run_experiment


def test_run_writes_a_complete_run_directory(tmp_path):
    cfg = parse_config({**BASE, "train": {"total_steps": 512, "seeds": [0, 1]},
                        "log": {"tensorboard": True, "checkpoint_every": 256}})
    summary = run_experiment(cfg, out=tmp_path)
    run = summary.run_dir
    assert (run / "config.yaml").is_file() and (run / "summary.json").is_file()
    assert yaml.safe_load((run / "config.yaml").read_text())["agent"]["gamma"] == 0.99  # resolved defaults
    for seed in (0, 1):
        d = run / f"seed_{seed}"
        assert json.loads((d / "status.json").read_text())["status"] == "done"
        final = json.loads((d / "final_eval.json").read_text())
        assert final["episodes"] == 2 and final["true_return_mean"] > 0
        rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
        train = [r for r in rows if r["kind"] == "train" and "charts/true_return" in r]
        assert train, "episode statistics were logged"
        r = train[-1]
        # CartPole: true return counts +1 per step; the step penalty makes the shaped return smaller.
        assert r["charts/shaped_return"] == pytest.approx(r["charts/true_return"] - 0.01 * r["charts/episode_length"],
                                                          rel=1e-4)
        assert r["reward_terms/env"] == pytest.approx(r["charts/true_return"], rel=1e-5)
        assert any(p.name.startswith("events.out.tfevents") for p in d.iterdir())
        assert (d / "checkpoint" / "runner_state.json").is_file()
    s = json.loads((run / "summary.json").read_text())
    assert set(s["seeds"]) == {"0", "1"}
    # a second run never reuses the directory
    assert run_experiment(cfg, out=tmp_path).run_dir != run


def test_plot_writes_png(tmp_path, capsys):
    cfg = parse_config({**BASE, "train": {"total_steps": 256}})
    run = run_experiment(cfg, out=tmp_path).run_dir
    out = tmp_path / "curve.png"
    assert main(["plot", str(run), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


@pytest.fixture
def nan_term():
    @register_term("test_nan_after")
    class NanAfter(Term):
        def __init__(self, after: int = 50):
            self.after, self.calls = after, 0

        def __call__(self, t):
            self.calls += 1
            return np.full(t.num_envs, np.nan if self.calls > self.after else 0.0, np.float32)

    yield
    TERMS.unregister("test_nan_after")


def test_term_returning_nan_stops_with_message_and_status(tmp_path, capsys, nan_term):
    data = {**BASE, "reward": {"terms": ["env", {"name": "test_nan_after", "params": {"after": 100}}]}}
    cfg = parse_config(data)
    with pytest.raises(TermOutputError, match="reward term 'test_nan_after' returned nan for env 0"):
        run_experiment(cfg, out=tmp_path)
    run = next(tmp_path.iterdir())
    status = json.loads((run / "seed_0" / "status.json").read_text())
    assert status["status"] == "failed" and "test_nan_after" in status["error"]


def test_killed_run_resumes_to_the_same_total_without_losing_metrics(tmp_path):
    total = 6144
    data = {**BASE, "train": {"total_steps": total},
            "agent": {"name": "sb3_ppo", "params": {"n_steps": 128, "batch_size": 64}},
            "eval": {"every_steps": 1024, "episodes": 2, "final_episodes": 2, "n_envs": 2},
            "log": {"tensorboard": True, "checkpoint_every": 1024, "dir": str(tmp_path / "runs")}}
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rewardlab.cli", "run", str(exp), "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt_state = None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        states = list((tmp_path / "runs").glob("*/seed_0/checkpoint/runner_state.json"))
        if states and json.loads(states[0].read_text())["step"] >= 2048:
            ckpt_state = states[0]
            break
        time.sleep(0.05)
    assert ckpt_state is not None, "no checkpoint appeared"
    os.killpg(proc.pid, signal.SIGKILL)  # like a crash: no cleanup runs
    proc.wait()
    seed_dir = ckpt_state.parent.parent
    assert not (seed_dir / "final_eval.json").exists()
    assert main(["run", "--resume", str(seed_dir.parent), "--quiet"]) == 0
    status = json.loads((seed_dir / "status.json").read_text())
    assert status == {"status": "done", "step": total, "checkpoint_step": total}
    rows = [json.loads(x) for x in (seed_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if r["kind"] == "train"]
    # every iteration logged exactly once, in order, from the first to the last
    assert steps == list(range(256, total + 1, 256))
    assert [r["step"] for r in rows if r["kind"] == "eval"] == list(range(1024, total + 1, 1024))


def test_summary_compares_runs(tmp_path, capsys):
    cfg = parse_config({**BASE, "train": {"total_steps": 256, "seeds": [0, 1]}})
    run = run_experiment(cfg, out=tmp_path).run_dir
    from rewardlab.experiment.summary import summarize_run

    s = summarize_run(run, late_fraction=1.0)
    assert s["seeds"] == 2 and s["steps"] == [256, 256]
    finals = [json.loads((run / f"seed_{i}" / "final_eval.json").read_text())["true_return_mean"] for i in (0, 1)]
    from rewardlab.experiment.results import iqm_ci

    assert s["final_true_return"] == str(iqm_ci(finals, reps=2000))  # "IQM [low, high]" over seeds (rliable)
    assert s["final_true_return"].startswith(f"{np.mean(finals):.3f} [")  # two seeds: the IQM is the mean
    assert main(["summary", str(run)]) == 0
    assert "final_true_return" in capsys.readouterr().out
