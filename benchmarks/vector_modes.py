"""Sync vs async vs workers vectorisation: steps/s of ``rewardlab.make_vec(..., vectorization_mode=...)`` on MiniHack.

All sides are the same shaped env (3-term stack: env + step_penalty + potential on the stairs
distance, evaluated once per step on the batch in the main process); ``sync`` steps the NetHack
copies one after another in this process, ``async`` steps each copy in its own worker process
(Gymnasium's ``AsyncVectorEnv``: one pipe round trip per copy per step), ``workers`` steps them in
one process per usable core, each a ``SyncVectorEnv`` of its share (``WorkerVectorEnv``: one round
trip per worker per step); ``workers-inline`` is ``workers`` with the first group stepped by the
main process itself (``vector_kwargs={"inline": True}``: one process fewer); ``workers-unpinned``
is ``workers`` without pinning each worker to its own core (``vector_kwargs={"pin": False}``). ``pipelined`` splits
the copies into one group per usable core, each a ``workers`` env with one worker pinned to its
core, and overlaps the main process's work with the stepping: it collects a group's step
(``step_wait``), does that group's "agent" work and sends the group its next actions
(``step_async``) while the other groups step. ``--agent-us`` adds that agent work to every mode:
busy CPU in the main process per env step, before each step (as an agent's inference would;
our PPO spends ~115 µs per env step outside ``env.step`` on Room-5x5). All run the same
pre-sampled random actions in interleaved blocks (the order rotates, so machine noise hits all
alike); each block starts from a seeded reset (not timed).

Prints the SPS of each, the ratios to sync, the cores this process may use, the cores each mode
actually used (CPU seconds of this process and its workers per wall-clock second, from /proc) and
the machine load before and after. The worker modes only win when there are idle cores for the
workers: expect their ratios to grow with free cores.

    python benchmarks/vector_modes.py [--env minihack/Room-5x5] [--num-envs 8] [--steps 1000] [--repeats 3]
                                      [--modes sync,async,workers,workers-inline,pipelined] [--workers K]
                                      [--agent-us 0]
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


def busy(seconds: float) -> None:
    """Hold the CPU for ``seconds`` (the stand-in for an agent's work)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class Pipelined:
    """One shaped ``workers`` env per usable core (one worker each, pinned), stepped with
    ``step_async``/``step_wait`` so the main process's per-group work overlaps the others' steps."""

    def __init__(self, env: str, num_envs: int, agent_s: float):
        from rewardlab.core.threads import usable_core_ids
        from rewardlab.envs.workers import split_sizes

        cores = usable_core_ids() or [0]  # (Linux-only script: /proc, affinity)
        self.sizes = split_sizes(num_envs, len(cores))
        self.groups = [rewardlab.make_vec(env, n, reward=TERMS, gamma=0.99, vectorization_mode="workers",
                                          vector_kwargs={"workers": 1, "pin": [cores[g % len(cores)]]})
                       for g, n in enumerate(self.sizes)]
        self.bounds = np.cumsum((0, *self.sizes))
        self.agent_s = agent_s
        self.single_action_space = self.groups[0].single_action_space
        self.processes = [w for g in self.groups for w in g.unwrapped.processes]
        self.unwrapped = self  # (the main loop reads venv.unwrapped.processes)

    def reset(self, seed: int) -> None:
        for g, venv in enumerate(self.groups):
            venv.reset(seed=seed + int(self.bounds[g]))

    def run(self, actions: np.ndarray) -> None:
        """Every row of ``actions`` as one vector step of every group, pipelined."""
        b = self.bounds
        for g, venv in enumerate(self.groups):
            busy(self.agent_s * self.sizes[g])
            venv.step_async(actions[0, b[g]:b[g + 1]])
        for a in actions[1:]:
            for g, venv in enumerate(self.groups):
                venv.step_wait()
                busy(self.agent_s * self.sizes[g])
                venv.step_async(a[b[g]:b[g + 1]])
        for venv in self.groups:
            venv.step_wait()

    def close(self) -> None:
        for venv in self.groups:
            venv.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="minihack/Room-5x5")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--steps", type=int, default=1000, help="vector steps per block")
    p.add_argument("--repeats", type=int, default=3, help="interleaved blocks per mode (after one warm-up)")
    p.add_argument("--modes", default="sync,async,workers,workers-inline",
                   help="comma list of: sync, async, workers, workers-inline, workers-unpinned, pipelined")
    p.add_argument("--workers", type=int, default=0, help="worker processes for 'workers' (default: usable cores)")
    p.add_argument("--agent-us", type=float, default=0.0,
                   help="busy CPU of the main process per env step before it steps (a stand-in for an agent)")
    args = p.parse_args()
    agent_s = args.agent_us * 1e-6
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]

    print(f"{os.cpu_count()} cores on the machine, {len(os.sched_getaffinity(0))} usable by this process; "
          f"load {load()} (1/5/15 min)", flush=True)
    envs = {}
    for mode in modes:
        if mode == "pipelined":
            envs[mode] = Pipelined(args.env, args.num_envs, agent_s)
            continue
        vec, _, variant = mode.partition("-")
        vector_kwargs = {}
        if vec == "workers":
            vector_kwargs = {"inline": variant == "inline", "pin": variant != "unpinned",
                             **({"workers": args.workers} if args.workers else {})}
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
                if mode == "pipelined":
                    venv.run(actions)
                else:
                    for a in actions:
                        busy(agent_s * args.num_envs)
                        venv.step(a)
                if rep:
                    wall[mode] += time.perf_counter() - t0
                    cpu[mode] += cpu_seconds(pids[mode]) - c0
    finally:
        for venv in envs.values():
            venv.close()
    n = args.steps * args.num_envs * args.repeats
    names = [t if isinstance(t, str) else t["name"] for t in TERMS]
    print(f"env {args.env}, {args.num_envs} envs, {n:,} env-steps per mode, stack: {names}, "
          f"agent work {args.agent_us:g} us per env step")
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
