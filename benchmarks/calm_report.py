"""CALM learning curves: eval success rate per run directory (mean ± std and IQM [95% CI] over
seeds), as a table and a PNG. Each argument is ``label=RUN_DIR``; RUN_DIR may be a quoted glob
matching several run directories (e.g. one per seed), whose finished seeds are pooled. Loading,
seed alignment and the statistics come from ``rewardlab.results``.

    python benchmarks/calm_report.py 'sparse=runs/sparse_keyroom_s5__*' \\
        'oracle=runs/calm_oracle_keyroom_s5__*' 'scripted=runs/calm_scripted_keyroom_s5__*' \\
        --out docs/methods/calm_keyroom_s5.png
"""

from __future__ import annotations

import argparse

import numpy as np

from rewardlab import results as R
from rewardlab.core import keys

COUNTERS = ("reward_terms/calm/queries", "reward_terms/calm/garbled", "reward_terms/calm/skipped")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="label=RUN_DIR")
    p.add_argument("--out", default=None, help="PNG of the curves")
    p.add_argument("--key", default=keys.EVAL_SUCCESS_RATE)
    p.add_argument("--random-env", default=None, help="also evaluate a uniform random policy on this env id")
    p.add_argument("--random-episodes", type=int, default=200)
    args = p.parse_args(argv)
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
    groups: dict[str, R.Runs] = {}
    for spec in args.runs:
        label, sep, path = spec.partition("=")
        if not sep:
            p.error(f"expected label=RUN_DIR, got {spec!r}")
        groups[label] = R.load_runs(path, name=label)
    print(f"{args.key} (mean ± std over seeds at the evaluation steps; final = last row)")
    curves = {label: g.curves(args.key, R.EVAL_KINDS) for label, g in groups.items()}
    for label, c in curves.items():
        mean, std = c.values.mean(0), c.values.std(0)
        cells = "  ".join(f"{s:>6}: {m:.2f}±{sd:.2f}" for s, m, sd in zip(c.steps, mean, std, strict=True))
        print(f"{label:<10} seeds={len(c.labels)}  {cells}")
        print(f"{'':<10} per seed final: {', '.join(f'{v:.2f}' for v in c.values[:, -1])}  "
              f"IQM {R.iqm_ci(c.values[:, -1])}")
        g = groups[label]
        counters = {k.split("/")[-1]: sum(s.series(k)[1][-1] for s in g.seeds) for k in COUNTERS if g.has_key(k)}
        if counters:
            print(f"{'':<10} LLM queries over all seeds: " + ", ".join(f"{k}={v:.0f}" for k, v in counters.items()))
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.2))
        for label, c in curves.items():
            steps, m, lo, hi = R.iqm_curve(c)
            ax.plot(steps, m, marker="o", label=f"{label} ({len(c.labels)} seeds)")
            ax.fill_between(steps, lo, hi, alpha=0.2)
        if random_rate is not None:
            ax.axhline(random_rate, color="gray", ls="--", label="uniform random policy")
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"{args.key} (IQM over seeds, 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out, dpi=110)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
