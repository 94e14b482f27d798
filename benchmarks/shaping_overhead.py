"""Shaping overhead: raw vs shaped steps/s on 8 MiniHack envs in one SyncVectorEnv.

The shaped env adds a 3-term stack (env + step_penalty + potential on the stairs distance)
on top of the *same* SyncVectorEnv instance, so both sides step the same NetHack processes
(separate instances differed by up to 5% depending on which was created first). Both run the
same pre-sampled random actions, in interleaved blocks so machine noise hits both alike;
each block starts from a seeded reset (not timed). Prints SPS of each and the ratio
shaped/raw (target >= 0.95), with the machine's load average before and after (on a busy
machine only the ratio within one run is meaningful).

    python benchmarks/shaping_overhead.py [--env minihack/Room-Random-5x5] [--steps 4000] [--repeats 5]
    python benchmarks/shaping_overhead.py --profile [--steps 4000]
    python benchmarks/shaping_overhead.py --hot

``--profile`` runs the shaped env alone with ``perf_counter`` around each piece of the wrapper's
step, inside the real loop (the pieces run right after a NetHack step, as in training), and
prints microseconds per vector step; nested pieces are indented under the piece that calls
them. The timers themselves cost ~0.2 µs each.

``--hot`` replays one recorded vector step (one where no episode ends, then one where some do)
through the shaped wrapper many times in a row, so the wrapper runs with warm caches: its
floor, to compare with the in-loop overhead (where each piece runs after a NetHack step).
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

import numpy as np

import rewardlab
import rewardlab.core.wrappers as wrappers
from rewardlab.core import ShapedVectorEnv, build_stack

TERMS = ["env", {"name": "step_penalty", "params": {"value": 0.01}},
         {"name": "potential", "params": {"potential": "minihack/stairs_distance"}}]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="minihack/Room-Random-5x5")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--steps", type=int, default=4000, help="vector steps per block")
    p.add_argument("--repeats", type=int, default=5, help="interleaved raw/shaped blocks")
    p.add_argument("--profile", action="store_true", help="time the pieces of the shaped step instead")
    p.add_argument("--hot", action="store_true", help="time the wrapper on replayed steps (warm caches)")
    args = p.parse_args()
    if args.profile:
        profile(args)
        return
    if args.hot:
        hot(args)
        return

    load_before = os.getloadavg()[0]
    raw = rewardlab.make_vec(args.env, args.num_envs)
    shaped = ShapedVectorEnv(raw, build_stack(TERMS, gamma=0.99))
    rng = np.random.default_rng(0)
    actions = rng.integers(0, raw.single_action_space.n, size=(args.steps, args.num_envs))
    times = {"raw": 0.0, "shaped": 0.0}
    cpu = {"raw": 0.0, "shaped": 0.0}
    for rep in range(args.repeats + 1):  # block 0 warms up and is not counted
        order = [("raw", raw), ("shaped", shaped)] if rep % 2 else [("shaped", shaped), ("raw", raw)]
        for name, venv in order:
            venv.reset(seed=rep)  # same episodes for both sides; resets are not timed
            t0, c0 = time.perf_counter(), time.process_time()
            for a in actions:
                venv.step(a)
            if rep:
                times[name] += time.perf_counter() - t0
                cpu[name] += time.process_time() - c0
    n = args.steps * args.num_envs * args.repeats
    sps = {k: n / v for k, v in times.items()}
    cpu_sps = {k: n / v for k, v in cpu.items()}
    print(f"env {args.env}, {args.num_envs} envs, {n:,} env-steps each, stack: {shaped.stack!r}")
    print(f"raw    SPS: {sps['raw']:10.0f}   (per CPU second: {cpu_sps['raw']:.0f})")
    print(f"shaped SPS: {sps['shaped']:10.0f}   (per CPU second: {cpu_sps['shaped']:.0f})")
    print(f"ratio shaped/raw: {sps['shaped'] / sps['raw']:.3f}  (target >= 0.95)")
    # NetHack steps in this process, so CPU time covers all the work but not the time the
    # process waited for a core: on a busy machine this ratio is the steadier one.
    print(f"ratio shaped/raw, CPU time: {cpu_sps['shaped'] / cpu_sps['raw']:.3f}  "
          f"(overhead {(cpu['shaped'] - cpu['raw']) / (args.steps * args.repeats) * 1e6:.1f} us CPU per vector step)")
    print(f"load average (1 min) before -> after: {load_before:.2f} -> {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")


def profile(args: argparse.Namespace) -> None:
    """Per-piece time of the shaped step (µs per vector step), from timers inside the real loop."""
    raw = rewardlab.make_vec(args.env, args.num_envs)
    shaped = ShapedVectorEnv(raw, build_stack(TERMS, gamma=0.99))
    acc: dict[str, float] = defaultdict(float)

    def timed(name, fn):
        def run(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                acc[name] += time.perf_counter() - t0
        return run

    stack = shaped.stack
    # Instance attributes shadow the methods for this run only; module functions are patched
    # in this process (the profile run does nothing else).
    raw_step = raw.step
    shaped.env.step = timed("env.step (NetHack, not overhead)", raw_step)
    for attr, label in [("evaluate", "stack.evaluate"), ("reset", "stack.reset"),
                        ("observe_reset", "stack.observe_reset")]:
        if hasattr(stack, attr):
            setattr(stack, attr, timed(label, getattr(stack, attr)))
    if not hasattr(stack, "evaluate"):  # before the fused stack: the wrapper called stack(t)
        wrappers._evaluate = timed("stack(t)", wrappers._evaluate)
    for term in stack.terms:
        if "_evaluate_into" in vars(type(term)):
            term._evaluate_into = timed(f"  {term.name}._evaluate_into", term._evaluate_into)
        if hasattr(term, "phi"):
            term.phi = timed(f"    {term.name}.phi (also at resets)", term.phi)
    for attr in ("add_all", "add", "finish"):
        if hasattr(shaped._stats, attr):
            setattr(shaped._stats, attr, timed(f"episode stats.{attr}", getattr(shaped._stats, attr)))
    wrappers._replace_rows = timed("final obs (_replace_rows)", wrappers._replace_rows)
    wrappers.merge_final_info = timed("final info (merge_final_info)", wrappers.merge_final_info)

    rng = np.random.default_rng(0)
    actions = rng.integers(0, raw.single_action_space.n, size=(args.steps, args.num_envs))
    for rep in range(2):  # the first pass warms up
        shaped.reset(seed=rep)
        acc.clear()
        t0 = time.perf_counter()
        for a in actions:
            shaped.step(a)
        whole = time.perf_counter() - t0
    us = 1e6 / args.steps
    inner = acc.pop("env.step (NetHack, not overhead)")
    print(f"env {args.env}, {args.num_envs} envs, {args.steps} vector steps, stack: {stack!r}")
    print(f"load average (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'whole shaped step':40s} {whole * us:8.1f} us per vector step")
    print(f"{'env.step (NetHack)':40s} {inner * us:8.1f}")
    print(f"{'overhead (whole - env.step)':40s} {(whole - inner) * us:8.1f}")
    for name, v in acc.items():
        print(f"  {name:38s} {v * us:8.1f}")
    top = sum(v for k, v in acc.items() if not k.startswith(" "))
    print(f"  {'rest of the wrapper (untimed)':38s} {(whole - inner - top) * us:8.1f}")


def hot(args: argparse.Namespace) -> None:
    """µs of wrapper overhead per replayed vector step, with warm caches (the overhead's floor)."""
    raw = rewardlab.make_vec(args.env, args.num_envs)
    shaped = ShapedVectorEnv(raw, build_stack(TERMS, gamma=0.99))
    shaped.reset(seed=0)
    rng = np.random.default_rng(0)
    recorded: dict[str, tuple] = {}
    while len(recorded) < 2:
        out = raw.step(rng.integers(0, raw.single_action_space.n, args.num_envs))
        recorded.setdefault("some episodes end" if (out[2] | out[3]).any() else "no episode ends", out)
    actions = np.zeros(args.num_envs, np.int64)
    print(f"env {args.env}, {args.num_envs} envs, stack: {shaped.stack!r}; "
          f"load average (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for name in ("no episode ends", "some episodes end"):
        shaped.env.step = lambda _a, out=recorded[name]: out
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(3000):
                shaped.step(actions)
            best = min(best, (time.perf_counter() - t0) / 3000)
        print(f"hot wrapper overhead, step where {name}: {best * 1e6:6.1f} us per vector step")


if __name__ == "__main__":
    main()
