"""Plots from run directories, through the results API (``rewardlab.experiment.results``).

- ``plot_runs`` (``rewardlab plot``): per run, the IQM over seeds of the training true return
  (solid) and shaped return (dashed), with the 95% bootstrap CI band of the true return, and the
  evaluation true return (dots with CI bars); a success-rate panel when the env reports success.
- ``plot_compare`` (``rewardlab compare``): the final true return's IQM with its 95% CI per
  variant, and the variants' evaluation learning curves (IQM, CI bands).

Seeds are aligned on one step grid (``results.align``); the intervals are rliable's
stratified-bootstrap percentile intervals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardlab.core import keys
from rewardlab.experiment import results as R

__all__ = ["plot_runs", "plot_compare"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _kfmt(plt, ax) -> None:
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x / 1000:g}k"))
    ax.grid(alpha=0.3)


def _curve(ax, runs: R.Runs, key: str, kinds: tuple[str, ...], color: str, *, smooth: int = 1, band: bool = True,
           points: bool = False, **style: Any) -> None:
    """IQM of ``key`` over the seeds of ``runs``, with its CI band (or CI bars with ``points``)."""
    if not runs.has_key(key, kinds):
        return
    steps, iqm, lo, hi = R.iqm_curve(runs.curves(key, kinds, smooth=smooth))
    if points:
        ax.errorbar(steps, iqm, yerr=[iqm - lo, hi - iqm], fmt="o", color=color, ms=4, capsize=2, **style)
        return
    ax.plot(steps, iqm, color=color, **style)
    if band and len(runs) > 1:
        ax.fill_between(steps, lo, hi, color=color, alpha=0.18, lw=0)


def plot_runs(paths: list[Path], out: Path, smooth: int = 10) -> Path:
    """One PNG: per run (its seeds pooled), the IQM training true return (solid, with the 95% CI
    band), shaped return (dashed) and evaluation true return (dots, CI bars) vs step; a second
    panel with the success rate when the env reports it."""
    plt = _pyplot()
    groups = [R.load_runs(p, finished_only=False) for p in paths]
    names = [g.name for g in groups]
    for g, path in zip(groups, paths, strict=True):
        if names.count(g.name) > 1:  # two runs of one experiment: tell them apart by their directory
            g.name = Path(path).name
    has_success = any(g.has_key(keys.SUCCESS_RATE) for g in groups)
    fig, axes = plt.subplots(1, 2 if has_success else 1, figsize=(13 if has_success else 9, 4.5), squeeze=False)
    ax, ax_s = axes[0][0], axes[0][1] if has_success else None
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, g in enumerate(groups):
        c = colors[k % len(colors)]
        label = f"{g.name} ({len(g)} seed{'s' if len(g) != 1 else ''})"
        _curve(ax, g, keys.TRUE_RETURN, R.TRAIN_KINDS, c, smooth=smooth, label=label)
        _curve(ax, g, keys.SHAPED_RETURN, R.TRAIN_KINDS, c, smooth=smooth, band=False, ls="--", alpha=0.6)
        _curve(ax, g, keys.EVAL_TRUE_RETURN, R.EVAL_KINDS, c, points=True)
        if ax_s is not None:
            _curve(ax_s, g, keys.SUCCESS_RATE, R.TRAIN_KINDS, c, smooth=smooth, label=label)
            _curve(ax_s, g, keys.EVAL_SUCCESS_RATE, R.EVAL_KINDS, c, points=True)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(f"true (solid) / shaped (dashed) training return, eval true return (dots)\n"
                 f"IQM over seeds, 95% CI; training curves smoothed over {smooth} rows", fontsize=9)
    _kfmt(plt, ax)
    if ax_s is not None:
        ax_s.set_xlabel("environment steps")
        ax_s.set_ylabel("success rate")
        ax_s.set_title("training success rate (line), eval success rate (dots)\nIQM over seeds, 95% CI", fontsize=9)
        _kfmt(plt, ax_s)
    (ax_s or ax).legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_compare(rows: list, out: Path, title: str = "") -> Path:
    """Left: IQM of the final true return with its 95% CI per variant (``compare.VariantResult``);
    right: each variant's evaluation true return over training (IQM over seeds, 95% CI band)."""
    plt = _pyplot()
    fig, (ax_f, ax_c) = plt.subplots(1, 2, figsize=(12, max(3.2, 1.0 + 0.45 * len(rows))),
                                     gridspec_kw={"width_ratios": [1, 1.6]})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, r in enumerate(rows):
        c = colors[i % len(colors)]
        y = len(rows) - 1 - i
        ax_f.plot([r.final.low, r.final.high], [y, y], color=c, lw=8, alpha=0.45, solid_capstyle="butt")
        ax_f.plot([r.final.value], [y], "|", color="k", ms=14, mew=2)
        ax_f.plot(r.runs.finals(), [y] * len(r.runs), "o", color=c, ms=3, alpha=0.8)
        _curve(ax_c, r.runs, keys.EVAL_TRUE_RETURN, R.EVAL_KINDS, c, label=f"{r.name} ({len(r.runs)} seeds)",
               marker=".")
    ax_f.set_yticks(range(len(rows)), [r.name for r in reversed(rows)])
    ax_f.set_ylim(-0.6, len(rows) - 0.4)
    ax_f.set_xlabel("final eval true return")
    ax_f.set_title("IQM (black) and 95% bootstrap CI (bar); dots: seeds", fontsize=9)
    ax_f.grid(alpha=0.3, axis="x")
    ax_c.set_xlabel("environment steps")
    ax_c.set_ylabel("eval true return")
    ax_c.set_title("evaluation true return, IQM over seeds (95% CI band)", fontsize=9)
    _kfmt(plt, ax_c)
    ax_c.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
