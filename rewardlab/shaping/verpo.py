"""VeRPO-style weighted partial test reward (Wang et al. 2026, "Verifiable Dense Reward
Policy Optimization for Code Generation"), as a reward term.

The method weights every unit test by its difficulty, estimated from execution statistics
during training: a test that few sampled programs pass weighs more, and the dense reward is
the weighted fraction of passed tests, combined with the outcome (all tests pass).

- ``prior="group"`` (the default, the paper's estimate): per problem, within each group of
  episodes of the same task that a group-relative agent (``rloo``, ``text_rloo``) samples,
  test ``j``'s pass rate ``ρ_j`` is the fraction of the group's episodes whose last test run
  passed it; ``w_j = (1 − ρ_j) + floor`` and an episode's score is ``Σ_{passed} w_j / Σ_j w_j``
  (``group_scores``). The scores exist only once the whole group has finished, so the term pays
  nothing per step and reaches the learner through ``extra_advantages``: its stack weight times
  the agent's group baseline of the scores (RLOO leave-one-out, or GRPO mean/std), on every
  step of the episode. With the leave-one-out baseline this equals adding ``weight · score`` to
  each episode's return (the baseline is linear).
- ``prior="corpus"`` / ``"uniform"``: ``TestDifficulty`` keeps one pass rate per test id over
  the SWE corpus's recorded candidate runs (or none), and with ``online=True`` counts every
  test run the term sees; the reward is paid per step (any agent). ``mode="final"`` pays the
  score of the episode's last test run at the episode's end; ``mode="delta"`` pays the change
  of the score at each test run (an episode's payments sum to its last run's score, so
  cycling between edits earns nothing). ``prior="uniform", online=False`` is the plain
  pass fraction.

The term reads ``info["test_results"]``: a tuple of ``(test_id, passed)`` pairs on steps that
ran the tests (empty otherwise), as the SWE envs report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardlab.core.groups import group_relative
from rewardlab.core.terms import Term
from rewardlab.core.transition import Transition
from rewardlab.errors import InvalidArgument

__all__ = ["TestDifficulty", "VerpoReward", "corpus_pass_counts", "group_scores", "PRIORS"]

PRIORS = ("group", "corpus", "uniform")


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


def group_scores(results: Sequence[Any], groups: np.ndarray,
                 floor: float = 0.05) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Each episode's difficulty-weighted score with pass rates estimated within its group.

    ``results[i]`` is episode ``i``'s last test run (``(test_id, passed)`` pairs; empty or None
    if it ran no tests, which counts as passing none); ``groups[i]`` its group. Returns the
    ``(n,)`` scores and, per group (in order of ``np.unique``), the pass rate of every test.

    >>> runs = [(("a", True), ("b", False)), (("a", True), ("b", True)), (), (("a", False), ("b", False))]
    >>> scores, rates = group_scores(runs, np.array([0, 0, 0, 0]), floor=0.0)
    >>> rates[0]  # a: 2 of 4 episodes passed it, b: 1 of 4
    {'a': 0.5, 'b': 0.25}
    >>> scores.round(3).tolist()  # w_a = 0.5, w_b = 0.75
    [0.4, 1.0, 0.0, 0.0]
    """
    groups = np.asarray(groups)
    if len(results) != len(groups):
        raise InvalidArgument(f"group_scores: {len(results)} test runs for {len(groups)} episodes")
    if not 0.0 <= floor <= 1.0:
        raise InvalidArgument(f"verpo weight floor must be in [0, 1], got {floor}")
    scores = np.zeros(len(groups))
    rates: list[dict[str, float]] = []
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        passed: dict[str, int] = {}
        for i in members:
            for test, ok in results[i] or ():
                passed[test] = passed.get(test, 0) + int(bool(ok))
        rate = {test: p / len(members) for test, p in passed.items()}
        rates.append(rate)
        weight = {test: (1.0 - r) + floor for test, r in rate.items()}
        total = sum(weight.values())
        for i in members:
            if results[i] and total > 0:
                scores[i] = sum(weight[test] for test, ok in results[i] if ok) / total
    return scores, rates


class VerpoReward(Term):
    """Difficulty-weighted partial test reward (module doc).

    >>> term = VerpoReward(prior="uniform", mode="final")
    >>> info = {"test_results": np.array([(("a", True), ("b", False)), ()], dtype=object)}
    >>> t = Transition(None, None, None, np.zeros(2), np.array([True, True]), np.zeros(2, bool), info)
    >>> term(t)  # env 0 passed one of two equally weighted tests; env 1 never ran tests
    array([0.5, 0. ], dtype=float32)
    """

    name = "verpo"
    _MAX_RECORD = 100_000
    """steps kept for group scoring (a group batch is far shorter; the cap bounds memory if no agent asks)"""

    def __init__(self, mode: str = "final", prior: str = "group", online: bool | None = None, floor: float = 0.05):
        if mode not in ("final", "delta"):
            raise InvalidArgument(f"verpo mode must be 'final' or 'delta', got {mode!r}")
        if prior not in PRIORS:
            raise InvalidArgument(f"verpo prior must be one of {', '.join(PRIORS)}, got {prior!r}")
        if prior == "group" and mode != "final":
            raise InvalidArgument(f"verpo mode {mode!r} needs a per-test prior (corpus or uniform); with prior "
                                  "'group' the score exists only when the group has finished: use mode 'final'")
        if prior == "group" and online is not None:
            raise InvalidArgument("verpo online applies to prior 'corpus' or 'uniform' (the group prior is "
                                  "re-estimated for every group); leave it unset with prior 'group'")
        self.mode, self.prior = mode, prior
        self.online = True if online is None else bool(online)
        self.floor = float(floor)
        self.difficulty = TestDifficulty(corpus_pass_counts() if prior == "corpus" else None, floor=floor)
        self._last = np.zeros(0)
        self._record: list[list[Any]] = []  # group prior: per step, per env, the test run or None
        self._weight, self._baseline = 1.0, "rloo"
        self._scores = np.zeros(0)

    @classmethod
    def required_agent_hooks(cls, params: Mapping[str, Any]) -> frozenset[str]:
        """The group prior needs a group-relative agent's ``bind_agent`` and ``extra_advantages``;
        the per-test priors pay through the reward alone (any agent)."""
        return cls.agent_hooks() - {"update"} if params.get("prior", "group") == "group" else frozenset()

    def bind(self, num_envs: int) -> None:
        self._last = np.zeros(num_envs)

    def reset(self, env_ids: np.ndarray) -> None:
        if len(self._last):
            self._last[env_ids] = 0.0

    # -- agent hooks (used by the group prior) -------------------------------------------------
    def bind_agent(self, agent: Any) -> None:
        """The group prior needs the agent's groups (``group_env``), its baseline and this term's weight."""
        if self.prior != "group":
            return
        if getattr(agent, "group_env", None) is None:
            raise InvalidArgument(
                f"verpo prior 'group' estimates pass rates within groups of episodes of one task and needs a "
                f"group-relative agent (rloo, text_rloo); agent {getattr(agent, 'label', type(agent).__name__)!r} "
                "has no groups: use prior 'corpus' with it")
        stack = agent.venv.stack
        self._weight = next(float(w) for term, w in zip(stack.terms, stack.weights, strict=True) if term is self)
        # Under the stack's group normalisation the agent's advantages are mean/std ones.
        self._baseline = agent.cfg.baseline if getattr(agent, "normalize", None) is None else "grpo"

    def extra_advantages(self, rollout: Any) -> np.ndarray:
        """Group prior: ``weight · baseline(scores)`` on every active step of each episode (module doc)."""
        out = np.zeros(np.shape(rollout.rewards), np.float32)
        if self.prior != "group":
            return out
        ep = getattr(rollout, "episodes", None)
        steps = out.shape[0]
        if ep is None or len(self._record) < steps:
            got = "no episodes" if ep is None else f"{len(self._record)} of {steps} steps"
            raise InvalidArgument(f"verpo prior 'group' needs a group rollout (rloo, text_rloo) of the steps it "
                                  f"scored; got {got}")
        record, self._record = self._record[-steps:], []
        last: list[Any] = [None] * out.shape[1]
        for t, row in enumerate(record):
            for env, res in enumerate(row):
                if res is not None and ep.active[t, env]:
                    last[env] = res
        self._scores, _ = group_scores(last, ep.group, self.floor)
        adv = self._weight * group_relative(self._scores, ep.group, self._baseline)
        return np.where(ep.active, adv[None, :], 0.0).astype(np.float32)

    def update(self, rollout: Any) -> dict[str, float]:
        """Logs the group prior's mean episode score (``reward_terms/verpo/group_score``)."""
        return {"group_score": float(self._scores.mean())} if self.prior == "group" and len(self._scores) else {}

    def __call__(self, t: Transition) -> np.ndarray:
        if "test_results" not in t.info:
            raise InvalidArgument(f"verpo term {self.name!r} needs info['test_results'] (the SWE envs provide it)")
        results = t.info["test_results"]
        mask = t.info.get("_test_results")
        out = np.zeros(t.num_envs, np.float32)
        if self.prior == "group":  # pays through extra_advantages once the group has finished
            n = max(int(np.max(t.env_ids)) + 1, len(self._record[-1]) if self._record else 0)
            row_of: list[Any] = [None] * n
            for row, env in enumerate(t.env_ids):
                res = results[row] if mask is None or mask[row] else ()
                row_of[env] = tuple(res) if res is not None and len(res) else None
            self._record.append(row_of)
            del self._record[:-self._MAX_RECORD]
            return out
        n = int(np.max(t.env_ids)) + 1
        if len(self._last) < n:
            self._last = np.concatenate([self._last, np.zeros(n - len(self._last))])
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
