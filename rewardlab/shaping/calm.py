"""CALM: LLM-judged subgoal rewards (after "Assessing the Zero-Shot Capabilities of LLMs for
Action Evaluation in RL"). The LLM decomposes the task into subgoals once, then judges per
transition, from a text rendering, whether a subgoal was achieved; each newly achieved
subgoal pays ``reward`` once per episode.

- ``DECOMPOSE_PROMPT`` / ``CHECK_PROMPT``: the prompt templates; ``decompose(backend, task)``;
- ``render_transition``: NetHack message, the map around the agent before and after, the
  inventory delta, what the agent moved onto and the map cells that changed, in words — the
  text the LLM judges;
  ``render_events``: the same without the maps;
- ``CALMReward`` (term ``calm``): the auxiliary reward. Detectors: ``llm`` (a backend's
  generated reply parsed as yes/no), ``logprob`` (``log P(yes) - log P(no)`` of the reply's
  first token after a few-shot prompt, above a calibrated threshold), ``embedding`` (cosine
  similarity of the transition text and the subgoal text under all-MiniLM-L6-v2, above a
  calibrated threshold), ``oracle`` (ground truth, KeyRoom only: the baseline).

The KeyRoom oracle, the scripted player that records labelled transitions, threshold
calibration and the F1 scorer live in ``rewardlab.shaping.calm_eval``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardlab.core.terms import Term, require_info
from rewardlab.core.transition import Transition, select_info
from rewardlab.errors import InvalidArgument
from rewardlab.llm.base import LLMBackend, YesNoStats, ask_yes_no, make_backend

__all__ = ["KEYROOM_TASK", "KEYROOM_SUBGOALS", "DECOMPOSE_PROMPT", "CHECK_PROMPT", "decompose",
           "StepView", "render_transition", "render_events", "check_prompt", "LOGPROB_PROMPT", "logprob_prompt",
           "salient", "CALMReward", "DETECTORS"]

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

LOGPROB_PROMPT = """You are judging one step of an agent playing the game NetHack.
On the maps, @ is the agent, ( is a key, + is a closed door, > is the staircase down, . is floor, | and - are walls.
Task: {task}
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


def render_transition(before: StepView, after: StepView, radius: int = 2, changes: bool = False) -> str:
    """The text an LLM judges: message, maps around the agent before/after, inventory delta,
    and what the agent moved onto (with ``changes``, also the map cells that changed, in
    words). Map rows start with two spaces.

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
    if changes:
        lines.append(f"map cells changed: {_changes(before, after)}")
    return "\n".join(lines)


def _name(code: int) -> str:
    ch = chr(code)
    return _CELL_NAMES.get(ch, f"'{ch}'")


def _changes(before: StepView, after: StepView, limit: int = 4) -> str:
    """Seen map cells (anywhere, not the agent's) that show something else after the step, in
    words ("a closed door became an open door"); cells seen for the first time are not changes."""
    a, b = before.chars, after.chars
    blank, agent = ord(" "), ord("@")
    mask = (a != b) & (a != blank) & (b != blank) & (a != agent) & (b != agent)
    pairs = list(dict.fromkeys((_name(int(x)), _name(int(y))) for x, y in zip(a[mask], b[mask], strict=True)))
    pairs = [(x, y) for x, y in pairs if x != y]  # '|' and '-' are both drawn for doors and walls
    if not pairs:
        return "nothing"
    return "; ".join(f"{x} became {y}" for x, y in pairs[:limit])


def render_events(before: StepView, after: StepView) -> str:
    """``render_transition`` without the maps: the message, the inventory delta, what the
    agent moved onto and the map cells that changed (the ``embedding`` detector's default text).

    >>> chars = np.full((21, 79), ord("."), np.uint8); chars[2, 4] = ord("+")
    >>> opened = chars.copy(); opened[2, 4] = ord("|")
    >>> print(render_events(StepView("Never mind.", chars, "", np.array([3, 2])),
    ...                     StepView("Never mind.", opened, "", np.array([3, 2]))))
    message: "Never mind."
    inventory gained: nothing
    inventory lost: nothing
    agent moved onto: did not move
    map cells changed: a closed door became an open door
    """
    return "\n".join(line for line in render_transition(before, after, radius=1, changes=True).splitlines()
                     if not line.startswith(("map before:", "map after:", "  ")))


def check_prompt(task: str, subgoal: str, before: StepView, after: StepView, radius: int = 2) -> str:
    """The per-transition achievement question for one subgoal."""
    return CHECK_PROMPT.format(task=task, subgoal=subgoal, transition=render_transition(before, after, radius))


def logprob_prompt(task: str, subgoal: str, before: StepView, after: StepView, radius: int = 2) -> str:
    """The ``logprob`` detector's question: ``CHECK_PROMPT``'s content with the subgoal last (the
    questions about one transition then share a prefix the model evaluates once) and the
    "map cells changed" line added."""
    return LOGPROB_PROMPT.format(task=task, subgoal=subgoal,
                                 transition=render_transition(before, after, radius, changes=True))


def salient(before: StepView, after: StepView, ended: bool) -> bool:
    """Worth asking about: a message, an inventory change or the episode end (else no subgoal
    of a NetHack task can have been achieved, and the query is skipped as a "no")."""
    return bool(after.message.strip()) or before.inventory != after.inventory or ended


def _success_rows(info: dict[str, Any], n: int) -> np.ndarray:
    if "is_success" not in info:
        return np.zeros(n, bool)
    vals = np.asarray(info["is_success"]).astype(bool)
    mask = info.get("_is_success")
    return vals & np.asarray(mask, bool) if mask is not None else vals


DETECTORS = ("llm", "logprob", "embedding", "oracle")


class CALMReward(Term):
    """Pays ``reward`` for each subgoal newly achieved in an episode (each at most once).

    Every detector but ``oracle`` skips transitions without a message, inventory change or
    episode end (``only_salient``) and judges the open subgoals of the others:

    - ``llm``: asks ``backend`` (``rewardlab.llm``; scripted/local/openai) and parses the reply;
    - ``logprob``: ``backend.yes_no_logodds`` of the same prompt after the few-shot ``examples``
      (``[prompt, "yes"/"no"]`` pairs), achieved when above ``threshold`` (default 0: P(yes) >
      P(no));
    - ``embedding``: cosine similarity of the transition text (``text: events``, the message,
      inventory delta, the cell moved onto and the map cells that changed; or ``full``, the
      same with the maps) and the subgoal
      text under ``embedding`` (``minilm``: all-MiniLM-L6-v2, shipped offline; ``hashing``),
      achieved when above ``threshold`` (required: calibrate it with
      ``rewardlab.shaping.calm_eval.calibrate_thresholds``);
    - ``oracle``: ``calm_eval.KeyRoomOracle`` (KeyRoom ground truth; the baseline).

    ``threshold`` is one number or one per subgoal. ``subgoals`` default to the backend's
    decomposition of ``task`` (asked once; ``embedding`` without a backend needs them).

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
                 only_salient: bool = True, retries: int = 1, threshold: float | Sequence[float] | None = None,
                 examples: Sequence[Sequence[str]] = (), embedding: str = "minilm", text: str = "events"):
        if detector not in DETECTORS:
            raise InvalidArgument(f"calm detector must be one of {', '.join(DETECTORS)}; got {detector!r}")
        if not np.isfinite(reward):
            raise InvalidArgument(f"calm reward must be finite, got {reward}")
        if radius < 1:
            raise InvalidArgument(f"calm radius (map rows/cols shown around the agent) must be >= 1, got {radius}")
        if text not in ("events", "full"):
            raise InvalidArgument(f"calm text (what the embedding detector embeds) must be 'events' or 'full', "
                                  f"got {text!r}")
        self.detector, self.task, self.reward = detector, task, float(reward)
        self.radius, self.only_salient, self.retries = int(radius), bool(only_salient), int(retries)
        self.text = text
        self.oracle = None
        self.backend = None
        self.embedder = None
        if detector == "oracle":
            from rewardlab.shaping.calm_eval import KeyRoomOracle

            if subgoals is not None and list(subgoals) != list(KEYROOM_SUBGOALS):
                raise InvalidArgument(f"the oracle detector knows the KeyRoom subgoals {list(KEYROOM_SUBGOALS)} only")
            self.oracle = KeyRoomOracle()
            self.subgoals = list(KEYROOM_SUBGOALS)
        else:
            if backend is None and detector != "embedding":
                raise InvalidArgument(f"calm with detector {detector!r} needs a backend, e.g. "
                                      "{name: local}, {name: scripted, rules: calm_keyroom} or "
                                      "{name: openai, base_url: ...}")
            if backend is None and subgoals is None:
                raise InvalidArgument("calm with detector 'embedding' and no backend needs params.subgoals")
            self.backend = make_backend(backend) if backend is not None else None
            self.subgoals = list(subgoals) if subgoals is not None else decompose(self.backend, task)
        k = len(self.subgoals)
        if threshold is None and detector == "embedding":
            raise InvalidArgument("calm with detector 'embedding' needs threshold (a cosine similarity, one or "
                                  "one per subgoal), e.g. from scripts/calm_eval.py's calibration")
        try:
            thr = np.asarray(0.0 if threshold is None else threshold, float)
        except (TypeError, ValueError):
            thr = np.full(0, np.nan)
        if thr.ndim == 0:
            thr = np.full(k, float(thr))
        if thr.shape != (k,) or not np.isfinite(thr).all():
            raise InvalidArgument(f"calm threshold must be one finite number or {k} (one per subgoal), "
                                  f"got {threshold!r}")
        self.threshold = thr.copy()
        for ex in examples:
            if len(ex) != 2 or not all(isinstance(x, str) for x in ex):
                raise InvalidArgument(f"calm examples must be [prompt, reply] pairs of strings, got {ex!r}")
        self.examples = [(str(q), str(r)) for q, r in examples]
        if detector == "embedding":
            from rewardlab.shaping.oni import make_embedder

            self.embedder = make_embedder(embedding)
            self._goal_vecs = self.embedder(self.subgoals)
            self._vec_cache: dict[str, np.ndarray] = {}
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

    def _asks(self, before: list[StepView], after: list[StepView], ended: np.ndarray,
              open_: np.ndarray) -> list[tuple[int, int]]:
        """The (transition, subgoal) pairs to judge; skipped ones are counted."""
        asks = []
        for i in range(len(after)):
            if self.only_salient and not salient(before[i], after[i], bool(ended[i])):
                self.queries_skipped += int(open_[i].sum())
                continue
            asks += [(i, int(j)) for j in np.flatnonzero(open_[i])]
        return asks

    def _embed(self, texts: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self._vec_cache))
        if todo:
            if len(self._vec_cache) > 200_000:
                self._vec_cache.clear()
            self._vec_cache.update(zip(todo, self.embedder(todo), strict=True))
        return np.stack([self._vec_cache[t] for t in texts])

    def scores(self, before: list[StepView], after: list[StepView], ended: np.ndarray,
               open_: np.ndarray | None = None) -> np.ndarray:
        """``(n, k)`` raw scores of the ``logprob`` (log-odds) or ``embedding`` (cosine) detector;
        ``-inf`` where not asked (a silent transition, or a subgoal not in ``open_``)."""
        if self.detector not in ("logprob", "embedding"):
            raise InvalidArgument(f"calm detector {self.detector!r} has no scores; only logprob and embedding do")
        n, k = len(after), len(self.subgoals)
        out = np.full((n, k), -np.inf)
        asks = self._asks(before, after, ended, np.ones((n, k), bool) if open_ is None else open_)
        if not asks:
            return out
        self.stats.asked += len(asks)
        if self.detector == "logprob":
            prompts = [logprob_prompt(self.task, self.subgoals[j], before[i], after[i], self.radius) for i, j in asks]
            values = np.asarray(self.backend.yes_no_logodds(prompts, self.examples), float)
        else:
            rows = sorted({i for i, _ in asks})
            render = (lambda b, a: render_events(b, a)) if self.text == "events" else \
                (lambda b, a: render_transition(b, a, self.radius, changes=True))
            vecs = dict(zip(rows, self._embed([render(before[i], after[i]) for i in rows]), strict=True))
            values = np.array([float(vecs[i] @ self._goal_vecs[j]) for i, j in asks])
        for (i, j), v in zip(asks, values, strict=True):
            out[i, j] = v
        return out

    def detect(self, before: list[StepView], after: list[StepView], ended: np.ndarray,
               success: np.ndarray, open_: np.ndarray) -> np.ndarray:
        """``(n, k)`` achievement labels for the ``open_`` (not yet achieved) subgoals."""
        n, k = len(after), len(self.subgoals)
        if self.oracle is not None:
            return np.stack([self.oracle.detect(b, a, bool(e), bool(s))
                             for b, a, e, s in zip(before, after, ended, success, strict=True)]).reshape(n, k)
        if self.detector in ("logprob", "embedding"):
            out = self.scores(before, after, ended, open_) > self.threshold
            self.stats.yes += int(out.sum())
            return out
        out = np.zeros((n, k), bool)
        asks = self._asks(before, after, ended, open_)
        prompts = [check_prompt(self.task, self.subgoals[j], before[i], after[i], self.radius) for i, j in asks]
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
