"""SWE sandbox throughput and overhead, measured side by side in one run.

Prints:
- the machine (cores, load average at start and end);
- corpus throughput of split runs (what the SWE envs use: tests and code in two processes),
  old path vs new path in one run: test-suite evaluations per second over every task's buggy
  and fixed repo, with a warm pool of ``--workers`` sandbox workers (``run_many``), for
  ``Sandbox(preload=False)`` (before issue #22) and the default ``Sandbox()`` (warm collection:
  pytest's plugins preloaded by the zygote, whose heap is frozen out of the GC, and host-rewritten
  test bytecode). The two alternate for ``--rounds`` rounds (old/new, then new/old, ...) so load
  drift hits both; the ratio new/old of evaluations/s and of CPU per evaluation is the claim;
- the same corpus as plain runs (one process), new path;
- per-evaluation time on one task: warm sandbox (1 worker, split and plain) vs plain
  ``python -m pytest`` in a temp copy (the reference a naive harness would use) vs a cold
  sandbox (a new worker per run: namespace and view setup + interpreter + pytest import), and
  the ratios.

    .venv/bin/python benchmarks/swe_sandbox.py [--workers 2] [--rounds 2] [--reps 20]
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
    ap.add_argument("--rounds", type=int, default=2, help="old/new alternations of the corpus pass")
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    tasks, _ = load_corpus()
    repos = [(t, t.files) for t in tasks] + [(t, t.fix.apply(t.files)) for t in tasks]
    split_jobs = [t.split_job(files) for t, files in repos]
    plain_jobs = [(files, t.targets) for t, files in repos]

    print(f"cpus: {os.cpu_count()} (workers: {args.workers}), load average at start: "
          f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1/5/15 min)")
    paths = {"old": Sandbox(workers=args.workers, preload=False), "new": Sandbox(workers=args.workers)}
    totals = {name: [0, 0.0, 0.0] for name in paths}  # evaluations, wall s, CPU s
    verdicts: dict[str, list] = {}
    try:
        print("containment:", {k: v for k, v in paths["new"].info.items() if k not in ("bound", "hidden")})
        for sb in paths.values():
            sb.run_many(split_jobs[: args.workers * 2], split=True)  # start and warm the workers
        for r in range(args.rounds):
            for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
                t0 = time.perf_counter()
                runs = paths[name].run_many(split_jobs, split=True)
                dt = time.perf_counter() - t0
                cpu = sum(x.cpu_s for x in runs)
                totals[name][0] += len(runs)
                totals[name][1] += dt
                totals[name][2] += cpu
                verdicts.setdefault(name, [x.outcomes for x in runs])
                print(f"  round {r + 1}, {name} path: {len(runs)} split evaluations in {dt:.2f} s -> "
                      f"{len(runs) / dt:.1f}/s, CPU {cpu / len(runs) * 1000:.0f} ms per evaluation, "
                      f"{sum(x.status == 'ok' for x in runs)} completed, load {os.getloadavg()[0]:.1f}")
        rate = {k: n / wall for k, (n, wall, _c) in totals.items()}
        cpu_ms = {k: c / n * 1000 for k, (n, _w, c) in totals.items()}
        for k in ("old", "new"):
            print(f"split runs, {k} path: {totals[k][0]} evaluations ({len(tasks)} tasks x buggy/fixed x "
                  f"{args.rounds} rounds) -> {rate[k]:.1f} evaluations/s with {args.workers} warm workers; CPU per "
                  f"evaluation (all processes of the run) {cpu_ms[k]:.0f} ms -> at most "
                  f"{args.workers * 1000 / cpu_ms[k]:.1f}/s on {args.workers} otherwise idle cores")
        print(f"new / old: evaluations/s x{rate['new'] / rate['old']:.2f}, CPU per evaluation "
              f"x{cpu_ms['new'] / cpu_ms['old']:.2f}; same outcomes on all {len(split_jobs)} repos: "
              f"{verdicts['old'] == verdicts['new']}")
        sb = paths["new"]
        t0 = time.perf_counter()
        runs = sb.run_many(plain_jobs)
        dt = time.perf_counter() - t0
        cpu = sum(r.cpu_s for r in runs) / len(runs)
        print(f"plain runs, new path: {len(runs)} evaluations in {dt:.2f} s -> {len(runs) / dt:.1f} evaluations/s; "
              f"CPU per evaluation {cpu * 1000:.0f} ms")
    finally:
        for sb in paths.values():
            sb.close()

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
