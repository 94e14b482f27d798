"""``rewardlab plot``: learning curves (true vs shaped return) from run directories."""

from __future__ import annotations

import json
from pathlib import Path

from rewardlab.errors import RunDirError
from rewardlab.experiment import keys

__all__ = ["plot_runs", "seed_dirs"]


def seed_dirs(path: Path) -> list[Path]:
    """The seed directories of a run (or the directory itself if it is one)."""
    path = Path(path)
    if (path / "metrics.jsonl").is_file():
        return [path]
    dirs = sorted(p for p in path.glob("seed_*") if (p / "metrics.jsonl").is_file())
    if not dirs:
        raise RunDirError(f"{path} has no metrics.jsonl (not a run directory written by `rewardlab run`)")
    return dirs


def plot_runs(paths: list[Path], out: Path) -> Path:
    """One PNG: training true and shaped return (and eval true return) per seed vs step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    k = 0
    for run in paths:
        for seed_dir in seed_dirs(run):
            rows = [json.loads(line) for line in (seed_dir / "metrics.jsonl").read_text().splitlines() if line]
            label = f"{Path(run).name}/{seed_dir.name}" if seed_dir != Path(run) else Path(run).name
            c = colors[k % len(colors)]
            k += 1
            train = [r for r in rows if r["kind"] == "train" and keys.TRUE_RETURN in r]
            ax.plot([r["step"] for r in train], [r[keys.TRUE_RETURN] for r in train], color=c,
                    label=f"{label} true")
            ax.plot([r["step"] for r in train], [r[keys.SHAPED_RETURN] for r in train], color=c, ls="--",
                    alpha=0.7, label=f"{label} shaped")
            ev = [r for r in rows if r["kind"] in ("eval", "final")]
            ax.plot([r["step"] for r in ev], [r[keys.EVAL_TRUE_RETURN] for r in ev], "o", color=c, ms=4,
                    label=f"{label} eval (true)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title("true (solid) vs shaped (dashed) return")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
