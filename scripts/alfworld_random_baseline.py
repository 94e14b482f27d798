"""Success rate of a uniformly random policy over the admissible commands of ALFWorld games —
the floor any trained text policy must clear (used in docs/methods/derl.md).

    python scripts/alfworld_random_baseline.py --split heldout --kwargs \\
        '{"max_receptacles": 3, "num_distractors": 0, "closed_containers": false, "max_games": 8, "max_steps": 15}'
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import rewardlab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="PickAndPlace-v0")
    ap.add_argument("--split", default="heldout", choices=["train", "heldout"])
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kwargs", default="{}", help="env kwargs as JSON (the experiment's env.kwargs)")
    a = ap.parse_args()
    env = rewardlab.make(f"alfworld/{a.task}", split=a.split, **json.loads(a.kwargs))
    rng = np.random.default_rng(a.seed)
    wins = 0
    for ep in range(a.episodes):
        obs, info = env.reset(seed=a.seed + ep)
        done = False
        while not done:
            obs, _, term, trunc, info = env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
            done = term or trunc
        wins += bool(info["won"])
    print(f"uniform random policy, alfworld/{a.task} {a.split} ({len(env.games)} games): "
          f"success {wins / a.episodes:.3f} over {a.episodes} episodes")
    env.close()


if __name__ == "__main__":
    main()
