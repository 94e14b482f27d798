"""``rewardlab plot``: learning curves (true vs shaped return) from run directories."""

from __future__ import annotations

from pathlib import Path

from rewardlab.experiment import keys
from rewardlab.experiment.runner import read_metrics, seed_dirs

__all__ = ["plot_runs"]


def _smooth(values: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_runs(paths: list[Path], out: Path, smooth: int = 10) -> Path:
    """One PNG: true (solid) and shaped (dashed) training return and eval true return (dots)
    per seed vs step; a second panel with the success rate when the env reports it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [(Path(run), seed_dirs(run)) for run in paths]
    rows_of = {d: read_metrics(d) for _, dirs in runs for d in dirs}
    has_success = any(keys.SUCCESS_RATE in r for rows in rows_of.values() for r in rows)
    fig, axes = plt.subplots(1, 2 if has_success else 1, figsize=(13 if has_success else 9, 4.5), squeeze=False)
    ax, ax_s = axes[0][0], axes[0][1] if has_success else None
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    k = 0
    for run, dirs in runs:
        name = run.name.split("__")[0]
        for seed_dir in dirs:
            rows = rows_of[seed_dir]
            label = f"{name}/{seed_dir.name}" if seed_dir != run else name
            c = colors[k % len(colors)]
            k += 1
            train = [r for r in rows if r["kind"] == "train" and keys.TRUE_RETURN in r]
            steps = [r["step"] for r in train]
            ax.plot(steps, _smooth([r[keys.TRUE_RETURN] for r in train], smooth), color=c, label=label)
            ax.plot(steps, _smooth([r[keys.SHAPED_RETURN] for r in train], smooth), color=c, ls="--", alpha=0.6)
            ev = [r for r in rows if r["kind"] in ("eval", "final")]
            ax.plot([r["step"] for r in ev], [r[keys.EVAL_TRUE_RETURN] for r in ev], "o", color=c, ms=4)
            if ax_s is not None:
                succ = [r for r in train if keys.SUCCESS_RATE in r]
                ax_s.plot([r["step"] for r in succ], _smooth([r[keys.SUCCESS_RATE] for r in succ], smooth),
                          color=c, label=label)
                ev_s = [r for r in ev if keys.EVAL_SUCCESS_RATE in r]
                ax_s.plot([r["step"] for r in ev_s], [r[keys.EVAL_SUCCESS_RATE] for r in ev_s], "o", color=c, ms=4)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(f"true (solid) vs shaped (dashed) return, eval true (dots); smoothed over {smooth}", fontsize=9)
    ax.grid(alpha=0.3)
    if ax_s is not None:
        ax_s.set_xlabel("environment steps")
        ax_s.set_ylabel("success rate")
        ax_s.set_title("training success rate (line), eval success rate (dots)", fontsize=9)
        ax_s.grid(alpha=0.3)
    for a in (ax, ax_s):
        if a is not None:
            a.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x / 1000:g}k"))
    (ax_s or ax).legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
