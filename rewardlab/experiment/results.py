"""Reading results: run directories → final evaluations and learning curves → IQM and bootstrap CIs.

The one API that every report uses (``rewardlab summary``, ``rewardlab plot``, ``rewardlab compare``
and the scripts); public as ``rewardlab.results``. Nothing here trains.

- ``load_runs(*paths, name=None)`` → ``Runs``: the seeds of one variant. A path is a run directory
  (``config.yaml`` + ``seed_*``), one ``seed_*`` directory, a folder of run directories, or a glob
  of any of these; the seeds of several run directories are pooled.
- ``Runs.finals(metric)``: one number per seed from its ``final_eval.json`` (the unshaped env).
- ``Runs.curves(key, kinds)`` → ``Curves``: every seed on one common step grid (``align``).
- ``Runs.late(key)``: per seed, the mean of ``key`` over the late-training window (``late_window``).
- ``iqm_ci``, ``probability_of_improvement``, ``iqm_curve``: rliable's interquartile mean,
  stratified-bootstrap 95% confidence intervals and P(X > Y), with a fixed bootstrap seed (0) so a
  report is reproducible (see ``_seeded``).

**Alignment policy** (``align``, the only one): each seed is linearly interpolated onto the union
of the steps logged by any seed, restricted to the range every seed covers
(``[max of first steps, min of last steps]``). Why this one:

1. Nothing is extrapolated: outside a seed's own first..last step there is no measurement of it.
2. When the seeds log at the same steps (evaluations, every ``eval.every_steps``; training rows
   when every iteration finishes an episode) the grid *is* those steps and no value is interpolated.
3. Training rows only exist at iterations where an episode ended, so on sparse or long-episode
   tasks seeds log at different steps. Their intersection can be nearly empty, and seed 0's grid
   would drop the other seeds' measurements and depend on which seed comes first; the union keeps
   every measurement and treats the seeds symmetrically.

Seeds that are not finished (no ``final_eval.json``) are left out by default (``finished_only``),
so a seed still training does not cut the common range short.

**Late training** (``late_window``, defined here once): the training rows at steps
≥ (1 − ``fraction``) × the seed's last training step, ``fraction = LATE_FRACTION = 0.1`` unless a
caller says otherwise; if no row in that window has the key, the seed's last logged value is used.

>>> grid, values = align([np.array([0, 10, 20]), np.array([5, 15, 25])],
...                      [np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0])])
>>> grid.tolist(), values.round(2).tolist()
([5, 10, 15, 20], [[0.5, 1.0, 1.5, 2.0], [0.0, 0.5, 1.0, 1.5]])
"""

from __future__ import annotations

import contextlib
import glob as _glob
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.core import keys
from rewardlab.errors import RunDirError

__all__ = [
    "LATE_FRACTION", "REPS", "POI_REPS", "CURVE_REPS", "CONFIDENCE", "TRAIN_KINDS", "EVAL_KINDS", "FINAL_RETURN",
    "FINAL_SUCCESS",
    "SeedRun", "Runs", "Curves", "Interval", "load_runs", "align", "late_window", "iqm_ci",
    "probability_of_improvement", "iqm_curve",
]

LATE_FRACTION = 0.1
"""late training = the last 10% of a seed's training steps"""
REPS = 5_000
"""bootstrap replications of an IQM interval"""
POI_REPS = 2_000
"""bootstrap replications of a probability of improvement (each one runs a Mann-Whitney U test;
2,000 as in rliable's own examples)"""
CURVE_REPS = 2_000
"""bootstrap replications of a learning curve's pointwise intervals"""
CONFIDENCE = 0.95
TRAIN_KINDS = ("train",)
EVAL_KINDS = ("eval", "final")
"""metrics.jsonl rows of the periodic evaluations and the final one (``eval/`` keys)"""
FINAL_RETURN = "true_return_mean"
"""the final evaluation's mean true (unshaped) return, a key of final_eval.json"""
FINAL_SUCCESS = "success_rate"

# File names written by the runner (rewardlab.experiment.runner); repeated here so that reading
# results never imports the runner and its training dependencies.
CONFIG_FILE, STATUS_FILE, METRICS_FILE, FINAL_FILE = "config.yaml", "status.json", "metrics.jsonl", "final_eval.json"


# -- run directories -------------------------------------------------------------------------

@dataclass
class SeedRun:
    """One ``seed_*`` directory: its metrics rows, final evaluation and status."""

    path: Path

    @property
    def seed(self) -> int | None:
        tail = self.path.name.removeprefix("seed_")
        return int(tail) if tail.lstrip("-").isdigit() else None

    @property
    def label(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        text = (self.path / METRICS_FILE).read_text()
        # A crash mid-append can leave a partial last line: ignore it rather than fail the report.
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    @cached_property
    def final(self) -> dict[str, Any] | None:
        path = self.path / FINAL_FILE
        return json.loads(path.read_text()) if path.is_file() else None

    @property
    def status(self) -> str:
        path = self.path / STATUS_FILE
        return json.loads(path.read_text()).get("status", "unknown") if path.is_file() else "unknown"

    @property
    def last_step(self) -> int:
        return max((int(r["step"]) for r in self.rows), default=0)

    def series(self, key: str, kinds: tuple[str, ...] = TRAIN_KINDS) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of ``key`` in the rows of ``kinds``, in order; one value per step (the last)."""
        by_step: dict[int, float] = {}
        for r in self.rows:
            if r.get("kind", "train") in kinds and key in r:
                by_step[int(r["step"])] = float(r[key])
        steps = np.array(sorted(by_step), dtype=np.int64)
        return steps, np.array([by_step[s] for s in steps.tolist()], dtype=np.float64)


@dataclass
class Curves:
    """Seeds aligned on one grid: ``values[i, j]`` is seed ``labels[i]`` at ``steps[j]``."""

    key: str
    steps: np.ndarray
    values: np.ndarray
    labels: list[str]


@dataclass
class Runs:
    """The seeds of one variant (one or more run directories pooled)."""

    name: str
    seeds: list[SeedRun] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.seeds)

    def finals(self, metric: str = FINAL_RETURN) -> np.ndarray:
        """``metric`` of every seed's final evaluation (``final_eval.json``), one value per seed."""
        out = []
        for s in self.seeds:
            if s.final is None:
                raise RunDirError(f"{s.path} has no {FINAL_FILE} (status: {s.status}); finish or resume the run "
                                  "(rewardlab run --resume) or leave it out")
            if s.final.get(metric) is None:
                raise RunDirError(f"{s.path}/{FINAL_FILE} has no value for {metric!r} "
                                  f"(keys: {', '.join(sorted(s.final))})")
            out.append(float(s.final[metric]))
        return np.array(out)

    def has_final(self, metric: str) -> bool:
        return bool(self.seeds) and all(s.final is not None and s.final.get(metric) is not None for s in self.seeds)

    def curves(self, key: str = keys.EVAL_TRUE_RETURN, kinds: tuple[str, ...] = EVAL_KINDS,
               smooth: int = 1) -> Curves:
        """Every seed's ``key`` on the common grid of ``align``; ``smooth`` > 1 first averages each
        seed over a trailing window of that many logged rows (for noisy training curves)."""
        steps, values = [], []
        for s in self.seeds:
            st, v = s.series(key, kinds)
            if len(st) == 0:
                raise RunDirError(f"{s.path}: no {key!r} in {METRICS_FILE} rows of kind {'/'.join(kinds)}")
            steps.append(st)
            values.append(_trailing_mean(v, smooth))
        grid, matrix = align(steps, values, labels=[s.label for s in self.seeds])
        return Curves(key, grid, matrix, [s.label for s in self.seeds])

    def late(self, key: str = keys.TRUE_RETURN, fraction: float = LATE_FRACTION) -> np.ndarray:
        """Per seed, the mean of ``key`` over its late-training window (NaN if never logged)."""
        out = []
        for s in self.seeds:
            steps, values = s.series(key, TRAIN_KINDS)
            last_train = max((int(r["step"]) for r in s.rows if r.get("kind", "train") == "train"), default=0)
            out.append(late_window(steps, values, last_train, fraction))
        return np.array(out)

    def has_key(self, key: str, kinds: tuple[str, ...] = TRAIN_KINDS) -> bool:
        return bool(self.seeds) and all(len(s.series(key, kinds)[0]) > 0 for s in self.seeds)

    def keys(self, prefix: str = "") -> list[str]:
        """Metric keys logged by every seed that start with ``prefix``, sorted."""
        sets = [{k for r in s.rows for k in r if k.startswith(prefix)} for s in self.seeds]
        return sorted(set.intersection(*sets)) if sets else []


def _trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) == 0:
        return values
    c = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def _is_run_dir(p: Path) -> bool:
    return (p / CONFIG_FILE).is_file() and any(p.glob("seed_*"))


def _seed_dirs_of(path: Path) -> list[Path]:
    if (path / METRICS_FILE).is_file():
        return [path]  # a seed directory
    if _is_run_dir(path):
        return sorted(p for p in path.glob("seed_*") if (p / METRICS_FILE).is_file())
    if path.is_dir():  # a folder of run directories (e.g. one variant of `rewardlab compare`)
        return [d for run in sorted(p for p in path.iterdir() if p.is_dir() and _is_run_dir(p))
                for d in _seed_dirs_of(run)]
    return []


def load_runs(*paths: str | Path, name: str | None = None, finished_only: bool = True) -> Runs:
    """The seeds under ``paths`` (run dirs, seed dirs, folders of run dirs, or globs), pooled.

    ``finished_only`` leaves out seeds without a ``final_eval.json`` (still training, crashed);
    ``name`` defaults to the folder's name for a folder of run directories, else to the first run
    directory's experiment name (``<name>__<timestamp>``).
    """
    if not paths:
        raise RunDirError("no run directory given")
    found: list[Path] = []
    for p in paths:
        matches = [Path(m) for m in sorted(_glob.glob(str(p)))] or [Path(p)]
        dirs = [d for m in matches for d in _seed_dirs_of(m)]
        if not dirs:
            raise RunDirError(f"{p}: no {METRICS_FILE} found (expected a run directory written by `rewardlab run`, "
                              "one of its seed_* directories, a folder of run directories, or a glob of them)")
        found += dirs
    seeds = list(dict.fromkeys(d.resolve() for d in found))
    runs = [SeedRun(d) for d in seeds]
    if finished_only:
        kept = [s for s in runs if s.final is not None]
        if not kept:
            raise RunDirError(f"{', '.join(map(str, paths))}: no finished seed (no {FINAL_FILE}; statuses: "
                              f"{', '.join(sorted({s.status for s in runs}))})")
        runs = kept
    if name is None:
        name = _default_name(Path(paths[0]), runs[0].path)
    return Runs(name, runs)


def _default_name(given: Path, first_seed: Path) -> str:
    """A folder of run directories is named by the folder (a ``rewardlab compare`` variant); a run
    directory, seed directory or glob by the experiment name (``<name>__<timestamp>``)."""
    if given.is_dir() and not _is_run_dir(given) and not (given / METRICS_FILE).is_file():
        return given.name
    run = first_seed.parent if first_seed.name.startswith("seed_") else first_seed
    return run.name.split("__")[0]


# -- the alignment policy and the late-training window ---------------------------------------

def align(steps: list[np.ndarray], values: list[np.ndarray],
          labels: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate every seed onto one grid: the union of all seeds' steps inside the range that
    every seed covers (see the module docstring for why). Returns ``(grid, values[seed, step])``."""
    if not steps:
        raise RunDirError("no seed to align")
    labels = labels or [f"seed {i}" for i in range(len(steps))]
    lo = max(int(s[0]) for s in steps)
    hi = min(int(s[-1]) for s in steps)
    if lo > hi:
        ranges = ", ".join(f"{lab}: {int(s[0])}..{int(s[-1])}" for lab, s in zip(labels, steps, strict=True))
        raise RunDirError(f"the seeds' logged step ranges do not overlap ({ranges}); nothing to align")
    grid = np.unique(np.concatenate([np.asarray(s) for s in steps]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    matrix = np.array([np.interp(grid, s, v) for s, v in zip(steps, values, strict=True)])
    return grid, matrix


def late_window(steps: np.ndarray, values: np.ndarray, last_step: int, fraction: float = LATE_FRACTION) -> float:
    """Mean of ``values`` at steps ≥ (1 − fraction) · ``last_step``; the last value if none is in
    the window; NaN if there is no value at all.

    >>> late_window(np.array([100, 200, 900, 1000]), np.array([0.0, 1.0, 3.0, 5.0]), 1000, 0.1)
    4.0
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"late-training fraction must be in (0, 1], got {fraction}")
    if len(values) == 0:
        return float("nan")
    mask = np.asarray(steps) >= (1.0 - fraction) * last_step
    return float(np.mean(values[mask])) if mask.any() else float(values[-1])


# -- statistics (rliable) --------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap confidence interval over ``n`` runs."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def _runs_matrix(scores: Any, what: str) -> np.ndarray:
    x = np.asarray(scores, dtype=np.float64).reshape(-1, 1)  # rliable: (runs, tasks); one task here
    if len(x) == 0:
        raise ValueError(f"{what}: no scores")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: non-finite scores {x.ravel().tolist()}")
    return x


def _iqm(scores: np.ndarray) -> np.ndarray:
    from rliable import metrics

    return np.array([metrics.aggregate_iqm(scores)])


def iqm_ci(scores: Any, *, reps: int = REPS, seed: int = 0, confidence: float = CONFIDENCE) -> Interval:
    """Interquartile mean of per-run ``scores`` and its stratified-bootstrap CI (rliable).

    The IQM is the mean of the middle 50% of runs (scipy's ``trim_mean(x, 0.25)``): robust to one
    outlying seed, less noisy than the median. With fewer than 4 runs nothing is trimmed and it is
    the mean.
    """
    from rliable import library as rly

    x = _runs_matrix(scores, "iqm_ci")
    with _seeded(seed):
        point, ci = rly.get_interval_estimates({"x": x}, _iqm, reps=reps, confidence_interval_size=confidence)
    return Interval(float(point["x"][0]), float(ci["x"][0][0]), float(ci["x"][1][0]), len(x))


def probability_of_improvement(x: Any, y: Any, *, reps: int = POI_REPS, seed: int = 0,
                               confidence: float = CONFIDENCE) -> Interval:
    """P(X > Y): the probability that a random run of X scores higher than a random run of Y (ties
    count half; the Mann-Whitney U statistic / (n·m)), with its stratified-bootstrap CI (rliable).
    0.5 means no difference; ``n`` is the number of runs of X."""
    from rliable import library as rly
    from rliable import metrics

    a, b = _runs_matrix(x, "probability_of_improvement"), _runs_matrix(y, "probability_of_improvement")
    with _seeded(seed):
        point, ci = rly.get_interval_estimates({"p": (a, b)}, metrics.probability_of_improvement, reps=reps,
                                               confidence_interval_size=confidence)
    lo, hi = np.ravel(ci["p"])[:2]
    return Interval(float(np.ravel(point["p"])[0]), float(lo), float(hi), len(a))


def _iqm_per_step(scores: np.ndarray) -> np.ndarray:
    """``metrics.aggregate_iqm`` at every step of ``scores[runs, tasks, steps]``, in one call: the
    same ``scipy.stats.trim_mean(·, 0.25)`` over runs × tasks that rliable applies, vectorised over
    steps (a Python loop of ``aggregate_iqm`` inside every bootstrap replication is ~60× slower)."""
    import scipy.stats

    return scipy.stats.trim_mean(scores.reshape(-1, scores.shape[-1]), proportiontocut=0.25, axis=0)


def iqm_curve(curves: Curves, *, reps: int = CURVE_REPS, max_points: int = 60, seed: int = 0,
              confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """IQM over seeds at each step of ``curves`` with pointwise stratified-bootstrap CIs (rliable's
    ``get_interval_estimates`` on a ``(runs, 1, steps)`` score array, as in rliable's sample-efficiency
    curves), at up to ``max_points`` evenly spaced grid points. Returns ``(steps, iqm, low, high)``."""
    from rliable import library as rly

    idx = np.unique(np.linspace(0, len(curves.steps) - 1, min(max_points, len(curves.steps))).round().astype(int))
    scores = curves.values[:, idx][:, None, :]  # (runs, tasks=1, steps)
    with _seeded(seed):
        point, ci = rly.get_interval_estimates({"c": scores}, _iqm_per_step, reps=reps,
                                               confidence_interval_size=confidence)
    return curves.steps[idx], point["c"], ci["c"][0], ci["c"][1]


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """rliable 1.2 draws its bootstrap indices from NumPy's *global* RNG (``np.random.choice`` in
    ``StratifiedBootstrap.update_indices``); its ``random_state`` argument never reaches them. So a
    report is made reproducible by seeding the global RNG for the call, and the caller's global
    RNG state is put back afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)
