"""Mean RA-BC weight per demo style, as ``experiments/sarm_ra_bc.yaml`` computes them (one seed).

    OMP_NUM_THREADS=1 nice .venv/bin/python scripts/sarm_weights.py --seed 0
"""

from __future__ import annotations

import argparse

import numpy as np

MIX = {"clean": 10, "slow": 10, "noisy": 10, "detour": 10, "fail": 20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sarm-styles", nargs="*", default=["clean", "slow", "noisy"],
                    help="styles that train SARM (none given: every successful demo)")
    args = ap.parse_args()

    import torch

    from rewardlab.agents.bc import make_ra_bc
    from rewardlab.imitation.sarm_demos import generate_demos

    torch.set_num_threads(1)
    agent = make_ra_bc(None, gamma=0.99, seed=args.seed,
                       params={"demos": MIX, "sarm_styles": args.sarm_styles or None})
    per: dict[str, list[float]] = {}
    i = 0
    for d in generate_demos(MIX, seed=0).demos:
        w = agent.weights[i:i + len(d.actions)]
        i += len(d.actions)
        per.setdefault(d.style, []).append(float(w.mean()))
        if d.style == "fail":
            end = d.subtasks[-1][2]  # frames after the last completed subtask: off the task
            per.setdefault("fail, after its last subtask", []).append(float(w[end:].mean()))
            per.setdefault("fail, before", []).append(float(w[:end].mean()))
    print(f"pairs: {len(agent.weights)}, zero-weight: {np.mean(agent.weights == 0):.3f}, "
          f"weight 1: {np.mean(agent.weights == 1):.3f}")
    for style, v in per.items():
        print(f"{style}: mean weight {np.mean(v):.3f}")


if __name__ == "__main__":
    main()
