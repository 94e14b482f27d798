"""The results API: loading run directories, the one alignment policy, the late window, rliable stats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardlab.core import keys
from rewardlab.errors import RunDirError
from rewardlab.experiment import results as R


def fake_run(root: Path, name: str, seeds: dict[int, list[dict]], finals: dict[int, float] | None = None) -> Path:
    """A run directory as the runner writes it, from metrics rows (and final returns)."""
    run = root / f"{name}__20260101-000000"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"name: {name}\n")
    for seed, rows in seeds.items():
        d = run / f"seed_{seed}"
        d.mkdir()
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        if finals is not None and seed in finals:
            (d / "final_eval.json").write_text(json.dumps({"true_return_mean": finals[seed], "success_rate": None}))
            (d / "status.json").write_text(json.dumps({"status": "done", "step": rows[-1]["step"]}))
        else:
            (d / "status.json").write_text(json.dumps({"status": "running", "step": rows[-1]["step"]}))
    return run


def train(step: int, value: float) -> dict:
    return {"step": step, "kind": "train", keys.TRUE_RETURN: value}


def test_align_is_union_of_steps_inside_the_common_range(tmp_path):
    # seed a logs at 100, 300, 500, 700; seed b at 200, 400, 600 (episodes end at different steps)
    a = [train(s, s / 100) for s in (100, 300, 500, 700)]
    b = [train(s, -s / 100) for s in (200, 400, 600)]
    runs = R.load_runs(fake_run(tmp_path, "x", {0: a, 1: b}, {0: 1.0, 1: 2.0}))
    c = runs.curves(keys.TRUE_RETURN, R.TRAIN_KINDS)
    # only [200, 600] is covered by both seeds: 100 and 700 would need extrapolating seed b
    assert c.steps.tolist() == [200, 300, 400, 500, 600]
    # each seed is linearly interpolated between its own measurements, and exact where it has one
    np.testing.assert_allclose(c.values[0], [2, 3, 4, 5, 6])
    np.testing.assert_allclose(c.values[1], [-2, -3, -4, -5, -6])


def test_align_on_identical_steps_interpolates_nothing():
    steps = [np.array([10, 20, 30])] * 3
    values = [np.array([1.0, 5.0, 2.0]), np.array([0.0, 0.0, 9.0]), np.array([3.0, 3.0, 3.0])]
    grid, m = R.align(steps, values)
    assert grid.tolist() == [10, 20, 30]
    np.testing.assert_array_equal(m, np.array(values))


def test_align_refuses_disjoint_ranges():
    with pytest.raises(RunDirError, match=r"do not overlap \(seed 0: 0..10, seed 1: 20..30\)"):
        R.align([np.array([0, 10]), np.array([20, 30])], [np.zeros(2), np.zeros(2)])


def test_late_window_is_by_steps_with_fallback():
    steps, vals = np.array([100, 800, 950, 1000]), np.array([9.0, 1.0, 2.0, 4.0])
    assert R.late_window(steps, vals, 1000, 0.1) == 3.0            # steps 950 and 1000
    assert R.late_window(steps, vals, 1000, 0.25) == pytest.approx(7 / 3)  # 800, 950, 1000
    assert R.late_window(np.array([100]), np.array([5.0]), 1000, 0.1) == 5.0  # nothing late: last value
    assert np.isnan(R.late_window(np.array([]), np.array([]), 1000))
    with pytest.raises(ValueError, match="fraction"):
        R.late_window(steps, vals, 1000, 0.0)


def test_load_runs_pools_globs_and_folders_and_skips_unfinished(tmp_path):
    rows = [train(s, 1.0) for s in (100, 200)]
    fake_run(tmp_path / "v", "exp", {0: rows, 1: rows}, {0: 1.0, 1: 3.0})
    r2 = tmp_path / "v" / "exp__20260101-000001"
    fake_run(tmp_path / "w", "exp", {2: rows, 3: rows}, {2: 5.0}).rename(r2)  # seed 3 still training
    by_folder = R.load_runs(tmp_path / "v")
    by_glob = R.load_runs(str(tmp_path / "v" / "exp__*"), name="g")
    assert [s.seed for s in by_folder.seeds] == [0, 1, 2] and by_folder.name == "v"  # a folder: its name
    assert by_glob.finals().tolist() == [1.0, 3.0, 5.0] and by_glob.name == "g"
    assert len(R.load_runs(tmp_path / "v", finished_only=False)) == 4
    with pytest.raises(RunDirError, match="no metrics.jsonl found"):
        R.load_runs(tmp_path / "nothing")
    unfinished = R.load_runs(tmp_path / "v", finished_only=False)
    with pytest.raises(RunDirError, match="has no final_eval.json .status: running."):
        unfinished.finals()


def test_runs_late_uses_the_window(tmp_path):
    rows = [train(s, float(s)) for s in range(100, 1001, 100)]
    rows.insert(3, {"step": 350, "kind": "eval", keys.EVAL_TRUE_RETURN: 0.0})
    runs = R.load_runs(fake_run(tmp_path, "x", {0: rows}, {0: 0.0}))
    assert runs.late(keys.TRUE_RETURN).tolist() == [950.0]   # 900 and 1000
    assert runs.late(keys.TRUE_RETURN, 0.5).tolist() == [750.0]  # 500 .. 1000


def test_statistics_are_rliable_with_a_fixed_bootstrap_seed():
    from rliable import library as rly
    from rliable import metrics

    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    y = np.array([0.0, 1.0, 1.5, 2.0, 2.5])
    np.random.seed(123)
    iv = R.iqm_ci(x, reps=300)
    assert np.random.randint(1 << 30) == np.random.RandomState(123).randint(1 << 30)  # global RNG put back
    assert iv.value == pytest.approx(3.0)  # the middle 50%: trim one run from each end -> mean of 2, 3, 4
    np.random.seed(0)  # rliable 1.2 draws its bootstrap indices from the global RNG; we seed it with 0
    p, ci = rly.get_interval_estimates({"k": x[:, None]}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=300)
    assert (iv.low, iv.high) == (pytest.approx(ci["k"][0][0]), pytest.approx(ci["k"][1][0]))
    assert R.iqm_ci(x, reps=300) == iv  # reproducible
    assert R.iqm_ci(x, reps=300, seed=1) != iv
    poi = R.probability_of_improvement(x, y, reps=300)
    assert poi.value == pytest.approx(metrics.probability_of_improvement(x[:, None], y[:, None]))
    assert poi.low <= poi.value <= poi.high <= 1.0
    with pytest.raises(ValueError, match="non-finite"):
        R.iqm_ci([1.0, np.nan])


def test_iqm_curve_pointwise(tmp_path):
    seeds = {i: [train(s, float(i)) for s in (100, 200, 300)] for i in range(4)}
    runs = R.load_runs(fake_run(tmp_path, "x", seeds, dict.fromkeys(range(4), 0.0)))
    steps, iqm, lo, hi = R.iqm_curve(runs.curves(keys.TRUE_RETURN, R.TRAIN_KINDS), reps=200)
    assert steps.tolist() == [100, 200, 300]
    np.testing.assert_allclose(iqm, 1.5)  # IQM of 0, 1, 2, 3 is the mean of 1 and 2
    # the vectorised per-step IQM is rliable's aggregate_iqm at every step
    from rliable import metrics

    s = np.random.default_rng(0).normal(size=(7, 1, 5))
    np.testing.assert_allclose(R._iqm_per_step(s), [metrics.aggregate_iqm(s[..., t]) for t in range(5)])
    assert np.all(lo <= iqm) and np.all(iqm <= hi)


def test_rewardlab_results_is_the_public_name_and_import_rewardlab_stays_light():
    import subprocess
    import sys

    code = ("import sys, rewardlab; assert 'rewardlab.experiment.results' not in sys.modules; "
            "assert 'rliable' not in sys.modules and 'matplotlib' not in sys.modules; "
            "import rewardlab.results as r; assert r.load_runs and r.align; assert 'rliable' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
