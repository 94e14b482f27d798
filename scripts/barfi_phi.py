"""Per seed, the learned reward of BARFI runs at the end of training: mean φ₁ (aux weight) and φ₂
(bias) over the last rollout's states, γ_φ, and how many outer steps ``skip_without_signal`` skipped.

    python scripts/barfi_phi.py runs/compare/barfi_gridworld_helpful_ci/barfi [more variant folders ...]

Reads the ``reward_terms/barfi/*`` rows of ``metrics.jsonl`` through ``rewardlab.results``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rewardlab import results as R

PREFIX = "reward_terms/barfi/"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories or compare variant folders")
    args = ap.parse_args()
    print("| runs | seed | φ₁ | φ₂ | γ_φ | outer steps skipped |")
    print("|---|---|---|---|---|---|")
    for path in args.runs:
        for seed in R.load_runs(path).seeds:
            last = {k: seed.series(PREFIX + k)[1] for k in ("aux_weight", "bias", "discount")}
            if any(len(v) == 0 for v in last.values()):
                raise SystemExit(f"{seed.path}: no {PREFIX}* rows (not a BARFI run)")
            _, skipped = seed.series(PREFIX + "outer_skipped")
            skip = f"{int(np.sum(skipped))} of {len(skipped)}" if len(skipped) else "–"
            print(f"| {path} | {seed.seed} | {last['aux_weight'][-1]:.2f} | {last['bias'][-1]:.2f} | "
                  f"{last['discount'][-1]:.3f} | {skip} |")


if __name__ == "__main__":
    main()
