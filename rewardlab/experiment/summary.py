"""``rewardlab summary``: one table comparing run directories (final eval and late training).

Every statistic comes from the results API: the IQM over seeds with its stratified-bootstrap
95% CI (rliable), the late-training window of ``results.late_window``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.core import keys
from rewardlab.experiment import results as R

__all__ = ["summarize_run"]

SUMMARY_REPS = 2_000
"""bootstrap replications per cell (a summary has many cells; ``rewardlab compare`` uses more)"""


def summarize_run(run: Path | str, late_fraction: float = R.LATE_FRACTION, *,
                  reps: int = SUMMARY_REPS) -> dict[str, Any]:
    """Per run (its finished seeds pooled): the final eval and the late-training mean (true
    return, success rate, per-term sums), each as ``IQM [95% CI]`` over seeds."""
    runs = R.load_runs(run)

    def cell(values: np.ndarray) -> str:
        values = values[np.isfinite(values)]
        return "-" if len(values) == 0 else str(R.iqm_ci(values, reps=reps))

    out: dict[str, Any] = {"run": str(run), "seeds": len(runs), "steps": [s.last_step for s in runs.seeds]}
    for metric, name in ((R.FINAL_RETURN, "final_true_return"), (R.FINAL_SUCCESS, "final_success_rate")):
        out[name] = cell(runs.finals(metric)) if runs.has_final(metric) else "-"
    out["late_true_return"] = cell(runs.late(keys.TRUE_RETURN, late_fraction))
    out["late_success_rate"] = cell(runs.late(keys.SUCCESS_RATE, late_fraction))
    for k in runs.keys(keys.TERM_PREFIX):
        out[f"late_{k}"] = cell(runs.late(k, late_fraction))
    return out
