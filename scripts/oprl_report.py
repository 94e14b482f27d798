"""Success rate and episode length of the variants of an OPRL comparison (docs/methods/oprl.md).

``rewardlab compare`` reports the final true return (and the success IQM); the OPRL page also
needs the mean episode length (the paper reports fewer actions) and learning curves of both.
This script reads the same run directories through ``rewardlab.results`` and prints, per
variant, the IQM over seeds with its 95% stratified-bootstrap CI of the final evaluation's
success rate and mean episode length, and the probability that the variant beats the first one
(higher success; shorter episodes); it writes a PNG with the evaluation success rate and
episode length over training (IQM over seeds, 95% CI bands).

    python scripts/oprl_report.py runs/compare/oprl_swe --out docs/methods/oprl_swe.png
    python scripts/oprl_report.py oprl=runs/compare/oprl_swe/base rloo='runs/compare/oprl_swe/rloo' --out x.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rewardlab import results as R
from rewardlab.core import keys
from rewardlab.experiment.compare import load_compare

LENGTH = "episode_length_mean"
"""the final evaluation's mean episode length, a key of final_eval.json"""


def report(runs: list[R.Runs]) -> list[str]:
    """Markdown table lines: per variant, final success and episode length IQM [95% CI] and
    P(better than the first variant)."""
    base = runs[0]
    lines = ["| variant | seeds | success rate, IQM [95% CI] | P(success > " + base.name + ") "
             "| episode length, IQM [95% CI] | P(shorter than " + base.name + ") | success per seed |",
             "|---|---|---|---|---|---|---|"]
    for r in runs:
        success, length = r.finals(R.FINAL_SUCCESS), r.finals(LENGTH)
        if r is base:
            p_success = p_length = "(baseline)"
        else:
            p_success = str(R.probability_of_improvement(success, base.finals(R.FINAL_SUCCESS)))
            p_length = str(R.probability_of_improvement(-length, -base.finals(LENGTH)))
        lines.append(f"| {r.name} | {len(r)} | {R.iqm_ci(success)} | {p_success} | {R.iqm_ci(length)} | {p_length} "
                     f"| {', '.join(f'{x:.2f}' for x in success)} |")
    return lines


def plot(runs: list[R.Runs], out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key, label in ((axes[0], keys.EVAL_SUCCESS_RATE, "eval success rate"),
                           (axes[1], keys.EVAL_EPISODE_LENGTH, "eval mean episode length")):
        for i, r in enumerate(runs):
            if not r.has_key(key, R.EVAL_KINDS):
                continue
            steps, iqm, lo, hi = R.iqm_curve(r.curves(key, R.EVAL_KINDS))
            c = colors[i % len(colors)]
            ax.plot(steps, iqm, color=c, marker=".", label=f"{r.name} ({len(r)} seeds)")
            ax.fill_between(steps, lo, hi, color=c, alpha=0.18, lw=0)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(label)
        ax.set_title(f"{label}: IQM over seeds, 95% CI band", fontsize=9)
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x / 1000:g}k"))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sources", nargs="+", help="a `rewardlab compare` directory, or NAME=RUN_DIR items (globs fine)")
    ap.add_argument("--out", type=Path, default=None, help="PNG of the learning curves (none if omitted)")
    ap.add_argument("--title", default="")
    args = ap.parse_args()
    runs, _ = load_compare(args.sources)
    print("\n".join(report(runs)))
    if args.out is not None:
        print(f"wrote {plot(runs, args.out, args.title)}")


if __name__ == "__main__":
    main()
