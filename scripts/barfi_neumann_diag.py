"""How much the Neumann terms change BARFI's hypergradient on real PPO rollouts.

For every outer update of a short BARFI run it compares the implicit hypergradient (the
term's ``neumann_terms``) with the first-order one (1 term) computed on the same data, and
measures ``α·|H g| / |g|``, the size of the first Hessian correction relative to the
identity term. Prints means over the updates.

    python scripts/barfi_neumann_diag.py [--alpha 0.1] [--steps 8192]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import rewardlab
import rewardlab.shaping.barfi as barfi
from rewardlab.agents.ppo import make_ppo

CASES = [
    ("toy/GridWorld-v0", {"name": "grid_cell", "params": {"cell": [0, 5]}}, {"size": 6}),
    ("CartPole-v1", {"name": "cartpole_velocity"}, {}),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alpha", type=float, default=0.1, help="neumann_alpha of the term")
    ap.add_argument("--steps", type=int, default=8192)
    args = ap.parse_args()
    original = barfi.neumann_hypergradient
    log: list[tuple[float, float, float]] = []

    def compared(inner, params, outer, reward_params, alpha, n_terms, stats=None):
        full = original(inner, params, outer, reward_params, alpha, n_terms, stats)
        first = original(inner, params, outer, reward_params, alpha, 1)
        vf, v1 = torch.cat([x.flatten() for x in full]), torch.cat([x.flatten() for x in first])
        hg = torch.autograd.grad(inner, params, grad_outputs=[o.detach() for o in outer], retain_graph=True,
                                 allow_unused=True)
        h_norm = torch.sqrt(sum((h**2).sum() for h in hg if h is not None))
        g_norm = torch.sqrt(sum((o**2).sum() for o in outer))
        log.append((float(torch.nn.functional.cosine_similarity(vf, v1, 0)), float(vf.norm() / v1.norm()),
                    float(alpha * h_norm / g_norm)))
        return full

    barfi.neumann_hypergradient = compared
    try:
        for env, aux, kwargs in CASES:
            log.clear()
            params = {"aux": aux, "update_every": 1, "neumann_alpha": args.alpha}
            venv = rewardlab.make_vec(env, 8, reward=[{"name": "barfi", "params": params}], gamma=0.99, **kwargs)
            make_ppo(venv, gamma=0.99, seed=0, params={"n_steps": 128}).learn(args.steps)
            a = np.array(log)
            print(f"{env} (alpha={args.alpha}, {len(a)} updates): cos(implicit, first-order) mean {a[:, 0].mean():.4f} "
                  f"min {a[:, 0].min():.4f}; |implicit|/|first-order| {a[:, 1].mean():.2f}; "
                  f"alpha*|Hg|/|g| {a[:, 2].mean():.4f}")
    finally:
        barfi.neumann_hypergradient = original


if __name__ == "__main__":
    main()
