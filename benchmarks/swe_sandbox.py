"""SWE sandbox throughput and overhead, measured side by side in one run.

Prints:
- corpus throughput: test-suite evaluations per second over every task's buggy and fixed
  repo, with a warm pool of ``--workers`` sandbox workers (``run_many``), as split runs (what
  the SWE envs use: tests and code in two processes) and as plain runs (one process);
- per-evaluation time on one task: warm sandbox (1 worker, split and plain) vs plain
  ``python -m pytest`` in a temp copy (the reference a naive harness would use) vs a cold
  sandbox (a new worker per run: namespace and view setup + interpreter + pytest import), and
  the ratios.

    .venv/bin/python benchmarks/swe_sandbox.py [--workers 2] [--reps 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

from rewardlab.envs.swe.corpus import load_corpus
from rewardlab.envs.swe.sandbox import Sandbox, run_plain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    tasks, _ = load_corpus()
    repos = [(t, t.files) for t in tasks] + [(t, t.fix.apply(t.files)) for t in tasks]
    split_jobs = [t.split_job(files) for t, files in repos]
    plain_jobs = [(files, t.targets) for t, files in repos]

    print(f"cpus: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}")
    with Sandbox(workers=args.workers) as sb:
        print("containment:", {k: v for k, v in sb.info.items() if k not in ("bound", "hidden")})
        sb.run_many(split_jobs[: args.workers * 2], split=True)  # start the workers
        for mode, jobs in (("split", split_jobs), ("plain", plain_jobs)):
            t0 = time.perf_counter()
            runs = sb.run_many(jobs, split=mode == "split")
            dt = time.perf_counter() - t0
            ok = sum(r.status == "ok" for r in runs)
            cpu = sum(r.cpu_s for r in runs) / len(runs)
            print(f"{mode} runs: {len(jobs)} evaluations ({len(tasks)} tasks x buggy/fixed, {ok} completed) in "
                  f"{dt:.2f} s with {args.workers} warm workers -> {len(jobs) / dt:.1f} evaluations/s; CPU per "
                  f"evaluation (all processes of the run) {cpu * 1000:.0f} ms -> at most {args.workers / cpu:.1f}/s "
                  f"on {args.workers} otherwise idle cores")

    task = tasks[0]
    files = task.files
    warm, warm_plain, plain, cold, warm_cpu, plain_cpu = [], [], [], [], [], []
    with Sandbox(workers=1) as sb:
        sb.run_split(*task.split_job(files))
        for _ in range(args.reps):
            t0 = time.perf_counter()
            warm_cpu.append(sb.run_split(*task.split_job(files)).cpu_s)
            warm.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            sb.run(files, task.targets)
            warm_plain.append(time.perf_counter() - t0)
    for _ in range(args.reps):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        plain.append(run_plain(files, task.targets)[1])
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        plain_cpu.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
    for _ in range(max(args.reps // 4, 3)):
        t0 = time.perf_counter()
        with Sandbox(workers=1) as sb:
            sb.run_split(*task.split_job(files))
        cold.append(time.perf_counter() - t0)
    w, wp, p, c = (statistics.median(x) for x in (warm, warm_plain, plain, cold))
    print(f"one task ({task.task_id}, {len(task.tests)} tests), median over runs:")
    print(f"  warm sandbox, split {w * 1000:7.1f} ms")
    print(f"  warm sandbox, plain {wp * 1000:7.1f} ms")
    print(f"  plain pytest        {p * 1000:7.1f} ms  (python -m pytest in a temp copy, no limits)")
    print(f"  cold sandbox, split {c * 1000:7.1f} ms  (new worker per run)")
    wc, pc = statistics.median(warm_cpu), statistics.median(plain_cpu)
    print(f"  CPU per run: warm split run {wc * 1000:.0f} ms, plain pytest process {pc * 1000:.0f} ms "
          f"(ratio {wc / pc:.2f})")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    print(f"  overhead ratio warm split / plain pytest = {w / p:.2f}; warm plain / plain pytest = {wp / p:.2f}; "
          f"cold split / plain = {c / p:.2f}")


if __name__ == "__main__":
    main()
