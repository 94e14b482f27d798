"""Differential check of the native ALFWorld simulator against textworld over whole game corpora.

Every game of every generated corpus under the ALFWorld data dir (or the corpora given) is
played through textworld's engine (``PddlEnv`` + ALFWorld's ``AlfredDemangler``, the reference)
and ``rewardlab.envs.alfworld.native.NativeEngine``: its planner walkthrough, then ``--episodes``
episodes of random admissible commands (with ``--invalid-prob`` inadmissible ones mixed in). At
reset and after every step the feedback, admissible commands (in order), ``won``, score, done and
the fact state must be identical (steps = resets and steps compared). A game found in several
corpora is played once. Prints the counts per task type and in total; exits 1 on any mismatch.

    python scripts/alfworld_native_diff.py [--episodes 3] [--max-steps 40] [--corpus DIR ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from rewardlab.envs.alfworld.generate import default_data_dir
from rewardlab.envs.alfworld.native import DiffResult, diff_game, reference_engine


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", nargs="*", type=Path, default=None,
                    help="corpus dirs (default: every corpus-* under the data dir)")
    ap.add_argument("--episodes", type=int, default=3, help="random episodes per game")
    ap.add_argument("--max-steps", type=int, default=40, help="steps per random episode")
    ap.add_argument("--invalid-prob", type=float, default=0.1, help="share of inadmissible commands")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-fast-text", action="store_true", help="reference without the template caches")
    a = ap.parse_args(argv)
    corpora = a.corpus if a.corpus is not None else sorted(default_data_dir().glob("corpus-*"))
    reference = reference_engine(fast_text=not a.no_fast_text)
    by_task: dict[str, DiffResult] = {}
    total, games, t0 = DiffResult(), 0, time.perf_counter()
    seen: set[str] = set()  # corpora of different settings can share games: each is played once
    for corpus in corpora:
        manifest = json.loads((corpus / "manifest.json").read_text())
        for i, game in enumerate(manifest["games"]):
            digest = hashlib.sha1((corpus / game["path"]).read_bytes()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            res = diff_game(corpus / game["path"], reference, random_episodes=a.episodes, max_steps=a.max_steps,
                            invalid_prob=a.invalid_prob, seed=a.seed + i)
            by_task.setdefault(game["task"], DiffResult()).add(res)
            total.add(res)
            games += 1
        print(f"{corpus.name}: {len(manifest['games'])} games ({games} distinct so far), {total.steps} steps, "
              f"{total.mismatches} mismatches", flush=True)
    print(f"\n{'task type':22s} {'episodes':>9s} {'steps':>8s} {'inadmissible':>12s} {'mismatches':>10s}")
    for task, res in sorted(by_task.items()):
        print(f"{task:22s} {res.episodes:9d} {res.steps:8d} {res.inadmissible:12d} {res.mismatches:10d}")
    print(f"{'total':22s} {total.episodes:9d} {total.steps:8d} {total.inadmissible:12d} {total.mismatches:10d}   "
          f"({games} distinct games in {len(corpora)} corpora, {time.perf_counter() - t0:.0f} s)")
    for ex in total.examples:
        print("mismatch:", ex)
    return 1 if total.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
