"""How far BARFI moved its learned reward from the naive sum ``r_p + r_aux`` it starts from.

For every finished seed of a BARFI run (a ``rewardlab compare`` variant folder or a run
directory), the term is rebuilt from the run's resolved config in two states: as built (the
start of training: φ = (1, 0), i.e. exactly the naive sum) and with the φ, ψ of the run's final
checkpoint (the end of training). Each is compared with the naive sum and with the primary
reward ``r_p`` alone by ``rewardlab.metrics.compare_rewards`` (EPIC and STARC distances on the
same uniformly-random-action transitions of the run's env, each with its bootstrap CI); the naive
sum vs ``r_p`` gives the scale. Across seeds: IQM with a 95% stratified-bootstrap CI from
``rewardlab.results``, plus a plot of the per-seed values.

    python scripts/barfi_distance.py runs/compare/barfi_gridworld_ci/barfi \
        [--metrics epic,starc-epic-l2] [--samples 2000] [--png docs/methods/barfi_distance_gridworld.png]

The learned reward is the one the agent trained on: ``r_p + φ₁(s)·r_aux + φ₂(s)``, where a
``potential`` aux term uses the learned γ_φ; the distances canonicalise with the learner's γ
(``agent.gamma``), the γ both fixed rewards are defined with.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from rewardlab import results as R
from rewardlab.agents.ppo.agent import PPOAgent
from rewardlab.agents.ppo.checkpoint import load_checkpoint
from rewardlab.core.stack import RewardStack
from rewardlab.core.terms import build_term
from rewardlab.metrics import collect_rollouts, compare_rewards

PAIRS = (("start", "naive"), ("end", "naive"), ("end", "primary"), ("naive", "primary"))


def seed_dirs(path: Path) -> list[Path]:
    """Finished ``seed_*`` directories under ``path`` (final evaluation written)."""
    found = sorted(p.parent for p in path.rglob("final_eval.json"))
    if not found:
        raise SystemExit(f"{path}: no finished seed (no final_eval.json below it)")
    return found


def barfi_params(config: dict[str, Any]) -> dict[str, Any]:
    for t in config["reward"]["terms"]:
        if isinstance(t, dict) and t.get("name") == "barfi":
            return dict(t.get("params") or {})
    raise SystemExit("the run's reward has no 'barfi' term")


def stacks(config: dict[str, Any], seed_dir: Path) -> dict[str, Any]:
    """Factories of the four rewards of one seed: naive, primary, BARFI at start and at end."""
    gamma = float(config["agent"]["gamma"])
    params = barfi_params(config)
    aux = params["aux"]
    aux = {"name": aux} if isinstance(aux, str) else aux
    state = load_checkpoint(seed_dir / "checkpoint", PPOAgent.checkpoint_file, "ppo")["terms"]["barfi"]

    def barfi(loaded: bool):
        def make() -> RewardStack:
            term = build_term("barfi", params, gamma=gamma)
            if loaded:
                term.load_state_dict(state)
            return RewardStack([term])
        return make

    return {"naive": ["env", aux], "primary": ["env"], "start": barfi(False), "end": barfi(True),
            "gamma_phi": float(torch.sigmoid(state["psi"]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", type=Path, help="a BARFI run directory or a compare variant folder")
    ap.add_argument("--metrics", default="epic,starc-epic-l2")
    ap.add_argument("--samples", type=int, default=2000, help="random-action transitions of the env")
    ap.add_argument("--seed", type=int, default=0, help="seed of the rollouts and bootstrap")
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    metrics = [m for m in args.metrics.split(",") if m]
    dirs = seed_dirs(args.runs)
    config = yaml.safe_load((dirs[0].parent / "config.yaml").read_text())
    env_id, env_kwargs = config["env"]["id"], dict(config["env"].get("kwargs") or {})
    gamma = float(config["agent"]["gamma"])
    data = collect_rollouts(env_id, args.samples, seed=args.seed, env_kwargs=env_kwargs)

    per_seed: dict[str, dict[str, list[float]]] = {m: {f"{a}-{b}": [] for a, b in PAIRS} for m in metrics}
    rows = []
    for d in dirs:
        s = stacks(yaml.safe_load((d.parent / "config.yaml").read_text()), d)
        for a, b in PAIRS:
            res = compare_rewards(env_id, s[a], s[b], metrics=metrics, gamma=gamma, data=data, seed=args.seed,
                                  names=(a, b))
            for r in res:
                per_seed[r.metric][f"{a}-{b}"].append(r.value)
                rows.append({"seed_dir": str(d), "pair": f"{a}-{b}", "metric": r.metric, "value": r.value,
                             "ci": [r.ci_low, r.ci_high], "gamma_phi": s["gamma_phi"]})
                print(f"{d.name} {a:>6} vs {b:<7} {r}  (γ_φ = {s['gamma_phi']:.3f})", flush=True)

    print(f"\n{env_id} {env_kwargs}: {data.n} random-action transitions ({np.count_nonzero(data.env_reward)} with "
          f"a non-zero env reward), {len(dirs)} seeds, γ = {gamma}")
    print("| metric | pair | per seed | IQM [95% CI] over seeds |")
    print("|---|---|---|---|")
    summary = {}
    for m in metrics:
        for pair, vals in per_seed[m].items():
            finite = [v for v in vals if np.isfinite(v)]
            # Undefined (nan): a reward constant after canonicalisation on these transitions.
            iv = R.iqm_ci(finite) if finite else None
            summary[f"{m}/{pair}"] = {"per_seed": vals, **(iv.as_dict() if iv else {})}
            cell = str(iv) if iv else "undefined"
            if iv and len(finite) < len(vals):
                cell += f" ({len(vals) - len(finite)} seeds undefined)"
            print(f"| {m} | {pair.replace('-', ' vs ')} | {', '.join(f'{v:.3f}' for v in vals)} | {cell} |")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.4), squeeze=False)
        for ax, m in zip(axes[0], metrics, strict=True):
            for i, pair in enumerate(per_seed[m]):
                vals = np.asarray(per_seed[m][pair])
                iv = summary[f"{m}/{pair}"]
                if "value" not in iv:
                    continue
                ax.scatter(np.full(len(vals), i) + np.linspace(-0.12, 0.12, len(vals)), vals, s=14, color="tab:gray")
                ax.errorbar(i + 0.3, iv["value"], yerr=[[iv["value"] - iv["low"]], [iv["high"] - iv["value"]]],
                            fmt="o", color="tab:blue", capsize=3)
            ax.set_xticks(range(len(per_seed[m])), [p.replace("-", "\nvs ") for p in per_seed[m]])
            ax.set_title(f"{m} ({env_id}, {len(dirs)} seeds)")
            ax.set_ylabel("distance (seeds: grey; IQM, 95% CI: blue)")
        fig.tight_layout()
        fig.savefig(args.png, dpi=110)
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
