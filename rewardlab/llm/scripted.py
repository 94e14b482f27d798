"""``ScriptedBackend``: deterministic, rule-based answers — **not a language model**.

Each rule is ``[regex, reply]``; the first rule whose regex matches the prompt (searched with
DOTALL, case-insensitive) gives the reply, otherwise ``default``. Named rule sets in
``SCRIPTS`` answer the prompts of the CALM (``calm_keyroom``) and ONI (``oni_nethack``; the
pairwise prompt of ONI's ranking variant: ``oni_ranking``) terms by hand-written rules, so
tests and offline runs work without a model. Results from
it measure the rules, not an LLM: docs that use it say so.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from rewardlab.errors import InvalidArgument, UnknownNameError
from rewardlab.llm.base import LLMBackend

__all__ = ["ScriptedBackend", "SCRIPTS"]

# NetHack messages that usually mean progress (score, items, descending, kills): the "helpful"
# judgement of the ONI rule sets (a message is a quoted string without quotes inside).
_ONI_HELPFUL = (r"(you kill|you destroy|welcome to experience level|you feel more|gold pieces|\b[a-zA-Z] - |"
                r"you climb|you descend|there is a staircase|you find|you see here|you finish eating|"
                r"you are beginning to feel)")

# Rule sets keyed to the prompt templates of rewardlab.shaping.calm / .oni.
SCRIPTS: dict[str, list[tuple[str, str]]] = {
    "calm_keyroom": [
        # Decomposition prompt: the three KeyRoom subgoals.
        (r"list the subgoals", "1. pick up the key\n2. open the door\n3. reach the staircase"),
        # Achievement checks: read the rendered transition.
        (r"subgoal: pick up the key.*inventory gained:[^\n]*\bkey\b", "yes"),
        # The door: a '+' in the map before, none in the map after (rows start with 2 spaces).
        (r"subgoal: open the door.*map before:\n(?:  [^\n]*\n)*?  [^\n]*\+[^\n]*\n(?:  [^\n]*\n)*"
         r"map after:\n(?:  [^+\n]*\n)+(?!  )", "yes"),
        (r"subgoal: reach the staircase.*agent moved onto: staircase down", "yes"),
    ],
    "oni_nethack": [
        # ONI_PROMPT (one message): helpful or not.
        (rf'message: "[^"]*{_ONI_HELPFUL}[^"]*"', "yes"),
    ],
    "oni_ranking": [
        # ONI_RANKING_PROMPT (two messages): prefer the helpful one; both or neither: a tie.
        (rf'message 1: "[^"]*{_ONI_HELPFUL}[^"]*"\s*message 2: "(?![^"]*{_ONI_HELPFUL})[^"]*"', "1"),
        (rf'message 1: "(?![^"]*{_ONI_HELPFUL})[^"]*"\s*message 2: "[^"]*{_ONI_HELPFUL}[^"]*"', "2"),
        (r"message 1: .*message 2: ", "tie"),
    ],
}


class ScriptedBackend(LLMBackend):
    """Rule-based replies: ``rules`` is a list of ``[regex, reply]`` or a name in ``SCRIPTS``.

    >>> b = ScriptedBackend(rules=[[r"capital of france", "Paris"]], default="I don't know")
    >>> b.complete(["What is the capital of France?", "2+2?"])
    ['Paris', "I don't know"]
    """

    name = "scripted"

    def __init__(self, rules: str | Sequence[Sequence[str]] = (), default: str = "no"):
        if isinstance(rules, str):
            if rules not in SCRIPTS:
                raise UnknownNameError("scripted rule set", rules, SCRIPTS)
            name, rules = rules, SCRIPTS[rules]
        else:
            name = "custom"
        # The cache key: two different rule lists must never share cached answers.
        digest = hashlib.sha256(repr([list(r) for r in rules] + [default]).encode()).hexdigest()[:12]
        self.model = f"rules:{name}:{digest}"
        compiled = []
        for rule in rules:
            if len(rule) != 2 or not all(isinstance(s, str) for s in rule):
                raise InvalidArgument(f"a scripted rule must be [regex, reply], got {rule!r}")
            try:
                compiled.append((re.compile(rule[0], re.IGNORECASE | re.DOTALL), rule[1]))
            except re.error as e:
                raise InvalidArgument(f"scripted rule regex {rule[0]!r} is invalid: {e}") from e
        self.rules = compiled
        self.default = default

    def complete(self, prompts: Sequence[str]) -> list[str]:
        out = []
        for p in prompts:
            out.append(next((reply for rx, reply in self.rules if rx.search(p)), self.default))
        return out
