"""DERL evidence: meta-optimizers at equal inner-loop budget, then a held-out test of their best programs.

    python scripts/derl_evidence.py experiments/derl_gridworld.yaml --meta-seeds 0,1,2 \\
        --methods grpo,random,evolution --test-seeds 100,101,102 --out runs/derl_evidence
    python scripts/derl_evidence.py experiments/derl_alfworld.yaml --methods grpo,random --parallel 1 \
        --sparse success --out runs/derl_evidence_alfworld

1. For every method and meta-seed: the DERL loop of the experiment (``derl.method``, ``derl.seed``
   and the inner training seed set to the meta-seed; with ``--inner-seeds K`` each candidate is
   trained on K seeds and scored by the mean), rounds × K candidates each — the same
   number of inner trainings of the same step budget for every method.
2. Held-out test: the best program of every run (by its validation score), the hand-designed
   sparse reward (``--sparse``, default ``env``) and an optional hand-written shaped reward
   (``--shaped``) are retrained from scratch on ``--test-seeds`` (seeds no candidate was
   trained with) and evaluated on the unshaped env with ``--test-episodes`` episodes — on the
   experiment's validation env (``derl.validation``, e.g. ALFWorld's held-out games) if it has one.
   With a batched agent (``jax_ppo``) all these programs × test seeds train in one compiled program.
3. Statistics (rliable, ``rewardlab.experiment.results``): a method's score on one meta-seed is
   its best program's mean held-out score over the test seeds; per method, the IQM over meta-seeds
   with its 95% stratified-bootstrap CI; for a hand-designed reward (one program), the IQM over
   test seeds. P(method > sparse) compares the meta-seed scores with the sparse reward's per-seed
   scores. Prints markdown tables, writes ``evidence.md``, ``evidence.json`` and
   ``derl_evidence.png`` (left: best validation score so far vs candidates trained, mean and range
   over meta-seeds; right: held-out IQM with CIs) into ``--out``.

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

from rewardlab.agents import AGENTS
from rewardlab.config import load_config
from rewardlab.derl.loop import DerlSummary, _init_worker, run_derl, train_batch, train_candidate
from rewardlab.experiment import results as R


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
    ap.add_argument("--shaped", default=None,
                    help="a hand-written shaped program to test beside sparse, e.g. 'add(env, progress)'")
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
    # With a validation env (ALFWorld's held-out games) the test is scored there too.
    validation = None if cfg.derl.validation is None else \
        {**cfg.derl.validation.model_dump(), "episodes": args.test_episodes}
    baselines = {"sparse": args.sparse} | ({"shaped": args.shaped} if args.shaped else {})
    programs = list(dict.fromkeys([*baselines.values()] + [r["best_program"] for r in runs]))
    if getattr(AGENTS.get(cfg.agent.name), "batched", False):
        test = _test_batched(base, programs, prims, cfg.derl.grammar(), args.out / "test")
    else:
        test = _test_each(base, programs, prims, validation, cfg.derl.workers or 1, args.out / "test")
    for r in runs:
        r["test"] = test[r["best_program"]]

    metric = test[args.sparse]["metric"]
    lines = [f"| method | meta-seed | best program (validation score) | held-out {metric} "
             f"(test seeds {args.test_seeds}, {args.test_episodes} episodes each) |", "|---|---|---|---|"]
    for name, prog in baselines.items():
        lines.append(f"| hand-written {name} | - | `{prog}` | {_fmt(test[prog])} |")
    for r in runs:
        lines.append(f"| {r['method']} | {r['seed']} | `{r['best_program']}` ({r['best_validation']:.3f}) | "
                     f"{_fmt(r['test'])} |")
    sparse_scores = test[args.sparse]["per_seed"]
    stats: dict[str, dict] = {}
    lines += ["", f"| reward | held-out {metric}: IQM [95% CI] | over | P(> sparse) [95% CI] | "
                  "mean validation score per round (mean over meta-seeds) |", "|---|---|---|---|---|"]
    for name, prog in baselines.items():
        iqm = R.iqm_ci(test[prog]["per_seed"])
        poi = None if name == "sparse" else R.probability_of_improvement(test[prog]["per_seed"], sparse_scores)
        stats[name] = {"iqm": iqm.as_dict(), "poi_vs_sparse": poi and poi.as_dict()}
        lines.append(f"| {name} (`{prog}`) | {iqm} | {len(test_seeds)} test seeds | "
                     f"{'-' if poi is None else poi} | - |")
    for m in methods:
        rs = [r for r in runs if r["method"] == m]
        vals = [r["test"]["mean"] for r in rs]
        iqm, poi = R.iqm_ci(vals), R.probability_of_improvement(vals, sparse_scores)
        stats[m] = {"iqm": iqm.as_dict(), "poi_vs_sparse": poi.as_dict(), "per_meta_seed": vals}
        rounds = np.mean([r["round_means"] for r in rs], axis=0)
        lines.append(f"| DERL {m} | {iqm} | {len(rs)} meta-seeds | {poi} | "
                     f"{', '.join(f'{x:.3f}' for x in rounds)} |")
    table = "\n".join(lines)
    print(table)
    (args.out / "evidence.md").write_text(table + "\n")
    (args.out / "evidence.json").write_text(json.dumps({"runs": runs, "test": test, "stats": stats,
                                                        "args": vars(args)}, indent=2, default=str))
    _plot(runs, methods, stats, metric, args.out / "derl_evidence.png")
    print(f"wrote {args.out / 'evidence.md'}, evidence.json, derl_evidence.png")


def _test_dir(i: int, program: str) -> str:
    # The program's hash in the name: a re-run with other programs must not resume a stale run.
    return f"p{i:02d}_{hashlib.sha1(program.encode()).hexdigest()[:8]}"


def _fmt(t: dict) -> str:
    return f"{t['mean']:.3f} (per seed {', '.join(f'{x:.2f}' for x in t['per_seed'])})"


def _test_each(base: dict, programs: list[str], prims: dict, validation: dict | None, workers: int,
               parent: Path) -> dict[str, dict]:
    """Retrain each program on the test seeds, one ordinary run each (``workers`` at a time)."""
    test: dict[str, dict] = {}
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker) as pool:
        futures = {p: pool.submit(train_candidate, base, p, prims, f"test_{i:02d}", str(parent / _test_dir(i, p)),
                                  validation)
                   for i, p in enumerate(programs)}
        for p, f in futures.items():
            test[p] = _test_row(p, f.result())
    return test


def _test_batched(base: dict, programs: list[str], prims: dict, grammar, parent: Path) -> dict[str, dict]:
    """Retrain every program × test seed in one compiled program (a batched agent)."""
    digest = hashlib.sha1("\n".join(programs).encode()).hexdigest()[:8]
    base = {k: v for k, v in base.items() if k not in ("derl", "sweep")}
    rows = train_batch(base, dict(enumerate(programs)), prims, "test", str(parent / f"batch_{digest}"), grammar)
    return {p: _test_row(p, rows[i]) for i, p in enumerate(programs)}


def _test_row(program: str, row: dict) -> dict:
    if row["status"] != "ok":
        raise SystemExit(f"held-out retraining of {program!r} failed: {row.get('error')}")
    return {"per_seed": row["score_per_seed"], "mean": row["score"], "metric": row["score_metric"],
            "run_dir": row["run_dir"]}


def _plot(runs: list[dict], methods: list[str], stats: dict[str, dict], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    for m in methods:
        curves = np.array([r["best_so_far"] for r in runs if r["method"] == m])
        x = np.arange(1, curves.shape[1] + 1)
        ax.plot(x, curves.mean(0), label=f"{m} (mean of {len(curves)} meta-seeds)")
        ax.fill_between(x, curves.min(0), curves.max(0), alpha=0.15)
    ax.set_xlabel("candidates trained (inner-loop budget)")
    ax.set_ylabel("best validation score so far")
    ax.legend()
    ax.grid(alpha=0.3)
    names = list(stats)
    iv = [stats[n]["iqm"] for n in names]
    y = np.arange(len(names))
    bx.errorbar([i["value"] for i in iv], y, xerr=[[i["value"] - i["low"] for i in iv],
                                                   [i["high"] - i["value"] for i in iv]], fmt="o", capsize=4)
    bx.set_yticks(y, names)
    bx.invert_yaxis()
    bx.set_xlabel(f"held-out {metric}: IQM, 95% bootstrap CI")
    bx.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
