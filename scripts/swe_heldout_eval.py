"""Success of trained SWE policies on the held-out test tasks (docs/methods/gra_verpo_gdpo.md).

``rewardlab compare`` evaluates every seed on the training tasks (unseen env seeds). This
script reloads each seed's last checkpoint and evaluates it, with the true (unshaped) env
reward, on ``split: test`` — the 12 tasks of the 3 modules no training task uses — then prints
per variant the IQM over seeds of the success rate with its stratified-bootstrap 95% CI and
P(variant > the first one), from ``rewardlab.results``.

    python scripts/swe_heldout_eval.py gdpo=runs/compare/gdpo_swe/base sum=runs/compare/gdpo_swe/sum
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rewardlab import results as R
from rewardlab.agents import AGENTS
from rewardlab.config.schema import load_config
from rewardlab.envs import make_vec
from rewardlab.experiment.evaluate import evaluate
from rewardlab.experiment.runner import CKPT_DIR, seed_dirs


def heldout_success(variant_dir: Path, episodes: int) -> list[float]:
    """One success rate per seed of every run under ``variant_dir`` (its last checkpoint, test split)."""
    out = []
    for run in sorted(p for p in variant_dir.iterdir() if (p / "config.yaml").is_file()):
        cfg, _ = load_config(run / "config.yaml")
        kwargs = {**cfg.env.kwargs, "split": "test"}
        for seed_dir in seed_dirs(run):
            seed = int(seed_dir.name.split("_")[-1])
            venv = make_vec(cfg.env.id, cfg.env.n_envs, reward=cfg.reward.build_stack(cfg.agent.gamma), **kwargs)
            agent = AGENTS.get(cfg.agent.name)(venv, gamma=cfg.agent.gamma, seed=seed, params=dict(cfg.agent.params))
            agent.load(seed_dir / CKPT_DIR)
            eval_env = make_vec(cfg.env.id, cfg.eval.n_envs, **kwargs)
            res = evaluate(agent.act, eval_env, episodes, seed=20_000 + seed, deterministic=cfg.eval.deterministic)
            out.append(float(res.success_rate))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="NAME=DIR: a variant's folder of run directories")
    parser.add_argument("--episodes", type=int, default=200)
    args = parser.parse_args()
    named = [v.split("=", 1) for v in args.variants]
    success = {name: np.array(heldout_success(Path(d), args.episodes)) for name, d in named}
    base = named[0][0]
    print(f"| variant | seeds | held-out success, IQM [95% CI] | P(> {base}) | per seed |")
    print("|---|---|---|---|---|")
    for name, s in success.items():
        p = "(baseline)" if name == base else str(R.probability_of_improvement(s, success[base]))
        print(f"| {name} | {len(s)} | {R.iqm_ci(s)} | {p} | {', '.join(f'{x:.2f}' for x in s)} |")


if __name__ == "__main__":
    main()
