"""ONI vs extrinsic-only: training true return (mean over the late-training window, ``--late`` of
the steps, per seed), the final eval true return, and ONI's message counters, per run directory;
and a PNG of the training true return (IQM over seeds, 95% CI band). Each argument is
``label=RUN_DIR`` (a quoted glob pools several). Loading, seed alignment, the late window and the
statistics come from ``rewardlab.results``.

    python benchmarks/oni_report.py extrinsic=runs/extrinsic_nethack__* oni=runs/oni_nethack__* \\
        --out docs/methods/oni_nethack.png
"""

from __future__ import annotations

import argparse

import numpy as np

from rewardlab import results as R
from rewardlab.core import keys

COUNTERS = ("unique_messages", "labelled", "helpful", "pending", "garbled", "backend_errors", "rewarded_steps",
            "decay_factor")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="label=RUN_DIR")
    p.add_argument("--late", type=float, default=0.25, help="late-training window: this fraction of the last steps")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    groups: dict[str, R.Runs] = {}
    for spec in args.runs:
        label, sep, path = spec.partition("=")
        if not sep:
            p.error(f"expected label=RUN_DIR, got {spec!r}")
        g = groups[label] = R.load_runs(path, name=label)  # finished seeds only
        late, final = g.late(keys.TRUE_RETURN, args.late), g.finals()
        print(f"{label:<10} seeds={len(g)}  late-training true return {np.mean(late):7.2f} ± {np.std(late):.2f} "
              f"(per seed {', '.join(f'{v:.2f}' for v in late)}; IQM {R.iqm_ci(late)})  final eval true return "
              f"{np.mean(final):7.2f} ± {np.std(final):.2f} (IQM {R.iqm_ci(final)})")
        present = [c for c in COUNTERS if g.has_key(f"{keys.TERM_PREFIX}oni/{c}")]
        if "labelled" in present:
            for s in g.seeds:
                values = {c: s.series(f"{keys.TERM_PREFIX}oni/{c}")[1][-1] for c in present}
                print(f"{'':<10} seed {s.seed}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items()))
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.2))
        for label, g in groups.items():
            # Seeds finish episodes at different steps: results.align puts them on one grid.
            steps, m, lo, hi = R.iqm_curve(g.curves(keys.TRUE_RETURN, R.TRAIN_KINDS))
            ax.plot(steps, m, marker=".", label=f"{label} ({len(g)} seeds)")
            ax.fill_between(steps, lo, hi, alpha=0.2)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("training episode true return (NetHack score), IQM over seeds")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out, dpi=110)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
