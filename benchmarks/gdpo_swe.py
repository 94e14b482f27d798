"""GDPO vs sum-then-normalise (GRPO) advantages on real swe/PatchSelect-v0 rollouts.

Collects groups of episodes (``--group`` episodes of one task per group, a uniformly random
policy, recorded test outcomes) with four reward terms — outcome (all tests pass), VeRPO
weighted partial test reward, and the two naive step rewards — and computes each episode's
advantage with ``RewardStack.group_advantages`` in both modes. Prints, per mode:

- resolution: distinct advantage values per group / distinct reward-term combinations per
  group (1.0 = no two different combinations share an advantage);
- outcome agreement: over (solved, unsolved) episode pairs of one group, the fraction where the
  solved episode gets the higher advantage.

    .venv/bin/python benchmarks/gdpo_swe.py [--groups 200] [--group 8]
"""

from __future__ import annotations

import argparse

import numpy as np

import rewardlab
from rewardlab.core.terms import build_stack
from rewardlab.envs.swe.corpus import load_corpus

TERMS = [
    {"name": "env", "weight": 1.0},
    {"name": "verpo", "weight": 0.5, "params": {"mode": "final", "prior": "corpus", "online": False}},
    {"name": "info_signal", "as": "localize", "weight": 0.3, "params": {"key": "opened_buggy_file", "reward": 1.0}},
    {"name": "info_signal", "as": "test_improved", "weight": 0.3, "params": {"key": "test_run_improved",
                                                                              "reward": 1.0}},
]


def collect(groups: int, size: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    tasks = [t.task_id for t in load_corpus()[0] if t.split == "train"]
    rng = np.random.default_rng(seed)
    env = rewardlab.make("swe/PatchSelect-v0", reward=TERMS, split="train", max_steps=6, outcomes="shipped")
    names = ["env", "verpo", "localize", "test_improved"]
    out = {n: np.zeros((groups, size)) for n in names}
    solved = np.zeros((groups, size), bool)
    for g in range(groups):
        task = tasks[g % len(tasks)]
        for i in range(size):
            env.reset(seed=int(rng.integers(1 << 30)), options={"task_id": task})
            done = False
            sums = dict.fromkeys(names, 0.0)
            while not done:
                _, _, term, trunc, info = env.step(int(rng.integers(11)))
                for n in names:  # raw (unweighted) term values: the stack's weights apply later
                    sums[n] += info["reward_terms"][n] / next(t.get("weight", 1.0) for t in TERMS
                                                              if t.get("as", t["name"]) == n)
                done = term or trunc
            for n in names:
                out[n][g, i] = sums[n]
            solved[g, i] = bool(info["is_success"])
    return out, solved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=200)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    returns, solved = collect(args.groups, args.group, args.seed)
    stack = build_stack(TERMS)
    combos = np.stack([returns[n] for n in stack.names], -1).round(6)
    print(f"{args.groups} groups x {args.group} random-policy episodes; solved {solved.mean():.2f}; "
          f"weights {dict(zip(stack.names, stack.weights.round(3).tolist(), strict=True))}")
    print("| mode | resolution (distinct advantages / distinct combinations) | outcome agreement |")
    print("|---|---|---|")
    for mode in ("sum", "gdpo"):
        adv = stack.group_advantages(returns, mode=mode)
        res, agree, pairs = [], 0, 0
        for g in range(args.groups):
            n_combo = len({tuple(c) for c in combos[g]})
            res.append(len(set(adv[g].round(6))) / n_combo)
            win, lose = adv[g][solved[g]], adv[g][~solved[g]]
            agree += int((win[:, None] > lose[None, :]).sum())
            pairs += win.size * lose.size
        print(f"| {mode} | {np.mean(res):.3f} | {agree / max(pairs, 1):.3f} ({pairs} pairs) |")


if __name__ == "__main__":
    main()
