"""CALM learning curves: eval success rate (mean ± std over seeds) per run directory, as a
table and a PNG. Each argument is ``label=RUN_DIR``; RUN_DIR may be a quoted glob matching
several run directories (e.g. one per seed), whose seeds are pooled.

    python benchmarks/calm_report.py 'sparse=runs/sparse_keyroom_s5__*' \\
        'oracle=runs/calm_oracle_keyroom_s5__*' 'scripted=runs/calm_scripted_keyroom_s5__*' \\
        --out docs/methods/calm_keyroom_s5.png
"""

from __future__ import annotations

import argparse
import glob
from collections import defaultdict
from pathlib import Path

import numpy as np

from rewardlab.core import keys
from rewardlab.experiment.runner import read_metrics, seed_dirs


def expand(pattern: str) -> list[Path]:
    """The seed directories of every run directory matching ``pattern`` (a path or a glob)."""
    runs = sorted(glob.glob(pattern)) or [pattern]
    return [d for r in runs for d in seed_dirs(Path(r))]


def curves(run: str, key: str, kinds: tuple[str, ...]) -> tuple[list[int], np.ndarray, list[str]]:
    """Steps and a (seeds, steps) array of ``key`` at the rows of ``kinds`` common to all seeds."""
    per_seed: list[dict[int, float]] = []
    names = []
    for d in expand(run):
        if not (d / "final_eval.json").is_file():
            continue  # a seed still training
        rows = [r for r in read_metrics(d) if r["kind"] in kinds and key in r]
        per_seed.append({r["step"]: r[key] for r in rows})
        names.append(f"{d.parent.name}/{d.name}")
    steps = sorted(set.intersection(*(set(s) for s in per_seed))) if per_seed else []
    return steps, np.array([[s[x] for x in steps] for s in per_seed]), names


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="label=RUN_DIR")
    p.add_argument("--out", default=None, help="PNG of the curves")
    p.add_argument("--key", default=keys.EVAL_SUCCESS_RATE)
    p.add_argument("--random-env", default=None, help="also evaluate a uniform random policy on this env id")
    p.add_argument("--random-episodes", type=int, default=200)
    args = p.parse_args()
    random_rate = None
    if args.random_env:
        import rewardlab
        from rewardlab.experiment.evaluate import evaluate

        venv = rewardlab.make_vec(args.random_env, 4, obs=["chars_crop"])
        rng = np.random.default_rng(0)
        n = int(venv.single_action_space.n)
        res = evaluate(lambda obs, det: rng.integers(0, n, size=4), venv, args.random_episodes, seed=10_000)
        venv.close()
        random_rate = res.success_rate
        print(f"uniform random policy on {args.random_env}: success rate {random_rate:.3f} over "
              f"{args.random_episodes} episodes, true return {res.mean_return:.3f}")
    results = {}
    for spec in args.runs:
        label, _, path = spec.partition("=")
        results[label] = curves(path, args.key, ("eval", "final"))
    extra: dict[str, dict[str, float]] = defaultdict(dict)
    for spec in args.runs:
        label, _, path = spec.partition("=")
        for d in expand(path):
            if not (d / "final_eval.json").is_file():
                continue
            train = [r for r in read_metrics(d) if r["kind"] == "train"]
            for k in ("reward_terms/calm/queries", "reward_terms/calm/garbled", "reward_terms/calm/skipped"):
                if train and k in train[-1]:
                    extra[label][k] = extra[label].get(k, 0.0) + train[-1][k]
    print(f"{args.key} (mean ± std over seeds; final = last row)")
    for label, (steps, vals, names) in results.items():
        mean, std = vals.mean(0), vals.std(0)
        cells = "  ".join(f"{s:>6}: {m:.2f}±{sd:.2f}" for s, m, sd in zip(steps, mean, std, strict=True))
        print(f"{label:<10} seeds={len(names)}  {cells}")
        print(f"{'':<10} per seed final: {', '.join(f'{v:.2f}' for v in vals[:, -1])}")
        if extra[label]:
            print(f"{'':<10} LLM queries over all seeds: " + ", ".join(f"{k.split('/')[-1]}={v:.0f}"
                                                                         for k, v in extra[label].items()))
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.2))
        for label, (steps, vals, names) in results.items():
            m, sd = vals.mean(0), vals.std(0)
            ax.plot(steps, m, marker="o", label=f"{label} ({len(names)} seeds)")
            ax.fill_between(steps, m - sd, m + sd, alpha=0.2)
        if random_rate is not None:
            ax.axhline(random_rate, color="gray", ls="--", label="uniform random policy")
        ax.set_xlabel("environment steps")
        ax.set_ylabel(args.key)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out, dpi=110)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
