"""CALM detector quality: precision / recall / F1 of per-transition subgoal labels against
the KeyRoom oracle (the CALM paper's metric), on recorded ε-noisy expert trajectories.

Every transition is judged for every subgoal (no once-per-episode masking); transitions
without a message, inventory change or episode end are skipped and count as "no" unless
``--all-transitions``. Detectors (``--backends``):

- ``oracle`` (sanity check), ``scripted`` (hand-written regex rules written against the same
  rendering the oracle reads: F1 = 1 by construction, not a model), ``always-yes`` (the floor:
  recall 1, precision = base rate);
- ``local`` / ``openai``: a language model's *generated* reply parsed as yes/no (SmolLM2-135M
  via llama-cpp-python on this CPU; any OpenAI-compatible server, ``--base-url``/``--model``);
- ``logprob-local`` / ``logprob-openai``: ``log P(yes) - log P(no)`` of the first reply token
  after a few-shot prompt (``--shots`` positive and negative examples per subgoal from the
  calibration episodes), thresholded; the ``openai`` server must return ``top_logprobs``
  (``python -m rewardlab.llm.serve --logits_all true``);
- ``embedding-events`` / ``embedding-full``: cosine similarity of the transition text (words
  only / with the maps) and the subgoal text under all-MiniLM-L6-v2, thresholded.

Thresholds of the last two kinds are calibrated per subgoal (best F1) on separate held-out
episodes (``--calib-episodes``, ``--calib-seed``) and then applied, unchanged, to the test
episodes (``--episodes``, ``--seed``); the log-odds detectors are also shown at threshold 0
(P(yes) > P(no), no calibration). Answers are cached in ``--cache``.

    python benchmarks/calm_eval.py --backends oracle,scripted,embedding-events,logprob-local [--episodes 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rewardlab.llm import CachedBackend, YesNoStats, make_backend
from rewardlab.shaping.calm import KEYROOM_SUBGOALS, KEYROOM_TASK, CALMReward, decompose
from rewardlab.shaping.calm_eval import (
    calibrate_thresholds,
    detector_scores,
    fewshot_examples,
    oracle_labels,
    record_keyroom_steps,
    score_detector,
    score_labels,
)


def _llm_spec(name: str, args: argparse.Namespace) -> dict:
    spec: dict = {"name": name}
    if name == "always-yes":
        spec = {"name": "scripted", "rules": [["subgoals", "1. pick up the key"]], "default": "yes"}
    if name == "scripted":
        spec["rules"] = "calm_keyroom"
    if name == "openai":
        spec.update(base_url=args.base_url, model=args.model)
    if name == "local":
        spec.update(n_threads=args.threads, n_ctx=4096)
    return spec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="oracle,scripted", help="comma-separated, see above")
    p.add_argument("--episodes", type=int, default=10, help="test episodes")
    p.add_argument("--epsilon", type=float, default=0.3, help="random-action rate of the recording player")
    p.add_argument("--seed", type=int, default=0, help="seed of the test episodes")
    p.add_argument("--calib-episodes", type=int, default=10, help="held-out episodes for thresholds and shots")
    p.add_argument("--calib-seed", type=int, default=1)
    p.add_argument("--shots", type=int, default=1, help="few-shot examples per subgoal and label (logprob-*)")
    p.add_argument("--task", default="KeyRoom-S5")
    p.add_argument("--base-url", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--threads", type=int, default=1, help="llama.cpp threads of the local model")
    p.add_argument("--cache", default="runs/llm_cache.sqlite")
    p.add_argument("--all-transitions", action="store_true", help="ask about silent transitions too")
    args = p.parse_args()

    steps = record_keyroom_steps(args.episodes, args.epsilon, args.seed, args.task)
    wins = sum(s[3] for s in steps)
    print(f"test: {len(steps)} transitions in {args.episodes} episodes of {args.task} "
          f"(ε={args.epsilon}, seed {args.seed}, {wins} successes)")
    names = [n.strip() for n in args.backends.split(",")]
    calib = []
    if any(n.startswith(("logprob-", "embedding-")) for n in names):
        calib = record_keyroom_steps(args.calib_episodes, args.epsilon, args.calib_seed, args.task)
        print(f"calibration: {len(calib)} transitions in {args.calib_episodes} episodes "
              f"(seed {args.calib_seed}, {sum(s[3] for s in calib)} successes)")
    truth = oracle_labels(steps)
    rows = []
    for name in names:
        t0 = time.perf_counter()
        backend = None
        extra = ""
        if name == "oracle":
            term = CALMReward(detector="oracle")
            scores = {name: score_detector(term, steps)}
        elif name.startswith("embedding-"):
            term = CALMReward(detector="embedding", subgoals=list(KEYROOM_SUBGOALS), threshold=0.0,
                              text=name.split("-", 1)[1], only_salient=not args.all_transitions)
            thr = calibrate_thresholds(detector_scores(term, calib), oracle_labels(calib))
            extra = f"thresholds (cosine) {thr}"
            term.stats = YesNoStats()  # count the test queries only
            scores = {name: score_labels(detector_scores(term, steps) > np.array(thr), truth)}
        elif name.startswith("logprob-"):
            kind = name.split("-", 1)[1]
            backend = CachedBackend(make_backend(_llm_spec(kind, args)), args.cache)
            shots = fewshot_examples(calib, per_subgoal=args.shots, seed=args.calib_seed)
            term = CALMReward(detector="logprob", backend=backend, subgoals=list(KEYROOM_SUBGOALS),
                              examples=shots, only_salient=not args.all_transitions)
            # small batches: each batch's values reach the cache file, so an interrupted run resumes
            thr = calibrate_thresholds(detector_scores(term, calib, batch=4), oracle_labels(calib))
            extra = f"{len(shots)} shots; thresholds (log-odds) {thr}"
            term.stats = YesNoStats()
            test_scores = detector_scores(term, steps, batch=4)
            scores = {f"{name}@0": score_labels(test_scores > 0, truth),
                      name: score_labels(test_scores > np.array(thr), truth)}
        else:
            spec = _llm_spec(name, args)
            long_reply = make_backend(spec)  # max_tokens 64: room for the subgoal list
            try:
                got = decompose(CachedBackend(long_reply, args.cache), KEYROOM_TASK)
            except Exception as e:  # noqa: BLE001 - a weak model's decomposition is reported, not fatal
                got = [f"(no list: {e})"]
            long_reply.close()
            if name in ("local", "openai"):
                spec["max_tokens"] = 8  # a yes/no answer
            backend = CachedBackend(make_backend(spec), args.cache)
            extra = f"decomposition of the task: {got}"
            term = CALMReward(detector="llm", backend=backend, subgoals=list(KEYROOM_SUBGOALS),
                              only_salient=not args.all_transitions)
            scores = {name: score_detector(term, steps)}
        secs = time.perf_counter() - t0
        print(f"{name}: {extra}" if extra else name)
        for label, sc in scores.items():
            for s in sc:
                rows.append((label, s, term.stats.asked, term.stats.garbled, secs,
                             getattr(backend, "hit_rate", float("nan"))))
        if backend is not None:
            backend.close()

    print(f"\n{'detector':<22} {'subgoal':<20} {'pos':>4} {'tp':>4} {'fp':>4} {'fn':>4} {'prec':>5} {'rec':>5} "
          f"{'F1':>5}   queries garbled  cache-hit  secs")
    for name, s, asked, garbled, secs, hit in rows:
        print(f"{name:<22} {s.subgoal:<20} {s.positives:>4} {s.tp:>4} {s.fp:>4} {s.fn:>4} {s.precision:>5.2f} "
              f"{s.recall:>5.2f} {s.f1:>5.2f}   {asked:>7} {garbled:>7} {hit:>9.2f} {secs:>5.0f}")


if __name__ == "__main__":
    main()
