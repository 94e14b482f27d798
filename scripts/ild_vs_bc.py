"""ILD vs behaviour cloning from the same expert demonstrations, several seeds, on CPU.

For each seed: ILD (``rewardlab.imitation.ild``, gradient through the Brax physics) and BC
(``rewardlab.imitation.bc``, action regression) train the same MLP policy on the training
demos; both are then rolled out deterministically from the training demos' initial states and
from the held-out ones (``Demos.split``) and compared with the expert's trajectories from the
same starts. Prints per-seed rows and a mean ± std table (markdown), with the zero-action
policy, the untrained policy and the expert as references. All seeds share one compiled ILD
update (same shapes and demos).

    .venv/bin/python scripts/ild_vs_bc.py --demos ant --seeds 0 1 2 --ild-updates 100
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from rewardlab.imitation.bc import BCConfig, PolicyEvaluator, train_bc
from rewardlab.imitation.ild import ILD, Demos, ILDConfig, MLPPolicy

KEYS = ("return", "trajectory_error", "chamfer")


def evaluate(evaluators: dict, params: list) -> dict[str, float]:
    out = {}
    for split, ev in evaluators.items():
        out.update({f"{split}/{k}": v for k, v in ev(params).items() if k in KEYS})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demos", default="ant")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--ild-updates", type=int, default=100)
    p.add_argument("--ild-lr", type=float, default=1e-2)
    p.add_argument("--truncation", type=int, default=10)
    p.add_argument("--step-grad-clip", type=float, default=0.3)
    p.add_argument("--max-grad-norm", type=float, default=0.3)
    p.add_argument("--bc-steps", type=int, default=2000)
    p.add_argument("--bc-lr", type=float, default=1e-3)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--json", default=None, help="also write the per-seed results here")
    args = p.parse_args()

    demos = Demos.load(args.demos)
    train, held = demos.split()
    evaluators = {"train": PolicyEvaluator(train)}
    if held is not None:
        evaluators["heldout"] = PolicyEvaluator(held)
    print(f"demos {args.demos}: {demos.env}/{demos.backend}, {train.obs.shape[0]} training + "
          f"{0 if held is None else held.obs.shape[0]} held-out trajectories x {demos.horizon} steps")
    expert = {f"{s}/return": float(ev.demos.returns.mean()) for s, ev in evaluators.items()}
    policy = MLPPolicy(demos.obs.shape[-1], demos.actions.shape[-1])
    t0 = time.time()
    refs = {"zero actions": evaluate(evaluators, policy.init(jax.random.PRNGKey(0), out_scale=0.0))}
    refs["untrained MLP (seed 0)"] = evaluate(evaluators, policy.init(jax.random.PRNGKey(0)))
    print(f"reference evaluations (incl. compile) {time.time() - t0:.0f} s")

    ild_cfg = ILDConfig(lr=args.ild_lr, truncation=args.truncation, step_grad_clip=args.step_grad_clip,
                        max_grad_norm=args.max_grad_norm)
    bc_cfg = BCConfig(lr=args.bc_lr, steps=args.bc_steps)
    rows: dict[str, list[dict]] = {"ILD": [], "BC": []}
    for seed in args.seeds:
        t0 = time.time()
        ild = ILD(train, ild_cfg, seed=seed)
        losses = []
        for u in range(args.ild_updates):
            losses.append(ild.update()["losses/chamfer"])
            if u == 0:
                first = time.time() - t0
            if args.log_every and (u + 1) % args.log_every == 0:
                ev = evaluators["train"](ild.params)
                print(f"  seed {seed} ILD update {u + 1}: training Chamfer {losses[-1]:.4f}; on the train starts "
                      f"return {ev['return']:.2f}, Chamfer {ev['chamfer']:.4f}", flush=True)
        ild_s = time.time() - t0
        r = evaluate(evaluators, ild.params)
        r.update(seed=seed, seconds=ild_s, first_update_s=first, loss_first=losses[0], loss_last=losses[-1],
                 env_steps=args.ild_updates * ild.steps_per_update)
        rows["ILD"].append(r)
        print(f"seed {seed} ILD ({ild_s:.0f} s, first update {first:.0f} s): "
              + ", ".join(f"{k} {v:.3f}" for k, v in r.items() if "/" in k), flush=True)
        t0 = time.time()
        params, bc_losses = train_bc(train, bc_cfg, seed=seed)
        bc_s = time.time() - t0
        r = evaluate(evaluators, params)
        r.update(seed=seed, seconds=bc_s, loss_first=float(bc_losses[0]), loss_last=float(bc_losses[-1]))
        rows["BC"].append(r)
        print(f"seed {seed} BC ({bc_s:.0f} s, action MSE {bc_losses[0]:.4f} -> {bc_losses[-1]:.4f}): "
              + ", ".join(f"{k} {v:.3f}" for k, v in r.items() if "/" in k), flush=True)

    cols = [f"{s}/{k}" for s in evaluators for k in KEYS]
    print(f"\n{len(args.seeds)} seeds; ILD {args.ild_updates} updates (lr {args.ild_lr}, truncation "
          f"{args.truncation}, step clip {args.step_grad_clip}); BC {args.bc_steps} Adam steps (lr {args.bc_lr})\n")
    print("| policy | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    print("| expert | " + " | ".join(f"{expert[c]:.2f}" if c in expert else "0" for c in cols) + " |")
    for name, r in refs.items():
        print(f"| {name} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |")
    for name, rs in rows.items():
        cells = []
        for c in cols:
            v = np.array([r[c] for r in rs])
            cells.append(f"{v.mean():.3f} ± {v.std():.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "expert": expert, "refs": refs, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
