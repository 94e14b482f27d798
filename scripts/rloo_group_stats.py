"""How often a group-relative batch had both solved and unsolved episodes in a group
(``rloo/mixed_success_groups``, logged every iteration by ``rloo``), per seed, over all of
training and over its first 20% of iterations: where it is high the outcome alone already
gives every group a gradient, and a dense reward has few ties to break
(docs/methods/gra_verpo_gdpo.md).

    python scripts/rloo_group_stats.py runs/compare/verpo_group_swe/outcome runs/compare/verpo_group_swe/base
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

KEY = "rloo/mixed_success_groups"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="a variant's folder of run directories")
    for d in parser.parse_args().dirs:
        first, whole = [], []
        for path in sorted(Path(d).glob("*/seed_*/metrics.jsonl")):
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            vals = [r[KEY] for r in rows if KEY in r]
            if vals:
                first.append(np.mean(vals[: max(1, len(vals) // 5)]))
                whole.append(np.mean(vals))
        print(f"{d}: {len(whole)} seeds; mixed groups, first 20%: {', '.join(f'{x:.2f}' for x in first)}; "
              f"all of training: {', '.join(f'{x:.2f}' for x in whole)}")


if __name__ == "__main__":
    main()
