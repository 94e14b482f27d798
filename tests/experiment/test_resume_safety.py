"""``--resume`` after a crash (issue #23, items 17-19): the checkpoint is verified against its
manifest and a damaged or missing one is refused with a message — never a raw traceback,
never a silent restart that rewrites ``metrics.jsonl`` — and a run killed with SIGKILL at any
point (after a checkpoint, between the checkpoint renames, in the middle of a metrics line,
during the final evaluation, after the final row) resumes to every metrics row once, in order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from rewardlab.cli import main
from rewardlab.config import parse_config
from rewardlab.experiment.runner import read_metrics, run_experiment

CONFIG = {"name": "resume", "env": {"id": "CartPole-v1", "n_envs": 2}, "reward": {"terms": ["env"]},
          "agent": {"name": "ppo", "params": {"n_steps": 64, "n_epochs": 1, "hidden_sizes": [16]}},
          "train": {"total_steps": 1024, "seeds": [0]},
          "eval": {"every_steps": 256, "episodes": 2, "final_episodes": 4, "n_envs": 2},
          "log": {"tensorboard": False, "checkpoint_every": 256}}


def rows_of(seed_dir: Path) -> list[tuple[str, int]]:
    return [(r["kind"], r["step"]) for r in read_metrics(seed_dir)]


@pytest.fixture(scope="module")
def expected_rows(tmp_path_factory) -> list[tuple[str, int]]:
    """The (kind, step) rows of an uninterrupted run."""
    run = run_experiment(parse_config(CONFIG), out=tmp_path_factory.mktemp("clean")).run_dir
    rows = rows_of(run / "seed_0")
    assert rows.count(("final", 1024)) == 1 and ("eval", 256) in rows
    return rows


class Stop(KeyboardInterrupt):
    pass


def interrupted_run(tmp_path: Path, at_step: int = 512) -> Path:
    """A run stopped (like Ctrl-C) after the iteration reaching ``at_step``; its seed directory."""

    def progress(seed, step, total, sps, ret):
        if step >= at_step:
            raise Stop

    with pytest.raises(Stop):
        run_experiment(parse_config(CONFIG), out=tmp_path, on_progress=progress)
    return next(tmp_path.glob("resume__*/seed_0"))


def resume(seed_dir: Path, capsys) -> tuple[int, str]:
    code = main(["run", "--resume", str(seed_dir.parent), "--quiet"])
    cap = capsys.readouterr()
    return code, " ".join((cap.err + cap.out).split())


def test_an_interrupted_run_resumes(tmp_path, capsys, expected_rows):
    seed_dir = interrupted_run(tmp_path)
    assert resume(seed_dir, capsys)[0] == 0
    assert rows_of(seed_dir) == expected_rows


def test_interrupted_before_the_first_checkpoint_starts_the_seed_over(tmp_path, capsys, expected_rows):
    seed_dir = interrupted_run(tmp_path, at_step=128)
    assert not (seed_dir / "checkpoint").exists() and rows_of(seed_dir) == [("train", 128)]
    assert resume(seed_dir, capsys)[0] == 0
    assert rows_of(seed_dir) == expected_rows


def _agent_file(ckpt: Path) -> Path:
    return max((p for p in ckpt.iterdir() if p.suffix not in (".json",)), key=lambda p: p.stat().st_size)


DAMAGES = {
    "truncated agent file": (lambda c: _agent_file(c).write_bytes(_agent_file(c).read_bytes()[:100]),
                             "checkpoint/{agent}: 100 bytes, the manifest says"),
    "empty runner_state.json": (lambda c: (c / "runner_state.json").write_text(""),
                                "checkpoint/runner_state.json: 0 bytes"),
    "garbled runner_state.json": (lambda c: (c / "runner_state.json").write_text('{"step": 5'),
                                  "checkpoint/runner_state.json"),
    "same-size corruption": (lambda c: _agent_file(c).write_bytes(b"\0" * _agent_file(c).stat().st_size),
                             "does not match its checksum"),
    "deleted runner_state.json": (lambda c: (c / "runner_state.json").unlink(),
                                  "checkpoint/runner_state.json is missing"),
    "deleted manifest": (lambda c: (c / "manifest.json").unlink(), "checkpoint/manifest.json is missing"),
    "deleted checkpoint folder": (lambda c: __import__("shutil").rmtree(c), "no checkpoint to resume from"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_or_missing_checkpoint_is_refused(tmp_path, capsys, damage):
    seed_dir = interrupted_run(tmp_path)
    ckpt = seed_dir / "checkpoint"
    agent = _agent_file(ckpt).name
    metrics = (seed_dir / "metrics.jsonl").read_bytes()
    apply, expected = DAMAGES[damage]
    apply(ckpt)
    code, out = resume(seed_dir, capsys)
    assert code == 2, out
    assert expected.format(agent=agent) in out and "seed_0" in out and "Traceback" not in out
    assert (seed_dir / "metrics.jsonl").read_bytes() == metrics  # never rewritten
    assert not (seed_dir / "final_eval.json").exists()


def test_deleted_checkpoint_and_status_is_refused(tmp_path, capsys):
    seed_dir = interrupted_run(tmp_path)
    metrics = (seed_dir / "metrics.jsonl").read_bytes()
    __import__("shutil").rmtree(seed_dir / "checkpoint")
    (seed_dir / "status.json").unlink()
    code, out = resume(seed_dir, capsys)
    assert code == 2 and "no checkpoint to resume from" in out
    assert (seed_dir / "metrics.jsonl").read_bytes() == metrics


def test_lost_metrics_rows_are_refused(tmp_path, capsys):
    seed_dir = interrupted_run(tmp_path)
    lines = (seed_dir / "metrics.jsonl").read_text().splitlines(keepends=True)
    (seed_dir / "metrics.jsonl").write_text("".join(lines[:2]))
    code, out = resume(seed_dir, capsys)
    assert code == 2 and "metrics.jsonl has 2 rows up to the checkpoint" in out


def test_a_garbled_metrics_row_is_refused(tmp_path, capsys):
    seed_dir = interrupted_run(tmp_path)
    text = (seed_dir / "metrics.jsonl").read_text()
    (seed_dir / "metrics.jsonl").write_text("{not json}\n" + text)
    code, out = resume(seed_dir, capsys)
    assert code == 2 and "metrics.jsonl line 1 is not JSON" in out


def test_a_garbled_status_of_a_finished_seed_is_refused(tmp_path, capsys):
    run = run_experiment(parse_config({**CONFIG, "train": {"total_steps": 256, "seeds": [0]}}), out=tmp_path).run_dir
    (run / "seed_0" / "final_eval.json").write_text("")
    code, out = resume(run / "seed_0", capsys)
    assert code == 2 and "final_eval.json" in out


DRIVER = textwrap.dedent('''
    import os, signal, sys
    from rewardlab.experiment import runner

    point, argv = sys.argv[1], sys.argv[2:]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "after_checkpoint":
        orig_save, saves = runner._SeedRun.save_checkpoint, [0]
        def save(self, *a, **k):
            orig_save(self, *a, **k)
            saves[0] += 1
            if saves[0] == 2:
                die()
        runner._SeedRun.save_checkpoint = save
    elif point == "between_renames":
        orig_replace, renames = os.replace, [0]
        def replace(src, dst):
            orig_replace(src, dst)
            if str(dst).endswith("checkpoint.old"):
                renames[0] += 1
                if renames[0] == 2:
                    die()
        os.replace = replace
    elif point == "partial_line":
        orig_log, logged = runner._Logger.log, [0]
        def log(self, step, values, kind="train"):
            logged[0] += 1
            if logged[0] == 6:
                self.file.write('{"step": %d, "kind": "tr' % step)
                self.file.flush()
                die()
            orig_log(self, step, values, kind)
        runner._Logger.log = log
    elif point == "final_eval":
        orig_eval = runner._SeedRun.evaluate
        def evaluate(self, episodes, *a, **k):
            if episodes == self.cfg.eval.final_episodes:
                die()
            return orig_eval(self, episodes, *a, **k)
        runner._SeedRun.evaluate = evaluate
    elif point == "after_final_row":
        orig_log = runner._Logger.log
        def log(self, step, values, kind="train"):
            orig_log(self, step, values, kind)
            if kind == "final":
                die()
        runner._Logger.log = log
    from rewardlab.cli import main
    sys.exit(main(argv))
''')


@pytest.mark.parametrize("point", ["after_checkpoint", "between_renames", "partial_line", "final_eval",
                                   "after_final_row"])
def test_killed_with_sigkill_resumes_to_every_row_once(tmp_path, capsys, expected_rows, point):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(CONFIG))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run([sys.executable, str(driver), point, "run", str(exp), "--out", str(tmp_path / "runs"),
                           "--quiet"], env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True,
                          timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    seed_dir = next((tmp_path / "runs").glob("resume__*/seed_0"))
    assert not (seed_dir / "final_eval.json").exists()
    code, out = resume(seed_dir, capsys)
    assert code == 0, out
    assert rows_of(seed_dir) == expected_rows
    assert json.loads((seed_dir / "status.json").read_text())["status"] == "done"


def complete_rows(metrics: Path) -> list[tuple[str, int]]:
    lines = metrics.read_text().splitlines(keepends=True)
    return [(r["kind"], r["step"]) for r in (json.loads(x) for x in lines if x.endswith("\n"))]


@pytest.mark.parametrize("row", [("train", 128), ("eval", 256), ("train", 640)])
def test_killed_from_outside_after_a_metrics_line_resumes(tmp_path, capsys, expected_rows, row):
    """``kill -9`` from outside as soon as a given metrics row appears (before the first checkpoint,
    right after an evaluation, between checkpoints)."""
    import signal
    import time

    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(CONFIG))
    proc = subprocess.Popen([sys.executable, "-m", "rewardlab.cli", "run", str(exp), "--out", str(tmp_path / "runs"),
                             "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seed_dir = None
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            found = list((tmp_path / "runs").glob("resume__*/seed_0/metrics.jsonl"))
            if found and row in complete_rows(found[0]):
                os.kill(proc.pid, signal.SIGKILL)
                seed_dir = found[0].parent
                break
            time.sleep(0.002)
    finally:
        if proc.poll() is None and seed_dir is None:
            proc.kill()
        proc.wait()
    assert seed_dir is not None and proc.returncode == -9, "the run ended before the row appeared"
    assert not (seed_dir / "final_eval.json").exists()
    code, out = resume(seed_dir, capsys)
    assert code == 0, out
    assert rows_of(seed_dir) == expected_rows
