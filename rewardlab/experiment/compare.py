"""``rewardlab compare``: variants of one experiment file × seeds, through the runner, then one table.

A variant is the experiment file with ``--set`` overrides: ``NAME="--set KEY=VALUE [--set ...]"``.
The file as it is (plus the command's own ``--set``) is always the first variant, named ``base``,
unless ``--no-base``; the first variant is the baseline of the probability of improvement.

Output directory (default ``<log.dir>/compare/<experiment name>``)::

    OUT/
      compare.json               the file, the variants (name → overrides), the seeds
      <variant>/<name>__<stamp>/  one run directory per (variant, seed), written by the runner
      results.json, compare.png   the table as data, final-return intervals + learning curves

Running the same command again into the same directory skips every (variant, seed) whose run
finished, resumes the ones that were interrupted (from their checkpoint) and starts the rest; a
run directory of the same variant and seed with a *different* config is an error (use another
``--out``), never silently mixed in.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rewardlab.errors import ConfigError, RunDirError
from rewardlab.experiment import results as R

__all__ = ["Variant", "ComparePlan", "Job", "VariantResult", "parse_seeds", "parse_variant", "plan_compare",
           "run_compare", "load_compare", "compare_results", "BASE"]

BASE = "base"
PLAN_FILE, RESULTS_FILE, PNG_FILE = "compare.json", "results.json", "compare.png"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


# -- parsing ---------------------------------------------------------------------------------

def parse_seeds(text: str) -> list[int]:
    """``0-4`` → [0, 1, 2, 3, 4]; ``0,1,2``; ``0-2,7``. Duplicates are dropped, order kept.

    >>> parse_seeds("0-2,7")
    [0, 1, 2, 7]
    """
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part) or re.fullmatch(r"(\d+)", part)
        if not part or m is None:
            raise ConfigError(f"--seeds expects non-negative integers and ranges, like 0-4 or 0,1,2 or 0-2,7; "
                              f"got {text!r} (bad part {part!r})")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.lastindex == 2 else lo
        if hi < lo:
            raise ConfigError(f"--seeds: range {part!r} is empty (the end is smaller than the start)")
        out += [s for s in range(lo, hi + 1) if s not in out]
    return out


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: tuple[str, ...] = ()


def parse_variant(text: str) -> Variant:
    """``NAME=--set KEY=VALUE [--set KEY=VALUE ...]`` (one shell word, quoted after ``=``).

    >>> parse_variant("sparse=--set reward.terms=[env] --set=agent.gamma=0.9")
    Variant(name='sparse', overrides=('reward.terms=[env]', 'agent.gamma=0.9'))
    """
    usage = 'expected NAME="--set KEY=VALUE [--set KEY=VALUE ...]", e.g. sparse="--set reward.terms=[env]"'
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name or name.startswith("-"):
        raise ConfigError(f"--variant {text!r}: {usage}")
    if not _NAME.match(name):
        raise ConfigError(f"--variant {text!r}: the name {name!r} must be letters, digits and _ . + - "
                          "(it names a directory)")
    try:
        tokens = shlex.split(rest)
    except ValueError as e:
        raise ConfigError(f"--variant {name}: cannot split {rest!r} ({e}); {usage}") from None
    overrides: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--set":
            if i + 1 >= len(tokens):
                raise ConfigError(f"--variant {name}: --set at the end has no KEY=VALUE; {usage}")
            value, i = tokens[i + 1], i + 2
        elif tok.startswith("--set="):
            value, i = tok.removeprefix("--set="), i + 1
        else:
            raise ConfigError(f"--variant {name}: unexpected {tok!r} in {rest!r}; {usage}")
        if "=" not in value or value.startswith("="):
            raise ConfigError(f"--variant {name}: --set expects KEY=VALUE, got {value!r}")
        overrides.append(value)
    return Variant(name, tuple(overrides))


# -- the plan --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    variant: str
    seed: int
    config: dict[str, Any]
    """the resolved config of this (variant, seed): ``train.seeds == [seed]``"""
    out: Path
    """the variant's folder; the runner makes ``<name>__<stamp>`` under it"""


@dataclass
class ComparePlan:
    file: Path
    variants: list[Variant]
    seeds: list[int]
    out: Path
    overrides: list[str] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)


def plan_compare(file: str | Path, variants: list[Variant], *, seeds: list[int] | None = None,
                 out: str | Path | None = None, base: bool = True, overrides: list[str] | None = None) -> ComparePlan:
    """Validate every variant's config (unknown ``--set`` paths and bad values stop here, before
    anything runs) and list the (variant, seed) jobs, seed-major (all variants of seed 0 first)."""
    from rewardlab.config import dump_config, load_config

    overrides = list(overrides or [])
    variants = list(variants)
    if base:
        if any(v.name == BASE for v in variants):
            raise ConfigError(f"--variant: the name {BASE!r} is the file as it is; give --no-base to define "
                              f"your own {BASE!r}, or pick another name")
        variants.insert(0, Variant(BASE))
    if not variants:
        raise ConfigError("nothing to compare: give --variant NAME=\"--set ...\" (or drop --no-base)")
    names = [v.name for v in variants]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"--variant: duplicate name(s) {dup}")
    for v in variants:
        if not v.overrides and v.name != BASE and base:
            raise ConfigError(f"--variant {v.name}: no --set, so it is the same as {BASE!r}")
    base_cfg, _ = load_config(file, overrides)
    seeds = list(seeds) if seeds is not None else list(base_cfg.train.seeds)
    out = Path(out) if out is not None else Path(base_cfg.log.dir) / "compare" / base_cfg.name
    plan = ComparePlan(Path(file), variants, seeds, out, overrides)
    configs = {}
    for v in variants:
        try:
            cfg, _ = load_config(file, [*overrides, *v.overrides])
        except ConfigError as e:
            raise ConfigError(f"variant {v.name!r}: {e}") from None
        configs[v.name] = cfg
    for seed in seeds:
        for v in variants:
            cfg = configs[v.name].model_copy(deep=True)
            cfg.train.seeds = [seed]
            data = yaml.safe_load(dump_config(cfg))
            plan.jobs.append(Job(v.name, seed, data, out / v.name))
    return plan


def _write_plan(plan: ComparePlan) -> None:
    plan.out.mkdir(parents=True, exist_ok=True)
    data = {"file": str(plan.file), "overrides": plan.overrides, "seeds": plan.seeds,
            "variants": [{"name": v.name, "overrides": list(v.overrides)} for v in plan.variants]}
    (plan.out / PLAN_FILE).write_text(json.dumps(data, indent=2) + "\n")


# -- running ---------------------------------------------------------------------------------

@dataclass
class JobEvent:
    """A job's progress: ``state`` is started | resumed | skipped | progress | done."""

    variant: str
    seed: int
    state: str
    step: int = 0
    total: int = 0
    true_return: float | None = None
    final: float | None = None
    seconds: float = 0.0
    run_dir: str | None = None


def _existing(job: Job) -> Path | None:
    """The run directory of ``job`` already under its variant folder, if any (same config)."""
    if not job.out.is_dir():
        return None
    for run in sorted(job.out.iterdir()):
        cfg_path = run / R.CONFIG_FILE
        if not cfg_path.is_file() or not any(run.glob("seed_*")):
            continue  # killed before its seed directory existed: nothing to resume, start afresh
        stored = yaml.safe_load(cfg_path.read_text())
        if (stored.get("train") or {}).get("seeds") != [job.seed]:
            continue
        if stored != job.config:
            changed = sorted(k for k in set(stored) | set(job.config) if stored.get(k) != job.config.get(k))
            raise ConfigError(
                f"{run} holds variant {job.variant!r}, seed {job.seed} with a different config (sections "
                f"{', '.join(changed)} differ); rerun with another --out, or delete that run directory")
        return run
    return None


def _run_job(job: Job, on_event: Callable[[JobEvent], None] | None) -> JobEvent:
    """Run, resume or skip one (variant, seed); returns its ``done``/``skipped`` event."""
    from rewardlab.config import parse_config
    from rewardlab.experiment.runner import run_experiment

    t0 = time.time()
    existing = _existing(job)
    seed_dir = None if existing is None else existing / f"seed_{job.seed}"
    emit = on_event or (lambda e: None)
    if seed_dir is not None and (seed_dir / R.FINAL_FILE).is_file():
        final = json.loads((seed_dir / R.FINAL_FILE).read_text())[R.FINAL_RETURN]
        return JobEvent(job.variant, job.seed, "skipped", final=final, run_dir=str(existing))
    total = int(job.config["train"]["total_steps"])
    emit(JobEvent(job.variant, job.seed, "resumed" if existing else "started", total=total))
    last = [0.0]

    def progress(seed: int, step: int, total: int, sps: float, ret: float | None) -> None:
        now = time.time()
        if now - last[0] >= 0.5 or step >= total:
            last[0] = now
            emit(JobEvent(job.variant, job.seed, "progress", step, total, ret))

    if existing is not None:
        summary = run_experiment(resume=existing, on_progress=progress)
    else:
        cfg = parse_config(job.config, f"variant {job.variant}, seed {job.seed}")
        summary = run_experiment(cfg, out=job.out, on_progress=progress)
    final = summary.seeds[0].final[R.FINAL_RETURN]
    return JobEvent(job.variant, job.seed, "done", total, total, final=final, seconds=time.time() - t0,
                    run_dir=str(summary.run_dir))


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)  # K trainings share the cores; no thread oversubscription


def _worker_job(job: Job, queue: Any) -> JobEvent:
    return _run_job(job, queue.put)


def run_compare(plan: ComparePlan, *, workers: int = 1,
                on_event: Callable[[JobEvent], None] | None = None) -> list[JobEvent]:
    """Run every job of ``plan`` (at most ``workers`` processes at a time); returns the final events."""
    if workers < 1:
        raise ConfigError(f"--workers must be ≥ 1, got {workers}")
    _write_plan(plan)
    emit = on_event or (lambda e: None)
    for job in plan.jobs:  # refuse a conflicting output directory before training anything
        _existing(job)
    if workers == 1:
        out = []
        for job in plan.jobs:
            ev = _run_job(job, emit)
            emit(ev)
            out.append(ev)
        return out
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")  # torch and NLE do not survive fork with threads
    events: list[JobEvent] = []
    with ctx.Manager() as manager:
        q = manager.Queue()
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as pool:
            pending = {pool.submit(_worker_job, job, q) for job in plan.jobs}
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                while True:
                    try:
                        emit(q.get_nowait())
                    except queue_mod.Empty:
                        break
                for f in done:
                    ev = f.result()  # a failed run raises here, after its status.json says why
                    emit(ev)
                    events.append(ev)
    return events


# -- reporting -------------------------------------------------------------------------------

@dataclass
class VariantResult:
    name: str
    runs: R.Runs
    final: R.Interval
    """IQM of the final true return over seeds, with its 95% CI"""
    improvement: R.Interval | None
    """P(this variant's final true return > the baseline's), with its 95% CI (None for the baseline)"""
    success: R.Interval | None
    """IQM of the final success rate, when the env reports success"""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seeds": len(self.runs),
                "final_true_return": self.runs.finals().tolist(),
                "final_true_return_iqm": self.final.as_dict(),
                "probability_of_improvement": None if self.improvement is None else self.improvement.as_dict(),
                "success_rate_iqm": None if self.success is None else self.success.as_dict()}


def compare_results(runs: list[R.Runs], *, reps: int | None = None, seed: int = 0) -> list[VariantResult]:
    """IQM + CI of the final true return per variant, P(improvement) over ``runs[0]``, success IQM.
    ``reps`` bootstrap replications for every interval (default: ``results.REPS`` for IQMs,
    ``results.POI_REPS`` for probabilities of improvement)."""
    if not runs:
        raise RunDirError("no variant to report")
    iqm_reps, poi_reps = reps or R.REPS, reps or R.POI_REPS
    base = runs[0].finals()
    out = []
    for i, r in enumerate(runs):
        finals = r.finals()
        success = None
        if r.has_final(R.FINAL_SUCCESS):
            success = R.iqm_ci(r.finals(R.FINAL_SUCCESS), reps=iqm_reps, seed=seed)
        poi = None if i == 0 else R.probability_of_improvement(finals, base, reps=poi_reps, seed=seed)
        out.append(VariantResult(r.name, r, R.iqm_ci(finals, reps=iqm_reps, seed=seed), poi, success))
    return out


def load_compare(sources: list[str], *, finished_only: bool = True) -> tuple[list[R.Runs], Path | None]:
    """The variants to report: one ``rewardlab compare`` output directory (variants in its order),
    or ``NAME=PATH`` items (a run directory, a folder of them, or a glob). Returns ``(runs, dir)``
    where ``dir`` is the compare directory (None for ``NAME=PATH`` items)."""
    if len(sources) == 1 and "=" not in sources[0]:
        root = Path(sources[0])
        plan_path = root / PLAN_FILE
        if not plan_path.is_file():
            raise RunDirError(f"{root} is not a `rewardlab compare` directory (no {PLAN_FILE}); give NAME=RUN_DIR "
                              "items to compare arbitrary run directories")
        plan = json.loads(plan_path.read_text())
        runs = []
        for v in plan["variants"]:
            folder = root / v["name"]
            if not folder.is_dir():
                raise RunDirError(f"{folder}: variant {v['name']!r} has no runs yet (rerun the compare command)")
            runs.append(R.load_runs(folder, name=v["name"], finished_only=finished_only))
        return runs, root
    runs = []
    for item in sources:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise RunDirError(f"--from {item!r}: expected a compare directory or NAME=RUN_DIR (a glob is fine)")
        runs.append(R.load_runs(path, name=name, finished_only=finished_only))
    return runs, None


def format_table(rows: list[VariantResult]) -> list[list[str]]:
    """Header + one row per variant, as strings (the CLI prints them with rich)."""
    base = rows[0].name
    header = ["variant", "seeds", "final true return (IQM)", "95% CI", f"P(> {base})", "95% CI"]
    with_success = any(r.success is not None for r in rows)
    if with_success:
        header += ["success rate (IQM)", "95% CI"]
    table = [header]
    for r in rows:
        cells = [r.name, str(len(r.runs)), f"{r.final.value:.3f}", f"[{r.final.low:.3f}, {r.final.high:.3f}]"]
        if r.improvement is None:
            cells += ["(baseline)", ""]
        else:
            cells += [f"{r.improvement.value:.2f}", f"[{r.improvement.low:.2f}, {r.improvement.high:.2f}]"]
        if with_success:
            s = r.success
            cells += ["-", ""] if s is None else [f"{s.value:.3f}", f"[{s.low:.3f}, {s.high:.3f}]"]
        table.append(cells)
    return table


def write_results(rows: list[VariantResult], path: Path, *, reps: int | None = None) -> Path:
    data = {"metric": f"final_eval.json:{R.FINAL_RETURN}", "aggregate": "IQM", "ci": R.CONFIDENCE,
            "bootstrap": {"method": "stratified, percentile", "seed": 0,
                          "reps_iqm": reps or R.REPS, "reps_probability_of_improvement": reps or R.POI_REPS},
            "baseline": rows[0].name, "variants": [r.as_dict() for r in rows]}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def finals_per_seed(rows: list[VariantResult]) -> dict[str, list[float]]:
    return {r.name: np.round(r.runs.finals(), 4).tolist() for r in rows}
