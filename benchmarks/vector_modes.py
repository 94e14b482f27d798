"""Sync vs async vs workers vectorisation: steps/s of ``rewardlab.make_vec(..., vectorization_mode=...)`` on MiniHack.

All sides are the same shaped env (3-term stack: env + step_penalty + potential on the stairs
distance, evaluated once per step on the batch in the main process); ``sync`` steps the NetHack
copies one after another in this process, ``async`` steps each copy in its own worker process
(Gymnasium's ``AsyncVectorEnv``: one pipe round trip per copy per step), ``workers`` steps them in
one process per usable core, each a ``SyncVectorEnv`` of its share (``WorkerVectorEnv``: one round
trip per worker per step); ``workers-inline`` is ``workers`` with the first group stepped by the
main process itself (``vector_kwargs={"inline": True}``: one process fewer). All run the same
pre-sampled random actions in interleaved blocks (the order rotates, so machine noise hits all
alike); each block starts from a seeded reset (not timed).

Prints the SPS of each, the ratios to sync, the cores this process may use, the cores each mode
actually used (CPU seconds of this process and its workers per wall-clock second, from /proc) and
the machine load before and after. The worker modes only win when there are idle cores for the
workers: expect their ratios to grow with free cores.

    python benchmarks/vector_modes.py [--env minihack/Room-5x5] [--num-envs 8] [--steps 1000] [--repeats 3]
                                      [--modes sync,async,workers,workers-inline] [--workers K]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import rewardlab

TERMS = ["env", {"name": "step_penalty", "params": {"value": 0.01}},
         {"name": "potential", "params": {"potential": "minihack/stairs_distance"}}]
TICK = os.sysconf("SC_CLK_TCK")


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (``/proc/<pid>/stat``), in seconds."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the line)
    return total / TICK


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="minihack/Room-5x5")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--steps", type=int, default=1000, help="vector steps per block")
    p.add_argument("--repeats", type=int, default=3, help="interleaved blocks per mode (after one warm-up)")
    p.add_argument("--modes", default="sync,async,workers,workers-inline",
                   help="comma list of: sync, async, workers, workers-inline")
    p.add_argument("--workers", type=int, default=0, help="worker processes for 'workers' (default: usable cores)")
    args = p.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]

    print(f"{os.cpu_count()} cores on the machine, {len(os.sched_getaffinity(0))} usable by this process; "
          f"load {load()} (1/5/15 min)", flush=True)
    envs = {}
    for mode in modes:
        vec, _, variant = mode.partition("-")
        vector_kwargs = {}
        if vec == "workers":
            vector_kwargs = {"inline": variant == "inline", **({"workers": args.workers} if args.workers else {})}
        envs[mode] = rewardlab.make_vec(args.env, args.num_envs, reward=TERMS, gamma=0.99, vectorization_mode=vec,
                                        vector_kwargs=vector_kwargs or None)
    pids = {mode: [os.getpid(), *(w.pid for w in getattr(venv.unwrapped, "processes", []))]
            for mode, venv in envs.items()}
    rng = np.random.default_rng(0)
    actions = rng.integers(0, envs[modes[0]].single_action_space.n, size=(args.steps, args.num_envs))
    wall = dict.fromkeys(modes, 0.0)
    cpu = dict.fromkeys(modes, 0.0)
    try:
        for rep in range(args.repeats + 1):  # block 0 warms up and is not counted
            order = modes[rep % len(modes):] + modes[:rep % len(modes)]
            for mode in order:
                venv = envs[mode]
                venv.reset(seed=rep)
                c0, t0 = cpu_seconds(pids[mode]), time.perf_counter()
                for a in actions:
                    venv.step(a)
                if rep:
                    wall[mode] += time.perf_counter() - t0
                    cpu[mode] += cpu_seconds(pids[mode]) - c0
    finally:
        for venv in envs.values():
            venv.close()
    n = args.steps * args.num_envs * args.repeats
    names = [t if isinstance(t, str) else t["name"] for t in TERMS]
    print(f"env {args.env}, {args.num_envs} envs, {n:,} env-steps per mode, stack: {names}")
    for mode in modes:
        procs = len(pids[mode]) - 1
        print(f"{mode:14s} SPS: {n / wall[mode]:8.0f}   cores used: {cpu[mode] / wall[mode]:.2f}"
              f"   worker processes: {procs}")
    ratios = [f"ratio {mode}/sync: {wall['sync'] / wall[mode]:.2f}" for mode in modes if mode != "sync"]
    if "sync" in modes and ratios:
        print("   ".join(ratios))
    print(f"load after: {load()}")


if __name__ == "__main__":
    main()
