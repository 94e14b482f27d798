"""ONI vs extrinsic-only: training true return (mean over the last ``--late`` of training,
per seed), the final eval true return, and ONI's message counters, per run directory; and a
PNG of the training true return (mean over seeds). Each argument is ``label=RUN_DIR``.

    python benchmarks/oni_report.py extrinsic=runs/extrinsic_nethack__* oni=runs/oni_nethack__* \\
        --out docs/methods/oni_nethack.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rewardlab.core import keys
from rewardlab.experiment.runner import read_metrics, seed_dirs

COUNTERS = ("unique_messages", "labelled", "helpful", "pending", "garbled", "backend_errors", "rewarded_steps")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="label=RUN_DIR")
    p.add_argument("--late", type=float, default=0.25, help="fraction of the training rows averaged at the end")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    curves = {}
    for spec in args.runs:
        label, _, path = spec.partition("=")
        late, final, counters, seed_curves = [], [], [], []
        for d in seed_dirs(Path(path)):
            if not (d / "final_eval.json").is_file():
                continue  # a seed still training
            rows = read_metrics(d)
            train = [r for r in rows if r["kind"] == "train" and keys.TRUE_RETURN in r]
            k = max(1, int(len(train) * args.late))
            late.append(np.mean([r[keys.TRUE_RETURN] for r in train[-k:]]))
            fin = json.loads((d / "final_eval.json").read_text()) if (d / "final_eval.json").is_file() else {}
            final.append(fin.get("true_return_mean", np.nan))
            last = [r for r in rows if r["kind"] == "train"][-1]
            counters.append({c: last.get(f"reward_terms/oni/{c}") for c in COUNTERS})
            seed_curves.append(([r["step"] for r in train], [r[keys.TRUE_RETURN] for r in train]))
        curves[label] = seed_curves
        print(f"{label:<10} seeds={len(late)}  late-training true return {np.mean(late):7.2f} ± {np.std(late):.2f} "
              f"(per seed {', '.join(f'{v:.2f}' for v in late)})  final eval true return "
              f"{np.nanmean(final):7.2f} ± {np.nanstd(final):.2f}")
        if counters[0]["labelled"] is not None:
            for i, c in enumerate(counters):
                print(f"{'':<10} seed {i}: " + ", ".join(f"{k}={v:.0f}" for k, v in c.items() if v is not None))
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.2))
        for label, seed_curves in curves.items():
            # Seeds finish episodes at different steps: interpolate each onto a shared grid over
            # the range all seeds cover (rows only exist where an episode ended).
            lo = max(s[0] for s, _ in seed_curves)
            hi = min(s[-1] for s, _ in seed_curves)
            common = np.unique(np.concatenate([np.asarray(s) for s, _ in seed_curves]))
            common = common[(common >= lo) & (common <= hi)]
            vals = np.array([np.interp(common, s, v) for s, v in seed_curves])
            m, sd = vals.mean(0), vals.std(0)
            ax.plot(common, m, marker=".", label=f"{label} ({len(seed_curves)} seeds)")
            ax.fill_between(common, m - sd, m + sd, alpha=0.2)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("training episode true return (NetHack score)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out, dpi=110)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
