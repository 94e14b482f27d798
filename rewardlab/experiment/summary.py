"""``rewardlab summary``: one table comparing run directories (final eval and late training)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.experiment import keys
from rewardlab.experiment.runner import FINAL_FILE, read_metrics, seed_dirs

__all__ = ["summarize_run"]


def _late_mean(rows: list[dict[str, Any]], key: str, fraction: float) -> float | None:
    vals = [r[key] for r in rows if r["kind"] == "train" and key in r]
    if not vals:
        return None
    return float(np.mean(vals[-max(1, int(len(vals) * fraction)):]))


def summarize_run(run: Path, late_fraction: float = 0.1) -> dict[str, Any]:
    """Per run: final eval (mean ± std over seeds) and the mean of the last ``late_fraction``
    of training iterations (true return, success rate, per-term sums), over seeds."""
    per_seed = []
    for d in seed_dirs(run):
        rows = read_metrics(d)
        final_path = d / FINAL_FILE
        final = json.loads(final_path.read_text()) if final_path.is_file() else {}
        terms = sorted({k for r in rows for k in r if k.startswith(keys.TERM_PREFIX)})
        per_seed.append({
            "seed": d.name,
            "steps": max((r["step"] for r in rows), default=0),
            "final_true_return": final.get("true_return_mean"),
            "final_success_rate": final.get("success_rate"),
            "late_true_return": _late_mean(rows, keys.TRUE_RETURN, late_fraction),
            "late_success_rate": _late_mean(rows, keys.SUCCESS_RATE, late_fraction),
            **{f"late_{k}": _late_mean(rows, k, late_fraction) for k in terms},
        })

    def stat(key: str) -> str:
        vals = [s[key] for s in per_seed if s.get(key) is not None]
        return "-" if not vals else f"{np.mean(vals):.3f} ± {np.std(vals):.3f}"

    keys_shown = [k for k in per_seed[0] if k not in ("seed", "steps")] if per_seed else []
    return {"run": str(run), "seeds": len(per_seed), "steps": [s["steps"] for s in per_seed],
            **{k: stat(k) for k in keys_shown}}
