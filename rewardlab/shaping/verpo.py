"""VeRPO-style weighted partial test reward (Wang et al. 2026, "Verifiable Dense Reward
Policy Optimization for Code Generation"), as a reward term.

- ``TestDifficulty``: per-test pass statistics → weights ``w_i = (1 − p_i) + floor``,
  rarely passed tests weigh more. Starts from a prior (pass counts over the SWE corpus's
  recorded candidate runs, or uniform) and, with ``online=True``, keeps counting every test
  run the term sees during training (the paper estimates difficulty from training-time
  execution statistics).
- ``VerpoReward`` (``verpo``): the dense reward ``Σ_{passed} w_i / Σ_i w_i`` of a test run.
  ``mode="final"`` pays the score of the episode's last test run at the episode's end;
  ``mode="delta"`` pays the change of the score at each test run (an episode's payments sum
  to its last run's score, so cycling between edits earns nothing). Combine it with the outcome
  term (all tests pass), as the paper combines partial and global success.

The term reads ``info["test_results"]``: a tuple of ``(test_id, passed)`` pairs on steps that
ran the tests (empty otherwise), as the SWE envs report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rewardlab.core.terms import Term
from rewardlab.core.transition import Transition
from rewardlab.errors import InvalidArgument

__all__ = ["TestDifficulty", "VerpoReward", "corpus_pass_counts"]


def corpus_pass_counts() -> dict[str, tuple[int, int]]:
    """``test_id → (passes, runs)`` over every recorded candidate state of the SWE corpus."""
    from rewardlab.envs.swe.corpus import load_corpus

    tasks, outcomes = load_corpus()
    counts: dict[str, list[int]] = {}
    for t in tasks:
        for mask in outcomes[t.task_id].values():
            for test, ok in zip(t.tests, mask, strict=True):
                c = counts.setdefault(test, [0, 0])
                c[0] += int(ok)
                c[1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


class TestDifficulty:
    """Pass-rate statistics per test id and the difficulty weights derived from them.

    >>> d = TestDifficulty({"easy": (9, 10), "hard": (1, 10)}, floor=0.0)
    >>> round(d.weight("easy"), 2), round(d.weight("hard"), 2), d.weight("unseen")
    (0.1, 0.9, 0.5)
    """

    __test__ = False

    def __init__(self, prior: Mapping[str, tuple[int, int]] | None = None, floor: float = 0.05,
                 unseen_pass_rate: float = 0.5):
        if not 0.0 <= floor <= 1.0:
            raise InvalidArgument(f"verpo weight floor must be in [0, 1], got {floor}")
        self.counts = {k: [int(p), int(n)] for k, (p, n) in (prior or {}).items()}
        self.floor, self.unseen = float(floor), float(unseen_pass_rate)

    def pass_rate(self, test: str) -> float:
        c = self.counts.get(test)
        return self.unseen if not c or c[1] == 0 else c[0] / c[1]

    def weight(self, test: str) -> float:
        return (1.0 - self.pass_rate(test)) + self.floor

    def observe(self, results: Any) -> None:
        for test, ok in results:
            c = self.counts.setdefault(test, [0, 0])
            c[0] += int(bool(ok))
            c[1] += 1

    def score(self, results: Any) -> float:
        """Weighted fraction of passed tests."""
        w = np.array([self.weight(t) for t, _ in results])
        ok = np.array([bool(p) for _, p in results])
        return float((w * ok).sum() / w.sum()) if len(w) and w.sum() > 0 else 0.0


class VerpoReward(Term):
    """Difficulty-weighted partial test reward.

    >>> term = VerpoReward(prior="uniform", mode="final")
    >>> info = {"test_results": np.array([(("a", True), ("b", False)), ()], dtype=object)}
    >>> t = Transition(None, None, None, np.zeros(2), np.array([True, True]), np.zeros(2, bool), info)
    >>> term(t)  # env 0 passed one of two equally weighted tests; env 1 never ran tests
    array([0.5, 0. ], dtype=float32)
    """

    name = "verpo"

    def __init__(self, mode: str = "final", prior: str = "corpus", online: bool = True, floor: float = 0.05):
        if mode not in ("final", "delta"):
            raise InvalidArgument(f"verpo mode must be 'final' or 'delta', got {mode!r}")
        if prior not in ("corpus", "uniform"):
            raise InvalidArgument(f"verpo prior must be 'corpus' or 'uniform', got {prior!r}")
        self.mode, self.online = mode, bool(online)
        self.difficulty = TestDifficulty(corpus_pass_counts() if prior == "corpus" else None, floor=floor)
        self._last = np.zeros(0)

    def bind(self, num_envs: int) -> None:
        self._last = np.zeros(num_envs)

    def reset(self, env_ids: np.ndarray) -> None:
        if len(self._last):
            self._last[env_ids] = 0.0

    def __call__(self, t: Transition) -> np.ndarray:
        if "test_results" not in t.info:
            raise InvalidArgument(f"verpo term {self.name!r} needs info['test_results'] (the SWE envs provide it)")
        n = int(np.max(t.env_ids)) + 1
        if len(self._last) < n:
            self._last = np.concatenate([self._last, np.zeros(n - len(self._last))])
        results = t.info["test_results"]
        mask = t.info.get("_test_results")
        out = np.zeros(t.num_envs, np.float32)
        done = t.done
        for row, env in enumerate(t.env_ids):
            res = results[row] if mask is None or mask[row] else ()
            if res is not None and len(res):
                score = self.difficulty.score(res)  # weights from the runs seen before this one
                if self.online:
                    self.difficulty.observe(res)
                if self.mode == "delta":
                    out[row] = score - self._last[env]
                self._last[env] = score
            if self.mode == "final" and done[row]:
                out[row] = self._last[env]
        return out
