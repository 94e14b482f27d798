"""Shaping overhead: raw vs shaped steps/s on 8 MiniHack envs in one SyncVectorEnv.

The shaped env adds a 3-term stack (env + step_penalty + potential on the stairs distance)
on top of the *same* SyncVectorEnv instance, so both sides step the same NetHack processes
(separate instances differed by up to 5% depending on which was created first). Both run the
same pre-sampled random actions, in interleaved blocks so machine noise hits both alike;
each block starts from a seeded reset (not timed). Prints SPS of each and the ratio
shaped/raw (target >= 0.95).

    python benchmarks/shaping_overhead.py [--env minihack/Room-Random-5x5] [--steps 4000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import rewardlab
from rewardlab.core import ShapedVectorEnv, build_stack

TERMS = ["env", {"name": "step_penalty", "params": {"value": 0.01}},
         {"name": "potential", "params": {"potential": "minihack/stairs_distance"}}]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="minihack/Room-Random-5x5")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--steps", type=int, default=4000, help="vector steps per block")
    p.add_argument("--repeats", type=int, default=5, help="interleaved raw/shaped blocks")
    args = p.parse_args()

    raw = rewardlab.make_vec(args.env, args.num_envs)
    shaped = ShapedVectorEnv(raw, build_stack(TERMS, gamma=0.99))
    rng = np.random.default_rng(0)
    actions = rng.integers(0, raw.single_action_space.n, size=(args.steps, args.num_envs))
    times = {"raw": 0.0, "shaped": 0.0}
    for rep in range(args.repeats + 1):  # block 0 warms up and is not counted
        order = [("raw", raw), ("shaped", shaped)] if rep % 2 else [("shaped", shaped), ("raw", raw)]
        for name, venv in order:
            venv.reset(seed=rep)  # same episodes for both sides; resets are not timed
            t0 = time.perf_counter()
            for a in actions:
                venv.step(a)
            if rep:
                times[name] += time.perf_counter() - t0
    n = args.steps * args.num_envs * args.repeats
    sps = {k: n / v for k, v in times.items()}
    print(f"env {args.env}, {args.num_envs} envs, {n:,} env-steps each, stack: {shaped.stack!r}")
    print(f"raw    SPS: {sps['raw']:10.0f}")
    print(f"shaped SPS: {sps['shaped']:10.0f}")
    print(f"ratio shaped/raw: {sps['shaped'] / sps['raw']:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()
