"""Smoke tests of scripts/ and the report scripts in benchmarks/: every script imports and answers
``--help`` (so a moved module breaks a test, not a user), and the cheap ones run end to end with a
tiny budget. Sized for 2 CPU cores: seconds each, no JAX compile, no LLM, no ALFWorld games."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "scripts").glob("*.py"))
REPORTS = [REPO / "benchmarks" / n for n in ("calm_report.py", "oni_report.py", "gra_swe_compare.py")]


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", SCRIPTS + REPORTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_script_help(script):
    res = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("usage:")


TINY = ["train.total_steps=256", "train.seeds=[0]", "env.n_envs=2", "agent.params.n_steps=64",
        "eval.every_steps=128", "eval.episodes=2", "eval.final_episodes=2", "eval.n_envs=2",
        "reward.terms.barfi.params.update_every=1"]


def test_barfi_compare_tiny(tmp_path):
    args = [sys.executable, "scripts/barfi_compare.py", "experiments/barfi_gridworld.yaml", "--variants",
            "primary,barfi_implicit", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path), "--tag", "tiny"]
    for kv in TINY:
        args += ["--set", kv]
    res = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [ln for ln in res.stdout.splitlines() if ln.startswith("| barfi_gridworld_tiny |")]
    assert len(rows) == 4  # printed as they finish, then the whole table
    assert "| barfi_implicit |" in rows[1] and " [" in rows[1]  # IQM [95% CI] column
    assert (tmp_path / "barfi_gridworld_tiny.png").stat().st_size > 5000


def test_barfi_neumann_diag_tiny():
    res = subprocess.run([sys.executable, "scripts/barfi_neumann_diag.py", "--steps", "1024"], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "cos" in res.stdout


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny CartPole run (2 seeds) written by the runner."""
    from rewardlab.config import parse_config
    from rewardlab.experiment.runner import run_experiment

    cfg = {"name": "a", "env": {"id": "CartPole-v1", "n_envs": 2},
           "agent": {"name": "sb3_ppo", "params": {"n_steps": 64, "batch_size": 64}},
           "train": {"total_steps": 256, "seeds": [0, 1]},
           "eval": {"every_steps": 128, "episodes": 2, "final_episodes": 2, "n_envs": 2},
           "log": {"tensorboard": False, "checkpoint_every": 256}}
    return run_experiment(parse_config(cfg), out=tmp_path_factory.mktemp("runs")).run_dir


def test_calm_report_on_run_dirs(run_dir, tmp_path, capsys):
    png = tmp_path / "calm.png"
    load(REPORTS[0]).main([f"a={run_dir}", f"b={run_dir.parent / 'a__*'}", "--key", "eval/true_return",
                           "--out", str(png)])
    out = capsys.readouterr().out
    assert "a          seeds=2" in out and "IQM " in out and png.stat().st_size > 5000


def test_oni_report_on_run_dirs(run_dir, tmp_path, capsys):
    png = tmp_path / "oni.png"
    load(REPORTS[1]).main([f"a={run_dir}", "--late", "0.5", "--out", str(png)])
    out = capsys.readouterr().out
    finals = [yaml.safe_load((run_dir / f"seed_{s}" / "final_eval.json").read_text())["true_return_mean"]
              for s in (0, 1)]
    assert f"final eval true return {sum(finals) / 2:7.2f}" in out
    assert png.stat().st_size > 5000


def test_vector_modes_tiny():
    """benchmarks/vector_modes.py end to end on MiniHack with every mode, pipelined groups and the agent
    stand-in included (a few steps: it checks that the modes run and report, not their speed)."""
    res = subprocess.run([sys.executable, "benchmarks/vector_modes.py", "--num-envs", "4", "--steps", "20",
                          "--repeats", "1", "--agent-us", "10",
                          "--modes", "sync,async,workers,workers-inline,workers-unpinned,pipelined"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "80 env-steps per mode" in res.stdout and "agent work 10 us per env step" in res.stdout
    for mode in ("async", "workers", "workers-inline", "workers-unpinned", "pipelined"):
        assert f"ratio {mode}/sync: " in res.stdout, res.stdout
