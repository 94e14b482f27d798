"""DERL evidence: meta-optimizers at equal inner-loop budget, then a held-out test of their best programs.

    python scripts/derl_evidence.py experiments/derl_gridworld.yaml --meta-seeds 0,1,2 \\
        --methods grpo,random,evolution --test-seeds 100,101,102 --out runs/derl_evidence
    python scripts/derl_evidence.py experiments/derl_alfworld.yaml --methods grpo,random --parallel 1 \
        --sparse success --out runs/derl_evidence_alfworld

1. For every method and meta-seed: the DERL loop of the experiment (``derl.method``, ``derl.seed``
   and the inner training seed set to the meta-seed; with ``--inner-seeds K`` each candidate is
   trained on K seeds and scored by the mean), rounds × K candidates each — the same
   number of inner trainings of the same step budget for every method.
2. Held-out test: the best program of every run (by its validation score) and the hand-designed
   sparse reward (``--sparse``, default ``env``) are retrained from scratch on ``--test-seeds`` (seeds no candidate was
   trained with) and evaluated on the unshaped env with ``--test-episodes`` episodes — on the
   experiment's validation env (``derl.validation``, e.g. ALFWorld's held-out games) if it has one.
3. Prints a markdown table, writes ``evidence.json`` and ``derl_evidence.png`` (best validation
   score so far vs candidates trained, mean over meta-seeds) into ``--out``.

``--reuse`` takes finished DERL runs (same method, meta-seed) from ``--out`` instead of running
them again, e.g. to redo only the held-out test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

from rewardlab.config import load_config
from rewardlab.derl.loop import DerlSummary, _init_worker, run_derl, train_candidate


def _finished(out: Path, method: str, seed: int, train_seeds: list[int]) -> DerlSummary | None:
    """A finished DERL run of (method, meta-seed) already in ``out`` (for ``--reuse``)."""
    for run_dir in sorted((out / "meta" / method).glob("*/")):
        if not (run_dir / "summary.json").exists():
            continue
        derl = yaml.safe_load((run_dir / "config.yaml").read_text())
        if derl["derl"]["seed"] == seed and derl["train"]["seeds"] == train_seeds:
            rounds = json.loads((run_dir / "summary.json").read_text())["rounds"]
            cands = [json.loads(line) for line in (run_dir / "candidates.jsonl").read_text().splitlines() if line]
            return DerlSummary(run_dir, method, cands, rounds)
    return None


def _inner_seeds(seed: int, k: int) -> list[int]:
    """The training seeds of every candidate of meta-seed ``seed`` (disjoint across meta-seeds)."""
    return [seed * k + i for i in range(k)]


def _meta_run(path: str, method: str, seed: int, out: Path, reuse: bool = False, inner_seeds: int = 1,
              overrides: Sequence[str] = ()) -> dict:
    seeds = _inner_seeds(seed, inner_seeds)
    cfg, _ = load_config(path, [*overrides, f"derl.method={method}", f"derl.seed={seed}", f"train.seeds={seeds}"])
    summary = (_finished(out, method, seed, seeds) if reuse else None) or run_derl(cfg, out=out / "meta" / method)
    cands = sorted(summary.candidates, key=lambda c: (c["round"], c["index"]))
    best_so_far = np.maximum.accumulate([c["score"] for c in cands]).tolist()
    best = summary.best
    return {"method": method, "seed": seed, "run_dir": str(summary.run_dir), "best_program": best["program"],
            "best_validation": best["score"], "best_so_far": best_so_far,
            "round_means": [r["mean_score"] for r in summary.rounds], "n_candidates": len(cands)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment")
    ap.add_argument("--meta-seeds", default="0,1,2")
    ap.add_argument("--methods", default="grpo,random")
    ap.add_argument("--test-seeds", default="100,101,102")
    ap.add_argument("--test-episodes", type=int, default=100)
    ap.add_argument("--parallel", type=int, default=2, help="DERL runs at the same time (each has its own workers)")
    ap.add_argument("--out", type=Path, default=Path("runs/derl_evidence"))
    ap.add_argument("--sparse", default="env", help="the hand-designed sparse program (a primitive of the file)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a field of the experiment (as rewardlab run --set), for search and test")
    ap.add_argument("--inner-seeds", type=int, default=1,
                    help="training seeds per candidate (its score is the mean); meta-seed s uses s*K .. s*K+K-1")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse finished DERL runs of the same method and seed in --out")
    args = ap.parse_args()
    seeds = [int(s) for s in args.meta_seeds.split(",")]
    methods = args.methods.split(",")
    test_seeds = [int(s) for s in args.test_seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)

    with ThreadPoolExecutor(args.parallel) as ex:
        runs = list(ex.map(lambda ms: _meta_run(args.experiment, ms[0], ms[1], args.out, args.reuse,
                                                    args.inner_seeds, args.set),
                           [(m, s) for s in seeds for m in methods]))

    # Held-out test: retrain each distinct best program and the sparse reward on unseen seeds.
    cfg, raw = load_config(args.experiment, [*args.set, f"train.seeds={test_seeds}",
                                             f"eval.final_episodes={args.test_episodes}"])
    base = cfg.model_dump(by_alias=True, exclude_none=True)
    prims = cfg.derl.primitive_specs()
    programs = list(dict.fromkeys([args.sparse] + [r["best_program"] for r in runs]))
    # With a validation env (ALFWorld's held-out games) the test is scored there too.
    validation = None if cfg.derl.validation is None else \
        {**cfg.derl.validation.model_dump(), "episodes": args.test_episodes}
    test: dict[str, dict] = {}
    with ProcessPoolExecutor(cfg.derl.workers or 1, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker) as pool:
        futures = {p: pool.submit(train_candidate, base, p, prims, f"test_{i:02d}",
                                  str(args.out / "test" / _test_dir(i, p)), validation)
                   for i, p in enumerate(programs)}
        for p, f in futures.items():
            row = f.result()
            if row["status"] != "ok":
                raise SystemExit(f"held-out retraining of {p!r} failed: {row.get('error')}")
            test[p] = {"per_seed": row["score_per_seed"], "mean": row["score"], "metric": row["score_metric"],
                       "run_dir": row["run_dir"]}
    for r in runs:
        r["test"] = test[r["best_program"]]

    lines = [f"| method | meta-seed | best program (validation score) | held-out {test[args.sparse]['metric']} "
             f"(test seeds {args.test_seeds}, {args.test_episodes} episodes each) |", "|---|---|---|---|"]
    lines.append(f"| hand-designed sparse | - | `{args.sparse}` | {_fmt(test[args.sparse])} |")
    for r in runs:
        lines.append(f"| {r['method']} | {r['seed']} | `{r['best_program']}` ({r['best_validation']:.3f}) | "
                     f"{_fmt(r['test'])} |")
    lines += ["", "| method | held-out score of the best program, mean ± std over meta-seeds | "
                  "mean validation score per round (mean over meta-seeds) |", "|---|---|---|"]
    for m in methods:
        rs = [r for r in runs if r["method"] == m]
        vals = [r["test"]["mean"] for r in rs]
        rounds = np.mean([r["round_means"] for r in rs], axis=0)
        lines.append(f"| {m} | {np.mean(vals):.3f} ± {np.std(vals):.3f} | "
                     f"{', '.join(f'{x:.3f}' for x in rounds)} |")
    lines.append(f"| sparse (`{args.sparse}`) | {test[args.sparse]['mean']:.3f} "
                 f"(one program, {len(test_seeds)} test seeds) | - |")
    table = "\n".join(lines)
    print(table)
    (args.out / "evidence.md").write_text(table + "\n")
    (args.out / "evidence.json").write_text(json.dumps({"runs": runs, "test": test, "args": vars(args)},
                                                       indent=2, default=str))
    _plot(runs, methods, args.out / "derl_evidence.png")
    print(f"wrote {args.out / 'evidence.md'}, evidence.json, derl_evidence.png")


def _test_dir(i: int, program: str) -> str:
    # The program's hash in the name: a re-run with other programs must not resume a stale run.
    return f"p{i:02d}_{hashlib.sha1(program.encode()).hexdigest()[:8]}"


def _fmt(t: dict) -> str:
    return f"{t['mean']:.3f} (per seed {', '.join(f'{x:.2f}' for x in t['per_seed'])})"


def _plot(runs: list[dict], methods: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for m in methods:
        curves = np.array([r["best_so_far"] for r in runs if r["method"] == m])
        x = np.arange(1, curves.shape[1] + 1)
        ax.plot(x, curves.mean(0), label=f"{m} (mean of {len(curves)} meta-seeds)")
        ax.fill_between(x, curves.min(0), curves.max(0), alpha=0.15)
    ax.set_xlabel("candidates trained (inner-loop budget)")
    ax.set_ylabel("best validation score so far")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
