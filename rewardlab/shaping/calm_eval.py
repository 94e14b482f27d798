"""CALM's evaluation tools for MiniHack KeyRoom, kept out of the term module: ground truth,
a scripted player that records labelled transitions, and the detector metrics.

- ``KeyRoomOracle``: ground-truth KeyRoom subgoals (key picked up, door opened, staircase
  reached) from the env's ``info`` — the ``detector: oracle`` of ``CALMReward`` and the labels
  every other detector is scored against;
- ``keyroom_expert_action`` / ``record_keyroom_steps``: an ε-noisy BFS KeyRoom player (key →
  door → stairs) recording ``(before, after, ended, success)`` transitions;
- ``oracle_labels``, ``detector_scores`` (the raw per-subgoal scores of the ``logprob`` and
  ``embedding`` detectors), ``calibrate_thresholds`` (per-subgoal thresholds maximising F1 on
  held-out transitions), ``fewshot_examples`` (labelled prompts for the ``logprob`` detector),
  ``score_labels`` / ``score_detector``: the paper's precision / recall / F1 against the oracle.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardlab.errors import InvalidArgument
from rewardlab.shaping.calm import KEYROOM_SUBGOALS, KEYROOM_TASK, CALMReward, StepView, logprob_prompt, salient

__all__ = ["KeyRoomOracle", "keyroom_expert_action", "record_keyroom_steps", "oracle_labels", "DetectorScore",
           "score_labels", "score_detector", "detector_scores", "calibrate_thresholds", "fewshot_examples", "Step"]

Step = tuple[StepView, StepView, bool, bool]  # (before, after, episode ended, success)


class KeyRoomOracle:
    """Ground-truth KeyRoom subgoals from ``info``: ``key`` (an inventory line with "key"
    appeared), ``door`` (a cell that showed a closed door '+' shows something else), ``stairs``
    (the agent stands where '>' was, or the episode ended in success).

    >>> chars = np.full((21, 79), ord("."), np.uint8); chars[2, 4] = ord("+")
    >>> a = StepView("", chars, "", np.array([3, 2]))
    >>> opened = chars.copy(); opened[2, 4] = ord("|")
    >>> b = StepView("", opened, "g - a key named The Master Key of Thievery.", np.array([3, 2]))
    >>> KeyRoomOracle().detect(a, b, ended=False, success=False)
    array([ True,  True, False])
    """

    subgoals = KEYROOM_SUBGOALS

    def detect(self, before: StepView, after: StepView, ended: bool, success: bool) -> np.ndarray:
        had_key = any("key" in s for s in before.inventory.splitlines())
        has_key = any("key" in s for s in after.inventory.splitlines())
        was_door = before.chars == ord("+")
        door = bool((was_door & (after.chars != ord("+")) & (after.chars != ord(" "))).any())
        x, y = int(after.agent_pos[0]), int(after.agent_pos[1])
        stairs = bool(before.chars[y, x] == ord(">")) or (ended and success)
        return np.array([has_key and not had_key, door, stairs], bool)


# -- a scripted KeyRoom player, for recording labelled trajectories --------------------------
_MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0), (1, -1), (1, 1), (-1, 1), (-1, -1))  # N E S W NE SE SW NW
_PICKUP, _APPLY = 8, 9  # indices in MiniHack KeyRoom's action set (8 moves, PICKUP, APPLY)
_PASSABLE = frozenset(b".>(#|-<`%)[?!/=*$\"")


def _bfs_first_move(chars: np.ndarray, start: np.ndarray, goal: int, doors: set) -> int | None:
    """First move of a shortest path to a cell showing ``goal`` (no diagonal moves through
    doorways, as in NetHack), or ``None`` when no such cell is reachable on the visible map."""
    h, w = chars.shape
    goals = set(zip(*np.nonzero(chars == goal)[::-1], strict=True))
    s = (int(start[0]), int(start[1]))
    if not goals:
        return None
    prev: dict[tuple, tuple | None] = {s: None}
    q = deque([s])
    while q:
        c = q.popleft()
        if c in goals:
            while prev[c] is not None and prev[c][0] != s:
                c = prev[c][0]
            return None if prev[c] is None else prev[c][1]
        for a, (dx, dy) in enumerate(_MOVES):
            nxt = (c[0] + dx, c[1] + dy)
            if not (0 <= nxt[0] < w and 0 <= nxt[1] < h) or nxt in prev:
                continue
            ch = int(chars[nxt[1], nxt[0]])
            blocked = ch not in _PASSABLE or (ch in b"|-" and nxt not in doors)
            if nxt not in goals and blocked:
                continue
            if a >= 4 and (nxt in doors or c in doors):
                continue
            prev[nxt] = (c, a)
            q.append(nxt)
    return None


def keyroom_expert_action(info: dict[str, Any], doors: set, rng: np.random.Generator, epsilon: float = 0.0) -> int:
    """A scripted KeyRoom action (key → door → stairs) from one env's info; with probability
    ``epsilon`` (or when no path is visible) a random one. ``doors`` collects door cells."""
    chars, pos = np.asarray(info["chars"]), np.asarray(info["agent_pos"])
    doors |= set(zip(*np.nonzero(chars == ord("+"))[::-1], strict=True))
    a: int | None
    if "key" not in str(info["inventory"]):
        a = _PICKUP if "see here a key" in str(info["message"]) else _bfs_first_move(chars, pos, ord("("), doors)
    elif (chars == ord("+")).any():
        dy, dx = np.nonzero(chars == ord("+"))
        near = np.max(np.abs([dx - pos[0], dy - pos[1]]), axis=0).min() <= 1
        a = _APPLY if near else _bfs_first_move(chars, pos, ord("+"), doors)
    else:
        a = _bfs_first_move(chars, pos, ord(">"), doors)
    if a is None or rng.random() < epsilon:
        a = int(rng.integers(len(_MOVES) + 2))
    return int(a)


def record_keyroom_steps(episodes: int, epsilon: float = 0.3, seed: int = 0, task: str = "KeyRoom-S5",
                         max_steps: int = 100) -> list[Step]:
    """Transitions ``(before, after, ended, success)`` of ``episodes`` ε-noisy expert episodes."""
    from rewardlab.envs import make

    env = make(f"minihack/{task}", max_episode_steps=max_steps)
    rng = np.random.default_rng(seed)
    steps: list[Step] = []
    for ep in range(episodes):
        _, info = env.reset(seed=seed * 100_003 + ep)
        doors: set = set()
        before = StepView(info["message"], info["chars"], info["inventory"], info["agent_pos"])
        while True:
            _, _, term, trunc, info = env.step(keyroom_expert_action(info, doors, rng, epsilon))
            after = StepView(info["message"], info["chars"], info["inventory"], info["agent_pos"])
            ended = term or trunc
            steps.append((before, after, ended, bool(info.get("is_success", False))))
            before = after
            if ended:
                break
    env.close()
    return steps


@dataclass
class DetectorScore:
    """Precision / recall / F1 of one detector on one subgoal (positives = oracle labels)."""

    subgoal: str
    tp: int
    fp: int
    fn: int
    positives: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def oracle_labels(steps: Sequence[Step]) -> np.ndarray:
    """``(n, 3)`` ground-truth KeyRoom labels of recorded ``steps``."""
    oracle = KeyRoomOracle()
    return np.stack([oracle.detect(*s) for s in steps]).reshape(len(steps), len(KEYROOM_SUBGOALS))


def _check_keyroom(term: CALMReward) -> None:
    if list(term.subgoals) != list(KEYROOM_SUBGOALS):
        raise InvalidArgument(f"scoring needs the KeyRoom subgoals {list(KEYROOM_SUBGOALS)}, got {term.subgoals}")


def score_labels(pred: np.ndarray, truth: np.ndarray) -> list[DetectorScore]:
    """Per-subgoal counts of ``(n, 3)`` boolean predictions against ``truth``.

    >>> [s.f1 for s in score_labels(np.array([[1, 0, 0], [0, 0, 1]], bool), np.array([[1, 0, 0], [0, 1, 0]], bool))]
    [1.0, 0.0, 0.0]
    """
    out = []
    for j, name in enumerate(KEYROOM_SUBGOALS):
        p, t = pred[:, j].astype(bool), truth[:, j].astype(bool)
        out.append(DetectorScore(name, int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum()), int(t.sum())))
    return out


def score_detector(term: CALMReward, steps: Sequence[Step], batch: int = 32) -> list[DetectorScore]:
    """Score ``term``'s per-transition labels (all subgoals asked on every transition, no
    once-per-episode masking) against ``KeyRoomOracle`` on recorded ``steps``.

    >>> steps = record_keyroom_steps(episodes=2, epsilon=0.2, seed=0)
    >>> scripted = CALMReward(detector="llm", backend={"name": "scripted", "rules": "calm_keyroom"})
    >>> [round(s.f1, 2) for s in score_detector(scripted, steps)]
    [1.0, 1.0, 1.0]
    """
    _check_keyroom(term)
    truth = oracle_labels(steps)
    pred = np.zeros_like(truth)
    k = len(KEYROOM_SUBGOALS)
    for lo in range(0, len(steps), batch):
        chunk = steps[lo : lo + batch]
        pred[lo : lo + len(chunk)] = term.detect([s[0] for s in chunk], [s[1] for s in chunk],
                                                 np.array([s[2] for s in chunk]), np.array([s[3] for s in chunk]),
                                                 np.ones((len(chunk), k), bool))
    return score_labels(pred, truth)


def detector_scores(term: CALMReward, steps: Sequence[Step], batch: int = 32) -> np.ndarray:
    """``(n, k)`` raw scores of a ``logprob`` or ``embedding`` term on ``steps`` (``-inf`` where
    the transition is not asked about), before any threshold."""
    out = []
    for lo in range(0, len(steps), batch):
        chunk = steps[lo : lo + batch]
        out.append(term.scores([s[0] for s in chunk], [s[1] for s in chunk], np.array([s[2] for s in chunk])))
    return np.concatenate(out) if out else np.zeros((0, len(term.subgoals)))


def calibrate_thresholds(scores: np.ndarray, truth: np.ndarray) -> list[float]:
    """Per subgoal, the threshold (``score > threshold`` means achieved) with the best F1 on
    these held-out ``scores``: the midpoint of the best gap between consecutive distinct
    finite scores (ties: the highest such threshold, i.e. the fewest positives).

    >>> calibrate_thresholds(np.array([[0.1], [0.9], [0.5], [0.7]]), np.array([[0], [1], [0], [1]], bool))
    [0.6]
    """
    if scores.shape != truth.shape:
        raise InvalidArgument(f"scores {scores.shape} and labels {truth.shape} differ in shape")
    out = []
    for j in range(scores.shape[1]):
        s, t = scores[:, j], truth[:, j].astype(bool)
        finite = np.unique(s[np.isfinite(s)])
        if len(finite) == 0:
            out.append(float("inf"))
            continue
        cands = np.concatenate([[finite[0] - 1.0], (finite[:-1] + finite[1:]) / 2, [finite[-1] + 1.0]])
        best, best_f1 = cands[-1], -1.0
        for c in cands[::-1]:
            p = s > c
            tp = int((p & t).sum())
            denom = int(p.sum()) + int(t.sum())
            f1 = 2 * tp / denom if denom else 0.0
            if f1 > best_f1 + 1e-12:
                best, best_f1 = c, f1
        out.append(float(round(best, 6)))
    return out


def fewshot_examples(steps: Sequence[Step], per_subgoal: int = 1, radius: int = 2,
                     task: str = KEYROOM_TASK, seed: int = 0) -> list[tuple[str, str]]:
    """Few-shot ``(prompt, "yes"/"no")`` pairs for the ``logprob`` detector from labelled
    (held-out) ``steps``: for each subgoal, ``per_subgoal`` salient transitions where the oracle
    says it was achieved and as many salient ones where it was not, interleaved."""
    truth = oracle_labels(steps)
    rng = np.random.default_rng(seed)
    asked = np.array([salient(b, a, e) for b, a, e, _ in steps])
    out: list[tuple[str, str]] = []
    for j, goal in enumerate(KEYROOM_SUBGOALS):
        pos, neg = np.flatnonzero(truth[:, j] & asked), np.flatnonzero(~truth[:, j] & asked)
        if len(pos) < per_subgoal or len(neg) < per_subgoal:
            raise InvalidArgument(f"need {per_subgoal} salient positive and negative transitions for "
                                  f"{goal!r}, have {len(pos)} and {len(neg)}: record more episodes")
        for p, n in zip(rng.choice(pos, per_subgoal, replace=False), rng.choice(neg, per_subgoal, replace=False),
                        strict=True):
            out.append((logprob_prompt(task, goal, steps[p][0], steps[p][1], radius), "yes"))
            out.append((logprob_prompt(task, goal, steps[n][0], steps[n][1], radius), "no"))
    return out
