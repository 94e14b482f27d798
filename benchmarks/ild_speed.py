"""ILD on CPU: gradient steps per second and how far the Chamfer loss / trajectory error move.

Trains ILD on the shipped Reacher demos (16 expert trajectories x 50 steps, positional
backend) and prints, side by side, the initial policy's and the trained policy's Chamfer
distance, time-aligned trajectory error and return on the demos' initial states, plus the
expert's return. Compile time is reported separately from the steady-state step rate.

    .venv/bin/python benchmarks/ild_speed.py --updates 200
"""

from __future__ import annotations

import argparse
import time

from rewardlab.imitation.ild import ILD, Demos, ILDConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demos", default="reacher")
    p.add_argument("--updates", type=int, default=200)
    # Defaults: ILDConfig's (the reference's settings); give a flag to override one.
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--truncation", type=int, default=None)
    p.add_argument("--step-grad-clip", type=float, default=None, help="norm of each step's next-state cotangent")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    given = {"lr": args.lr, "truncation": args.truncation, "step_grad_clip": args.step_grad_clip}
    cfg = ILDConfig(**{k: v for k, v in given.items() if v is not None})
    ild = ILD(Demos.load(args.demos), cfg, seed=args.seed)
    before = ild.evaluate()
    t0 = time.time()
    first = ild.update()
    compile_s = time.time() - t0
    t1 = time.time()
    for _ in range(args.updates - 1):
        last = ild.update()
    steady = time.time() - t1
    after = ild.evaluate()
    rate = (args.updates - 1) / steady
    print(f"ILD on {ild.demos.env}/{ild.demos.backend}: {ild.n} demos x {ild.horizon} steps, "
          f"truncation {cfg.truncation}, step clip {cfg.step_grad_clip}, lr {cfg.lr}")
    print(f"first update (compile + step): {compile_s:.1f} s; then {rate:.2f} gradient steps/s "
          f"({rate * ild.steps_per_update:.0f} simulated env-steps/s incl. backward)")
    print(f"training loss: {first['losses/chamfer']:.4f} -> {last['losses/chamfer']:.4f}")
    print(f"{'':22s}{'initial':>10s}{'trained':>10s}")
    for key in ("ild/chamfer", "ild/trajectory_error", "ild/return"):
        print(f"{key:22s}{before[key]:10.4f}{after[key]:10.4f}")
    print(f"expert return {after['ild/expert_return']:.4f}; trajectory error ratio trained/initial "
          f"{after['ild/trajectory_error'] / before['ild/trajectory_error']:.3f}")


if __name__ == "__main__":
    main()
