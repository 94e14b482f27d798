"""Console output of a DERL run: progress lines while it runs and the summary tables at the end.

Contents: ``run_derl_cli`` (what ``rewardlab run`` calls for an experiment with a ``derl:``
section or ``--resume`` of a DERL directory) and ``summary_tables``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rewardlab.derl.loop import DerlSummary, run_derl

__all__ = ["run_derl_cli", "summary_tables"]


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}"


def summary_tables(summary: DerlSummary, top: int = 10) -> list[Table]:
    """Per-round statistics and the ``top`` candidates by score."""
    rounds = Table(title=f"DERL ({summary.method}): rounds")
    for col in ("round", "mean score", "max score", "failed", "best program of the round"):
        rounds.add_column(col)
    for r in summary.rounds:
        rounds.add_row(str(r["round"]), _fmt(r["mean_score"]), _fmt(r["max_score"]), str(r["failed"]),
                       str(r["best_program"] or "-"))
    best = Table(title=f"top {top} of {len(summary.candidates)} candidates (score = validation success "
                       "on the unshaped env)")
    for col in ("rank", "round", "cand", "score", "score per seed", "status", "program"):
        best.add_column(col)
    ranked = sorted(summary.candidates, key=lambda c: (-c["score"], c["round"], c["index"]))
    for i, c in enumerate(ranked[:top]):
        per_seed = ", ".join(_fmt(x) for x in c.get("score_per_seed") or [])
        status = c["status"] + (f": {c.get('error')}" if c["status"] != "ok" else "")
        best.add_row(str(i + 1), str(c["round"]), str(c["index"]), _fmt(c["score"]), per_seed or "-",
                     status[:60], c["program"])
    return [rounds, best]


def run_derl_cli(cfg: Any, *, out: Path | None, resume: Path | None, quiet: bool = False) -> int:
    err = Console(stderr=True)

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if quiet:
            return
        if kind == "round":
            err.print(f"[bold]round {data['round']}[/]: {len(data['proposals'])} candidates")
        elif kind == "candidate":
            extra = f" ({data.get('error')})" if data["status"] != "ok" else ""
            err.print(f"  r{data['round']} c{data['index']}: {data['status']} score {data['score']:.3f}{extra} "
                      f"— {data['program']}", highlight=False)
        elif kind == "update":
            err.print(f"  round {data['round']} done: mean {data['mean_score']:.3f}, max {data['max_score']:.3f}")

    summary = run_derl(cfg, out=out, resume=resume, on_event=on_event)
    con = Console(width=160)
    con.print(f"DERL run directory: {summary.run_dir}")
    for table in summary_tables(summary):
        con.print(table)
    best = summary.best
    if best is None:
        con.print("no candidate trained successfully")
    else:
        con.print(f"best program: {best['program']}  ({best['score_metric']} {best['score']:.3f}, "
                  f"round {best['round']}, run {best['run_dir']})", highlight=False)
    return 0
