"""G-RA gated vs ungated step rewards on swe/PatchSelect-v0 (experiments/gra_swe.yaml).

Runs (or reads) the two experiments — ``rewardlab run experiments/gra_swe.yaml`` and the same
with ``--set reward.gate=null`` — over their seeds, then for every seed:

- from the runner's logs: the final evaluation success rate (train tasks, unshaped env) and
  the training-time per-episode sums of the step-level terms as paid (``reward_terms/...``);
- a behaviour probe: the final checkpoint acts greedily for ``--episodes`` episodes on the
  train and the held-out test split of an *ungated* instrumented env, which counts the raw
  step-reward events per episode (what each policy actually does, paid or not).

Prints a Markdown table and writes a PNG of the training curves. Run directories, the final
evaluations and the late-training window (the last 20% of the steps) are read through
``rewardlab.results``.

    .venv/bin/python benchmarks/gra_swe_compare.py --run            # both runs, then the report
    .venv/bin/python benchmarks/gra_swe_compare.py --run --set agent.gamma=0.99 ...  # variants
    .venv/bin/python benchmarks/gra_swe_compare.py --gated runs/gra_swe__X --ungated runs/gra_swe_ungated__Y
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

import rewardlab
from rewardlab import results as R
from rewardlab.core import keys

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "experiments" / "gra_swe.yaml"
STEP_TERMS = ("localize", "test_improved")
LATE = 0.2  # late training: the last 20% of the steps


def launch(extra: list[str]) -> Path:
    out = subprocess.run([sys.executable, "-m", "rewardlab.cli", "run", str(EXPERIMENT), *extra],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("run directory:"))
    return REPO / line.split(":", 1)[1].strip()


def probe(seed_dir: Path, cfg: dict, split: str, episodes: int) -> dict[str, float]:
    """Greedy rollouts of the final checkpoint on an ungated env that counts raw step rewards."""
    from rewardlab.agents.ppo import make_ppo

    terms = [t for t in cfg["reward"]["terms"]]
    kwargs = {**cfg["env"]["kwargs"], "split": split, "outcomes": "shipped"}
    venv = rewardlab.make_vec(cfg["env"]["id"], 4, reward=terms, **kwargs)
    agent = make_ppo(venv, gamma=cfg["agent"]["gamma"], seed=0, params=cfg["agent"]["params"])
    agent.load(seed_dir / "checkpoint")
    obs, _ = venv.reset(seed=123)
    eps = []
    while len(eps) < episodes:
        obs, *_ = venv.step(agent.act(obs, True))
        eps += venv.pop_episodes()
    venv.close()
    eps = eps[:episodes]
    out = {"success": float(np.mean([e.success for e in eps])), "length": float(np.mean([e.length for e in eps]))}
    for name in STEP_TERMS:
        out[name] = float(np.mean([e.terms[name] for e in eps]))
        out[name + "_unsolved"] = float(np.mean([e.terms[name] for e in eps if not e.success] or [0.0]))
    return out


def summarise(run_dir: Path, episodes: int) -> dict:
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    runs = R.load_runs(run_dir)
    train_success = runs.late(keys.SUCCESS_RATE, LATE)
    paid = {n: runs.late(keys.TERM_PREFIX + n, LATE) for n in STEP_TERMS}
    rows = []
    for i, s in enumerate(runs.seeds):
        train = [r for r in s.rows if r["kind"] == "train"]
        row = {"seed": s.path.name, "final_success": s.final["success_rate"],
               "train_success": float(train_success[i]),
               "curve": [(r["step"], r.get(keys.SUCCESS_RATE, np.nan),
                          sum(r.get(keys.TERM_PREFIX + n, 0.0) for n in STEP_TERMS)) for r in train]}
        for n in STEP_TERMS:
            row["paid_" + n] = float(paid[n][i])
        row["train_probe"] = probe(s.path, cfg, "train", episodes)
        row["test_probe"] = probe(s.path, cfg, "test", episodes)
        rows.append(row)
    return {"run_dir": str(run_dir.relative_to(REPO) if run_dir.is_relative_to(REPO) else run_dir), "seeds": rows}


def ms(xs) -> str:
    xs = np.asarray(xs, float)
    return f"{xs.mean():.2f} ± {xs.std():.2f}"


def table(res: dict[str, dict]) -> str:
    lines = ["| | gated (G-RA) | ungated |", "|---|---|---|"]

    def row(label, fn):
        lines.append(f"| {label} | " + " | ".join(ms([fn(s) for s in res[k]["seeds"]]) for k in ("gated", "ungated"))
                     + " |")

    row("final eval success, train tasks (runner)", lambda s: s["final_success"])
    lines.append("| final eval success, train tasks: IQM [95% CI] | " + " | ".join(
        str(R.iqm_ci([s["final_success"] for s in res[k]["seeds"]])) for k in ("gated", "ungated")) + " |")
    row("success, train tasks (probe)", lambda s: s["train_probe"]["success"])
    row("success, held-out test tasks (probe)", lambda s: s["test_probe"]["success"])
    row("episode length, train (probe)", lambda s: s["train_probe"]["length"])
    for n in STEP_TERMS:
        row(f"raw {n} reward / episode (probe)", lambda s, n=n: s["train_probe"][n])
        row(f"raw {n} reward / unsolved episode (probe)", lambda s, n=n: s["train_probe"][n + "_unsolved"])
        row(f"paid {n} / episode, last 20% of training", lambda s, n=n: s["paid_" + n])
    return "\n".join(lines)


def plot(res: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, color in (("gated", "tab:blue"), ("ungated", "tab:red")):
        for i, s in enumerate(res[key]["seeds"]):
            c = np.array(s["curve"], float)
            lab = key if i == 0 else None
            axes[0].plot(c[:, 0], c[:, 1], color=color, alpha=0.7, label=lab)
            axes[1].plot(c[:, 0], c[:, 2], color=color, alpha=0.7, label=lab)
    axes[0].set(xlabel="env steps", ylabel="training success rate", title="solves (all tests pass)")
    axes[1].set(xlabel="env steps", ylabel="step-level reward paid / episode", title="process rewards collected")
    axes[0].legend()
    n = {len(res[k]["seeds"]) for k in ("gated", "ungated")}
    fig.suptitle(f"swe/PatchSelect-v0: G-RA gated vs ungated step rewards ({'/'.join(map(str, sorted(n)))} seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="store_true", help="run both experiments first")
    ap.add_argument("--gated", type=Path)
    ap.add_argument("--ungated", type=Path)
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override passed to both runs (with --run)")
    ap.add_argument("--png", type=Path, default=REPO / "docs" / "methods" / "gra_swe.png")
    args = ap.parse_args(argv)
    if args.run:
        extra = [x for kv in args.set for x in ("--set", kv)]
        args.gated = launch(extra)
        args.ungated = launch([*extra, "--set", "name=gra_swe_ungated", "--set", "reward.gate=null"])
    if not (args.gated and args.ungated):
        ap.error("give --run or both --gated and --ungated run directories")
    res = {"gated": summarise(args.gated, args.episodes), "ungated": summarise(args.ungated, args.episodes)}
    print(f"gated: {res['gated']['run_dir']}  ungated: {res['ungated']['run_dir']}")
    print(table(res))
    plot(res, args.png)
    print(f"plot: {args.png}")


if __name__ == "__main__":
    main()
