"""CALM: LLM-judged subgoal rewards (after "Assessing the Zero-Shot Capabilities of LLMs for
Action Evaluation in RL"). The LLM decomposes the task into subgoals once, then judges per
transition, from a text rendering, whether a subgoal was achieved; each newly achieved
subgoal pays ``reward`` once per episode.

- ``DECOMPOSE_PROMPT`` / ``CHECK_PROMPT``: the prompt templates; ``decompose(backend, task)``;
- ``render_transition``: NetHack message, the map around the agent before and after, the
  inventory delta, and what the agent moved onto — the text the LLM judges;
- ``KeyRoomOracle``: ground-truth detector for MiniHack KeyRoom (key picked up, door opened,
  staircase reached) from the env's ``info``;
- ``CALMReward`` (term ``calm``): the auxiliary reward, with ``detector: llm`` (any backend
  from ``rewardlab.llm``) or ``detector: oracle`` (the baseline);
- ``keyroom_expert_action`` / ``record_keyroom_steps``: an ε-noisy scripted KeyRoom player
  that records labelled trajectories; ``score_detector`` gives the paper's precision /
  recall / F1 of a backend's labels against the oracle.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardlab.core.terms import Term, require_info
from rewardlab.core.transition import Transition, select_info
from rewardlab.errors import InvalidArgument
from rewardlab.llm.base import LLMBackend, YesNoStats, ask_yes_no, make_backend

__all__ = ["KEYROOM_TASK", "KEYROOM_SUBGOALS", "DECOMPOSE_PROMPT", "CHECK_PROMPT", "decompose",
           "StepView", "render_transition", "check_prompt", "KeyRoomOracle", "CALMReward",
           "keyroom_expert_action", "record_keyroom_steps", "score_detector", "DetectorScore"]

log = logging.getLogger("rewardlab.calm")

KEYROOM_TASK = ("Pick up the key, use it to open the locked door of the inner room, "
                "then walk onto the staircase down ('>').")
KEYROOM_SUBGOALS = ("pick up the key", "open the door", "reach the staircase")

DECOMPOSE_PROMPT = """You are helping an agent that plays the game NetHack.
Task: {task}
List the subgoals the agent must achieve to complete the task, in order.
Answer only with a numbered list, one short subgoal per line."""

CHECK_PROMPT = """You are judging one step of an agent playing the game NetHack.
On the maps, @ is the agent, ( is a key, + is a closed door, > is the staircase down, . is floor, | and - are walls.
Task: {task}
Subgoal: {subgoal}
{transition}
Did the agent achieve the subgoal "{subgoal}" in this step? Answer yes or no."""

_NUMBERED = re.compile(r"^\s*(?:\d+[.)]|[-*])\s*(.+?)\s*$")


def decompose(backend: LLMBackend, task: str, max_subgoals: int = 8) -> list[str]:
    """Subgoals of ``task`` from one LLM call (numbered or bulleted lines of the reply).

    >>> from rewardlab.llm.scripted import ScriptedBackend
    >>> decompose(ScriptedBackend("calm_keyroom"), KEYROOM_TASK)
    ['pick up the key', 'open the door', 'reach the staircase']
    """
    reply = backend.complete([DECOMPOSE_PROMPT.format(task=task)])[0]
    subgoals = []
    for line in reply.splitlines():
        m = _NUMBERED.match(line)
        if m and m.group(1):
            subgoals.append(m.group(1).rstrip("."))
    if not subgoals:
        raise InvalidArgument(f"the LLM's subgoal decomposition has no numbered lines: {reply[:200]!r}; "
                              "give the subgoals explicitly (params.subgoals)")
    return subgoals[:max_subgoals]


@dataclass
class StepView:
    """What the renderer and the oracle read of one state: the MiniHack adapter's info."""

    message: str
    chars: np.ndarray  # (21, 79) uint8
    inventory: str
    agent_pos: np.ndarray  # [x, y]

    @staticmethod
    def rows(info: dict[str, Any], n: int) -> list[StepView]:
        """One view per row of a vector-form info dict."""
        for key in ("message", "chars", "inventory", "agent_pos"):
            require_info(info, key, "CALM", " - use a minihack/... env")
        chars, pos = np.asarray(info["chars"]), np.asarray(info["agent_pos"]).reshape(n, 2)
        return [StepView(str(info["message"][i]), chars[i], str(info["inventory"][i]), pos[i]) for i in range(n)]


_CELL_NAMES = {">": "staircase down", "<": "staircase up", "(": "a tool (key)", "+": "a closed door",
               ".": "floor", "#": "corridor", "|": "an open door", "-": "an open door"}


def _crop(v: StepView, radius: int) -> list[str]:
    x, y = int(v.agent_pos[0]), int(v.agent_pos[1])
    h, w = v.chars.shape
    rows = []
    for r in range(y - radius, y + radius + 1):
        row = "".join(chr(v.chars[r, c]) if 0 <= r < h and 0 <= c < w else " "
                      for c in range(x - radius, x + radius + 1))
        rows.append("  " + row)
    return rows


def render_transition(before: StepView, after: StepView, radius: int = 2) -> str:
    """The text an LLM judges: message, maps around the agent before/after, inventory delta,
    and what the agent moved onto. Map rows start with two spaces.

    >>> chars = np.full((21, 79), ord("-"), np.uint8); chars[5, 3:8] = list(b"..@>.")
    >>> a = StepView("", chars, "a - a dagger", np.array([5, 5]))
    >>> b = StepView("", chars.copy(), "a - a dagger", np.array([6, 5])); b.chars[5, 5:7] = list(b".@")
    >>> print(render_transition(a, b, radius=1))
    message: ""
    map before:
      ---
      .@>
      ---
    map after:
      ---
      .@.
      ---
    inventory gained: nothing
    inventory lost: nothing
    agent moved onto: staircase down
    """
    inv_a, inv_b = set(before.inventory.splitlines()), set(after.inventory.splitlines())
    gained = [s for s in after.inventory.splitlines() if s not in inv_a]
    lost = [s for s in before.inventory.splitlines() if s not in inv_b]
    moved = not np.array_equal(before.agent_pos, after.agent_pos)
    under = chr(before.chars[int(after.agent_pos[1]), int(after.agent_pos[0])]) if moved else ""
    onto = _CELL_NAMES.get(under, "nothing special") if moved else "did not move"
    lines = [f'message: "{after.message.strip()}"', "map before:", *_crop(before, radius), "map after:",
             *_crop(after, radius), f"inventory gained: {'; '.join(gained) or 'nothing'}",
             f"inventory lost: {'; '.join(lost) or 'nothing'}", f"agent moved onto: {onto}"]
    return "\n".join(lines)


def check_prompt(task: str, subgoal: str, before: StepView, after: StepView, radius: int = 2) -> str:
    """The per-transition achievement question for one subgoal."""
    return CHECK_PROMPT.format(task=task, subgoal=subgoal, transition=render_transition(before, after, radius))


def _salient(before: StepView, after: StepView, ended: bool) -> bool:
    """Worth asking about: a message, an inventory change or the episode end (else no subgoal
    of a NetHack task can have been achieved, and the query is skipped as a "no")."""
    return bool(after.message.strip()) or before.inventory != after.inventory or ended


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


def _success_rows(info: dict[str, Any], n: int) -> np.ndarray:
    if "is_success" not in info:
        return np.zeros(n, bool)
    vals = np.asarray(info["is_success"]).astype(bool)
    mask = info.get("_is_success")
    return vals & np.asarray(mask, bool) if mask is not None else vals


class CALMReward(Term):
    """Pays ``reward`` for each subgoal newly achieved in an episode (each at most once).

    ``detector: llm`` asks ``backend`` (``rewardlab.llm``; scripted/local/openai) per transition
    and per open subgoal, skipping transitions without a message, inventory change or episode
    end; ``detector: oracle`` uses ``KeyRoomOracle`` (KeyRoom only). ``subgoals`` default to
    the backend's decomposition of ``task`` (asked once).

    >>> term = CALMReward(detector="llm", backend={"name": "scripted", "rules": "calm_keyroom"})
    >>> term.subgoals
    ['pick up the key', 'open the door', 'reach the staircase']
    >>> chars = np.full((1, 21, 79), ord("."), np.uint8)
    >>> start = {"message": np.array([""], object), "chars": chars, "inventory": np.array([""], object),
    ...          "agent_pos": np.array([[3, 3]])}
    >>> term.observe_reset(None, start, np.array([0]))
    >>> got_key = dict(start, message=np.array(["g - a key."], object), inventory=np.array(["g - a key."], object))
    >>> t = Transition(None, np.array([8]), None, np.zeros(1), np.zeros(1, bool), np.zeros(1, bool), got_key)
    >>> term(t), term(t)  # the key subgoal pays once per episode
    (array([1.], dtype=float32), array([0.], dtype=float32))
    """

    name = "calm"

    def __init__(self, detector: str = "llm", backend: Any = None, task: str = KEYROOM_TASK,
                 subgoals: Sequence[str] | None = None, reward: float = 1.0, radius: int = 2,
                 only_salient: bool = True, retries: int = 1):
        if detector not in ("llm", "oracle"):
            raise InvalidArgument(f"calm detector must be 'llm' or 'oracle', got {detector!r}")
        if not np.isfinite(reward):
            raise InvalidArgument(f"calm reward must be finite, got {reward}")
        if radius < 1:
            raise InvalidArgument(f"calm radius (map rows/cols shown around the agent) must be >= 1, got {radius}")
        self.detector, self.task, self.reward = detector, task, float(reward)
        self.radius, self.only_salient, self.retries = int(radius), bool(only_salient), int(retries)
        self.oracle = KeyRoomOracle() if detector == "oracle" else None
        if detector == "oracle":
            if subgoals is not None and list(subgoals) != list(KEYROOM_SUBGOALS):
                raise InvalidArgument(f"the oracle detector knows the KeyRoom subgoals {list(KEYROOM_SUBGOALS)} only")
            self.backend = None
            self.subgoals = list(KEYROOM_SUBGOALS)
        else:
            if backend is None:
                raise InvalidArgument("calm with detector 'llm' needs a backend, e.g. "
                                      "{name: scripted, rules: calm_keyroom} or {name: openai, base_url: ...}")
            self.backend = make_backend(backend)
            self.subgoals = list(subgoals) if subgoals is not None else decompose(self.backend, task)
        self.stats = YesNoStats()
        self.queries_skipped = 0
        self._achieved = np.zeros((0, len(self.subgoals)), bool)
        self._prev: dict[int, StepView] = {}

    def bind(self, num_envs: int) -> None:
        self._achieved = np.zeros((num_envs, len(self.subgoals)), bool)

    def _grow(self, n: int) -> None:
        if len(self._achieved) < n:
            grown = np.zeros((n, len(self.subgoals)), bool)
            grown[: len(self._achieved)] = self._achieved
            self._achieved = grown

    def reset(self, env_ids: np.ndarray) -> None:
        ids = np.asarray(env_ids)
        self._grow(int(ids.max(initial=-1)) + 1)
        self._achieved[ids] = False

    def observe_reset(self, obs: Any, info: dict, env_ids: np.ndarray) -> None:
        ids = np.asarray(env_ids)
        if len(ids):
            for i, v in zip(ids, StepView.rows(select_info(info, ids), len(ids)), strict=True):
                self._prev[int(i)] = v

    def detect(self, before: list[StepView], after: list[StepView], ended: np.ndarray,
               success: np.ndarray, open_: np.ndarray) -> np.ndarray:
        """``(n, k)`` achievement labels for the ``open_`` (not yet achieved) subgoals."""
        n, k = len(after), len(self.subgoals)
        if self.oracle is not None:
            return np.stack([self.oracle.detect(b, a, bool(e), bool(s))
                             for b, a, e, s in zip(before, after, ended, success, strict=True)]).reshape(n, k)
        out = np.zeros((n, k), bool)
        asks: list[tuple[int, int]] = []
        prompts: list[str] = []
        for i in range(n):
            if self.only_salient and not _salient(before[i], after[i], bool(ended[i])):
                self.queries_skipped += int(open_[i].sum())
                continue
            for j in np.flatnonzero(open_[i]):
                asks.append((i, int(j)))
                prompts.append(check_prompt(self.task, self.subgoals[j], before[i], after[i], self.radius))
        if prompts:
            labels, stats = ask_yes_no(self.backend, prompts, self.retries)
            self.stats.add(stats)
            for (i, j), y in zip(asks, labels, strict=True):
                out[i, j] = y
        return out

    def __call__(self, t: Transition) -> np.ndarray:
        n = t.num_envs
        ids = np.asarray(t.env_ids)
        self._grow(int(ids.max()) + 1)
        after = StepView.rows(t.info, n)
        missing = [int(i) for i in ids if int(i) not in self._prev]
        if missing:
            raise InvalidArgument(f"calm saw a step of env(s) {missing} before their reset observation "
                                  "(use it inside ShapedEnv/ShapedVectorEnv)")
        before = [self._prev[int(i)] for i in ids]
        open_ = ~self._achieved[ids]
        hit = self.detect(before, after, t.done, _success_rows(t.info, n), open_) & open_
        self._achieved[ids] |= hit
        for i, v in zip(ids, after, strict=True):
            self._prev[int(i)] = v
        return (hit.sum(axis=1) * self.reward).astype(np.float32)

    @classmethod
    def required_agent_hooks(cls, params: Mapping[str, Any]) -> frozenset[str]:
        """None: ``update`` only reports counters, so CALM works under agents that never call it."""
        return frozenset()

    def update(self, batch: Any = None) -> dict[str, float]:
        """Logged counters of the LLM queries (called by the agent after each policy update)."""
        out = {"queries": float(self.stats.asked), "yes": float(self.stats.yes),
               "garbled": float(self.stats.garbled), "skipped": float(self.queries_skipped)}
        hit_rate = getattr(self.backend, "hit_rate", None)
        if hit_rate is not None:
            out["cache_hit_rate"] = float(hit_rate)
        return out


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
                         max_steps: int = 100) -> list[tuple[StepView, StepView, bool, bool]]:
    """Transitions ``(before, after, ended, success)`` of ``episodes`` ε-noisy expert episodes."""
    from rewardlab.envs import make

    env = make(f"minihack/{task}", max_episode_steps=max_steps)
    rng = np.random.default_rng(seed)
    steps: list[tuple[StepView, StepView, bool, bool]] = []
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


def score_detector(term: CALMReward, steps: Sequence[tuple[StepView, StepView, bool, bool]],
                   batch: int = 32) -> list[DetectorScore]:
    """Score ``term``'s per-transition labels (all subgoals asked on every transition, no
    once-per-episode masking) against ``KeyRoomOracle`` on recorded ``steps``.

    >>> steps = record_keyroom_steps(episodes=2, epsilon=0.2, seed=0)
    >>> scripted = CALMReward(detector="llm", backend={"name": "scripted", "rules": "calm_keyroom"})
    >>> [round(s.f1, 2) for s in score_detector(scripted, steps)]
    [1.0, 1.0, 1.0]
    """
    if list(term.subgoals) != list(KEYROOM_SUBGOALS):
        raise InvalidArgument(f"scoring needs the KeyRoom subgoals {list(KEYROOM_SUBGOALS)}, got {term.subgoals}")
    oracle = KeyRoomOracle()
    truth = np.stack([oracle.detect(*s) for s in steps])
    pred = np.zeros_like(truth)
    k = len(KEYROOM_SUBGOALS)
    for lo in range(0, len(steps), batch):
        chunk = steps[lo : lo + batch]
        pred[lo : lo + len(chunk)] = term.detect([s[0] for s in chunk], [s[1] for s in chunk],
                                                 np.array([s[2] for s in chunk]), np.array([s[3] for s in chunk]),
                                                 np.ones((len(chunk), k), bool))
    out = []
    for j, name in enumerate(KEYROOM_SUBGOALS):
        tp = int((pred[:, j] & truth[:, j]).sum())
        out.append(DetectorScore(name, tp, int((pred[:, j] & ~truth[:, j]).sum()),
                                 int((~pred[:, j] & truth[:, j]).sum()), int(truth[:, j].sum())))
    return out
