"""Do reward distances predict regret? EPIC / DARD / STARC vs the L2 distance of raw rewards on
random tabular MDPs (the qualitative result of the STARC paper, Skalse et al. 2023).

    python scripts/reward_distance_regret.py                 # 8 seeds x 4 MDPs x 64 reward pairs
    python scripts/reward_distance_regret.py --quick         # smoke test (seconds)

For every random MDP (``--states`` states, ``--actions`` actions, each (s, a) leading to
``--successors`` random next states, γ = ``--gamma``, uniform initial state) and every reward pair
(R1, R2) it computes each distance and the normalised regret of optimising R2 instead of R1:
``(J1(π1) − J1(π2)) / (J1(π1) − J1(π_worst))``. A metric is good when it ranks pairs like regret,
so the score is the Spearman rank correlation between distance and regret over the pairs of one
MDP. Reported: the mean over MDPs with a 95% bootstrap CI over MDPs (rliable if installed, else
``scipy.stats.bootstrap``, percentile), and the paired difference to ``raw-l2``.

Reward pairs: R1 ~ N(0, 1) per (s, a, s'); R2 = cos(θ)·R1 + sin(θ)·N' with θ ~ U(0, π) (so the
pairs range from equal to opposite). Two conditions:

- ``plain``: R2 as above;
- ``shaped``: R2 is then scaled by c ~ logU(0.1, 10) and shaped by a random potential
  Φ ~ N(0, σ²) with σ ~ U(0, 3) — transformations that leave every optimal policy unchanged.

Every distance uses the same coverage (weights over S×A×S): D(s, a, s') = T(s' | s, a) / (S·A),
the transitions an agent can actually take under uniform states and actions. EPIC uses uniform
D_S and D_A; DARD uses the true T.

Writes a JSON file with every per-MDP correlation and a PNG (``--plot``).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from rewardlab.metrics import (
    dard_distance,
    direct_distance,
    epic_distance,
    normalized_regret,
    shape_reward,
    starc_distance,
)

METRICS = ["raw-l2", "starc-none-l2", "epic", "dard", "starc-epic-l2", "starc-dard-l2", "starc-minimal-l2"]
BASELINE = "raw-l2"
CONDITIONS = ["plain", "shaped"]


def random_mdp(rng: np.random.Generator, ns: int, na: int, k: int) -> np.ndarray:
    """T[s, a, s']: each (s, a) reaches ``k`` distinct random states with Dirichlet(1) probabilities."""
    t = np.zeros((ns, na, ns))
    for s in range(ns):
        for a in range(na):
            nxt = rng.choice(ns, size=k, replace=False)
            t[s, a, nxt] = rng.dirichlet(np.ones(k))
    return t


def reward_pair(rng: np.random.Generator, shape: tuple[int, int, int], gamma: float, condition: str):
    r1 = rng.normal(size=shape)
    theta = rng.uniform(0.0, np.pi)
    r2 = np.cos(theta) * r1 + np.sin(theta) * rng.normal(size=shape)
    if condition == "shaped":
        scale = float(np.exp(rng.uniform(np.log(0.1), np.log(10.0))))
        phi = rng.normal(scale=rng.uniform(0.0, 3.0), size=shape[0])
        r2 = scale * shape_reward(r2, phi, gamma)
    return r1, r2


def distances(r1: np.ndarray, r2: np.ndarray, t: np.ndarray, gamma: float, cov: np.ndarray) -> dict[str, float]:
    return {
        "raw-l2": direct_distance(r1, r2, 2, cov),
        "starc-none-l2": starc_distance(r1, r2, gamma, canon="none", coverage=cov),
        "epic": epic_distance(r1, r2, gamma, coverage=cov),
        "dard": dard_distance(r1, r2, t, gamma, coverage=cov),
        "starc-epic-l2": starc_distance(r1, r2, gamma, canon="epic", coverage=cov),
        "starc-dard-l2": starc_distance(r1, r2, gamma, canon="dard", transitions=t, coverage=cov),
        "starc-minimal-l2": starc_distance(r1, r2, gamma, canon="minimal", coverage=cov),
    }


def run_mdp(seed: int, index: int, args: argparse.Namespace, condition: str) -> dict:
    rng = np.random.default_rng([seed, index, CONDITIONS.index(condition)])
    t = random_mdp(rng, args.states, args.actions, args.successors)
    cov = t / (args.states * args.actions)
    rows = []
    for _ in range(args.pairs):
        r1, r2 = reward_pair(rng, t.shape, args.gamma, condition)
        row = distances(r1, r2, t, args.gamma, cov)
        row["regret"] = normalized_regret(r1, r2, t, args.gamma)
        rows.append(row)
    regret = np.array([r["regret"] for r in rows])
    rho = {m: float(stats.spearmanr([r[m] for r in rows], regret).statistic) for m in METRICS}
    return {"seed": seed, "mdp": index, "condition": condition, "spearman": rho, "pairs": rows}


def mean_ci(values: np.ndarray, reps: int, seed: int) -> tuple[float, float, float]:
    """Mean and 95% bootstrap CI over MDPs: rliable's interval if rliable is installed, else SciPy's."""
    values = np.asarray(values, np.float64)
    try:
        from rliable import library as rly
    except ImportError:
        res = stats.bootstrap((values,), np.mean, n_resamples=reps, confidence_level=0.95, method="percentile",
                              rng=np.random.default_rng(seed))
        return float(values.mean()), float(res.confidence_interval.low), float(res.confidence_interval.high)
    with warnings.catch_warnings():  # arch (under rliable) warns that RandomState is deprecated
        warnings.simplefilter("ignore", FutureWarning)
        point, cis = rly.get_interval_estimates({"x": values[:, None]}, lambda x: np.array([np.mean(x)]), reps=reps,
                                                random_state=np.random.RandomState(seed))
    return float(point["x"][0]), float(cis["x"][0, 0]), float(cis["x"][1, 0])


def ci_backend() -> str:
    try:
        import rliable  # noqa: F401
    except ImportError:
        return "scipy.stats.bootstrap (percentile; rliable is not installed)"
    return "rliable.library.get_interval_estimates (percentile)"


def summarise(results: list[dict], reps: int) -> dict:
    out: dict = {}
    for cond in CONDITIONS:
        rs = [r for r in results if r["condition"] == cond]
        if not rs:
            continue
        rho = {m: np.array([r["spearman"][m] for r in rs]) for m in METRICS}
        per_seed = {m: {int(s): float(np.mean([r["spearman"][m] for r in rs if r["seed"] == s]))
                        for s in sorted({r["seed"] for r in rs})} for m in METRICS}
        out[cond] = {
            "mdps": len(rs),
            "spearman": {m: mean_ci(rho[m], reps, 0) for m in METRICS},
            "minus_raw_l2": {m: mean_ci(rho[m] - rho[BASELINE], reps, 1) for m in METRICS if m != BASELINE},
            "per_seed_mean": per_seed,
        }
    return out


def print_table(summary: dict) -> None:
    for cond, s in summary.items():
        print(f"\ncondition {cond} ({s['mdps']} MDPs): Spearman(distance, normalised regret), mean [95% CI] over MDPs")
        print("| metric | Spearman ρ | ρ − ρ(raw-l2) | resolved (CI of the difference excludes 0) | per-seed means |")
        print("|---|---|---|---|---|")
        for m in METRICS:
            mean, lo, hi = s["spearman"][m]
            if m == BASELINE:
                diff, resolved = "–", "–"
            else:
                d, dlo, dhi = s["minus_raw_l2"][m]
                diff = f"{d:+.3f} [{dlo:+.3f}, {dhi:+.3f}]"
                resolved = "yes, better" if dlo > 0 else ("yes, worse" if dhi < 0 else "no")
            seeds = ", ".join(f"{v:.2f}" for v in s["per_seed_mean"][m].values())
            print(f"| {m} | {mean:.3f} [{lo:.3f}, {hi:.3f}] | {diff} | {resolved} | {seeds} |")


def plot(results: list[dict], summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    y = np.arange(len(METRICS))
    for j, (cond, color) in enumerate([("plain", "tab:blue"), ("shaped", "tab:orange")]):
        if cond not in summary:
            continue
        s = summary[cond]["spearman"]
        mean = np.array([s[m][0] for m in METRICS])
        err = np.array([[s[m][0] - s[m][1] for m in METRICS], [s[m][2] - s[m][0] for m in METRICS]])
        ax.errorbar(mean, y + (j - 0.5) * 0.3, xerr=err, fmt="o", color=color, capsize=3,
                    label=f"{cond} ({summary[cond]['mdps']} MDPs)")
    ax.set_yticks(y, METRICS)
    ax.invert_yaxis()
    ax.axvline(0.0, color="grey", lw=0.5)
    ax.set_xlabel("Spearman ρ(distance, normalised regret): mean, 95% CI over MDPs")
    ax.legend(fontsize=8)
    example = next(r for r in results if r["condition"] == "shaped")
    regret = [p["regret"] for p in example["pairs"]]
    for ax, m in zip(axes[1:], [BASELINE, "starc-epic-l2"], strict=True):
        ax.scatter([p[m] for p in example["pairs"]], regret, s=12)
        ax.set_xlabel(m)
        ax.set_ylabel("normalised regret")
        ax.set_title(f"one MDP, shaped condition: ρ = {example['spearman'][m]:.2f}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=8, help="independent seeds (batches of MDPs), default 8")
    p.add_argument("--mdps", type=int, default=4, help="MDPs per seed and condition, default 4")
    p.add_argument("--pairs", type=int, default=64, help="reward pairs per MDP, default 64")
    p.add_argument("--states", type=int, default=32)
    p.add_argument("--actions", type=int, default=4)
    p.add_argument("--successors", type=int, default=4, help="next states reachable from each (s, a)")
    p.add_argument("--gamma", type=float, default=0.95)
    p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--out", type=Path, default=Path("runs/reward_distance_regret.json"))
    p.add_argument("--plot", type=Path, default=Path("docs/methods/reward_distances_regret.png"))
    p.add_argument("--quick", action="store_true", help="tiny smoke run (writes under runs/ only)")
    args = p.parse_args()
    if args.quick:
        args.seeds, args.mdps, args.pairs, args.states, args.actions, args.reps = 2, 1, 12, 6, 2, 200
        args.successors = min(args.successors, 3)
        args.out = Path("runs/reward_distance_regret_quick.json")
        args.plot = Path("runs/reward_distance_regret_quick.png")
    start = time.perf_counter()
    results = [run_mdp(seed, i, args, cond) for cond in CONDITIONS for seed in range(args.seeds)
               for i in range(args.mdps)]
    summary = summarise(results, args.reps)
    print(f"{args.seeds} seeds x {args.mdps} MDPs x {args.pairs} pairs per condition; S={args.states}, "
          f"A={args.actions}, {args.successors} successors per (s, a), γ={args.gamma}; CIs: {ci_backend()}, "
          f"{args.reps} resamples; {time.perf_counter() - start:.0f} s")
    print_table(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "summary": summary,
                                    "per_mdp": [{k: v for k, v in r.items() if k != "pairs"} for r in results]},
                                   indent=1))
    plot(results, summary, args.plot)
    print(f"\nwrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()
