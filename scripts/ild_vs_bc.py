"""ILD vs behaviour cloning from the same few expert demonstrations, ≥ 5 seeds, on CPU.

For each seed: BC (the reference's ``--il`` bootstrap, 1,000 full-batch iterations: ILD's warm
start, the same policy ``rewardlab.imitation.bc.train_bc`` gives for that seed) and ILD
(``rewardlab.imitation.ild.ILD``: that BC policy, then ``--ild-updates`` gradient steps through the
Brax physics on the Chamfer loss). Both train the same NormalTanh policy on the first ``--n-demos`` demonstrations and
are evaluated by their mode on *held-out* expert starts (the demo file's held-out split, or the
demos after the first ``--n-demos`` when the file has none) with the true task return, plus the
Chamfer distance to the expert in expert-normalised simulator-state space (and, on Reacher, the
final fingertip-target distance). Aggregates are IQMs with stratified-bootstrap 95% CIs and the
probability of improvement from ``rewardlab.results`` (rliable); a plot goes to ``--plot``.

    .venv/bin/python scripts/ild_vs_bc.py --demos reacher --n-demos 4 --seeds 0 1 2 3 4 \
        --ild-updates 100 --json runs/ild_vs_bc_reacher.json --plot docs/methods/ild_vs_bc_reacher.png

``--report A.json B.json --plot P.png`` re-reports saved results without training.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rewardlab import results as R
from rewardlab.imitation.bc import PolicyEvaluator
from rewardlab.imitation.ild import ILD, Demos, ILDConfig

METRICS = ("return", "chamfer", "final_distance")


def split_demos(demos: Demos, n_demos: int) -> tuple[Demos, Demos]:
    """The first ``n_demos`` training demos, and the held-out ones (the file's, else the rest)."""
    full = Demos(demos.env, demos.backend, demos.obs, demos.actions, demos.keys, demos.returns, n_demos)
    train, rest = full.split()
    if demos.n_train < demos.obs.shape[0]:  # the file has its own held-out split
        held = demos.split()[1]
    else:
        held = rest
    if held is None:
        raise SystemExit(f"no held-out demos: {demos.obs.shape[0]} demos, --n-demos {n_demos}")
    return train, held


def run(args: argparse.Namespace) -> dict:
    demos = Demos.load(args.demos)
    train, held = split_demos(demos, args.n_demos)
    hidden = tuple(args.hidden)
    evaluators = {"train": PolicyEvaluator(train, hidden=hidden), "heldout": PolicyEvaluator(held, hidden=hidden)}
    print(f"{args.demos}: {demos.env}/{demos.backend}, {train.obs.shape[0]} training demos, "
          f"{held.obs.shape[0]} held-out starts, {demos.horizon} steps; policy {hidden}", flush=True)
    ild_cfg = ILDConfig(hidden=hidden, bc_warmstart=args.bc_steps, match=args.match)
    rows: dict[str, list[dict]] = {"BC": [], "ILD": []}
    ild = ILD(train, ild_cfg, seed=args.seeds[0])  # one learner, reseeded: its functions compile once
    for seed in args.seeds:
        # BC is ILD's warm start (train_bc with the same seed and settings gives the same policy;
        # tests/imitation/test_ild.py checks it), so ILD's updates are compared with their own start.
        t0 = time.time()
        ild.reseed(seed)
        logs = ild.warm_start()
        r = {f"{s}/{k}": v for s, ev in evaluators.items() for k, v in ev(ild.actor).items()}
        r.update(seed=seed, seconds=time.time() - t0, loss_first=logs["losses/bc_first"],
                 loss_last=logs["losses/bc_last"])
        rows["BC"].append(r)
        print(f"seed {seed} BC ({r['seconds']:.0f} s, loss {r['loss_first']:.3f} -> {r['loss_last']:.3f}): "
              + ", ".join(f"{k} {v:.3f}" for k, v in r.items() if k.startswith("heldout/")), flush=True)
        t0 = time.time()
        curve = []
        for u in range(args.ild_updates):
            m = ild.update(progress=u / args.ild_updates)
            if u == 0:
                first = time.time() - t0
                curve.append((0, m["losses/chamfer"]))
            if args.log_every and (u + 1) % args.log_every == 0:
                ev = evaluators["heldout"](ild.actor)
                curve.append((u + 1, m["losses/chamfer"], ev["return"], ev["chamfer"]))
                print(f"  seed {seed} ILD update {u + 1}: training Chamfer {m['losses/chamfer']:.4f}; held-out "
                      f"return {ev['return']:.2f}, Chamfer {ev['chamfer']:.4f}", flush=True)
        r = {f"{s}/{k}": v for s, ev in evaluators.items() for k, v in ev(ild.actor).items()}
        r.update(seed=seed, seconds=time.time() - t0, first_update_s=first, curve=curve,
                 env_steps=args.ild_updates * ild.steps_per_update)
        rows["ILD"].append(r)
        print(f"seed {seed} ILD ({r['seconds']:.0f} s, first update {first:.0f} s): "
              + ", ".join(f"{k} {v:.3f}" for k, v in r.items() if k.startswith("heldout/")), flush=True)
        if args.json:  # after every seed, so an interrupted run keeps its finished seeds
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({"args": vars(args), "env": demos.env, "rows": rows}, indent=1))
    return {"args": vars(args), "env": demos.env, "rows": rows}


def report(res: dict) -> dict:
    rows, out = res["rows"], {}
    keys = [f"{s}/{k}" for s in ("heldout", "train") for k in METRICS if f"{s}/{k}" in rows["BC"][0]]
    a = res["args"]
    print(f"\n## {res['env']}: {a['n_demos']} demos, {len(rows['BC'])} seeds, ILD {a['ild_updates']} updates after "
          f"{a['bc_steps']} BC iterations; expert return (held-out) {rows['BC'][0]['heldout/expert_return']:.2f}\n")
    print("| metric | BC IQM [95% CI] | ILD IQM [95% CI] | P(ILD > BC) [95% CI] |")
    print("|---|---|---|---|")
    for k in keys:
        bc = np.array([r[k] for r in rows["BC"]])
        ild = np.array([r[k] for r in rows["ILD"]])
        sign = 1.0 if k.endswith("return") else -1.0  # lower Chamfer / distance is better
        poi = R.probability_of_improvement(sign * ild, sign * bc)
        out[k] = {"BC": R.iqm_ci(bc).as_dict(), "ILD": R.iqm_ci(ild).as_dict(), "P(ILD better)": poi.as_dict(),
                  "BC_seeds": bc.tolist(), "ILD_seeds": ild.tolist()}
        print(f"| {k} | {R.iqm_ci(bc)} | {R.iqm_ci(ild)} | {poi} |")
    for name in ("BC", "ILD"):
        print(f"{name} per seed held-out return: " + ", ".join(f"{r['heldout/return']:.2f}" for r in rows[name]))
    return out


def plot(results: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(res, k) for res in results for k in ("heldout/return", "heldout/chamfer")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
    for ax, (res, k) in zip(np.atleast_1d(axes), panels, strict=True):
        for i, name in enumerate(("BC", "ILD")):
            v = np.array([r[k] for r in res["rows"][name]])
            ci = R.iqm_ci(v)
            ax.bar(i, ci.value, color=("tab:gray", "tab:blue")[i], alpha=0.6)
            ax.errorbar(i, ci.value, yerr=[[ci.value - ci.low], [ci.high - ci.value]], color="k", capsize=4)
            ax.scatter(np.full(len(v), i) + np.linspace(-0.15, 0.15, len(v)), v, color="k", s=10, zorder=3)
        if k.endswith("return"):
            ax.axhline(res["rows"]["BC"][0]["heldout/expert_return"], color="tab:green", ls="--", label="expert")
            ax.legend(fontsize=7)
        ax.set_xticks([0, 1], ["BC", "ILD"])
        ax.set_title(f"{res['env']} ({res['args']['n_demos']} demos): {k.split('/')[1]}", fontsize=9)
    fig.suptitle("held-out starts, IQM with 95% bootstrap CI, dots = seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demos", default="reacher")
    p.add_argument("--n-demos", type=int, default=4)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--ild-updates", type=int, default=100)
    p.add_argument("--bc-steps", type=int, default=1000)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 256])
    p.add_argument("--match", default="state", choices=["state", "obs"])
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--json", default=None, help="write the per-seed results here")
    p.add_argument("--plot", default=None, help="write the comparison plot here")
    p.add_argument("--report", nargs="+", default=None, help="re-report saved --json files, no training")
    args = p.parse_args()
    if args.report:
        results = [json.loads(Path(f).read_text()) for f in args.report]
    else:
        results = [run(args)]
    for res in results:
        res["aggregate"] = report(res)
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
