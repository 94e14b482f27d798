"""The ``LLMBackend`` interface, the backend registry, and yes/no answer parsing.

- ``LLMBackend``: ``complete(prompts) -> texts``, batched; ``name`` and ``model`` key the cache.
- ``LLMError``: a backend could not answer (server down after retries, malformed HTTP reply).
- ``parse_yes_no``: ``True``/``False`` from a reply, ``None`` when it is neither (garbled).
- ``ask_yes_no``: asks, re-asks garbled replies with a stricter prompt, and counts the replies
  that stay garbled; those count as "no" — a logged, counted fallback, never a silent one.
- ``BACKENDS`` / ``make_backend(spec)``: build a backend from a name or a config mapping.
- ``LLMBackend.yes_no_logodds``: ``log P(yes) - log P(no)`` of the first reply token after a
  few-shot chat, read from the model's next-token distribution instead of parsing generated
  text (``local``: the full distribution; ``openai``: the server's ``top_logprobs``);
  ``logodds_from_top`` does the reading from a top-k list.
"""

from __future__ import annotations

import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rewardlab.core.registry import Registry
from rewardlab.errors import ConfigError, InvalidArgument, RewardLabError

__all__ = ["LLMBackend", "LLMError", "BACKENDS", "make_backend", "parse_yes_no", "ask_parsed", "ask_yes_no",
           "YesNoStats", "RETRY_SUFFIX", "YES_TOKENS", "NO_TOKENS", "logodds_from_top", "fewshot_messages"]

log = logging.getLogger("rewardlab.llm")


class LLMError(RewardLabError):
    """A backend could not produce an answer (after its retries)."""


class LLMBackend(ABC):
    """A language model behind one batched call: ``complete(prompts) -> texts``.

    ``name`` (the backend kind) and ``model`` identify the answers for the on-disk cache.
    Implementations return exactly one text per prompt, in order, or raise ``LLMError``.
    """

    name: str = "backend"
    model: str = ""

    @abstractmethod
    def complete(self, prompts: Sequence[str]) -> list[str]:
        """One reply per prompt, in order."""

    def close(self) -> None:
        """Release resources (connections, model memory). Default: nothing to release."""
        return None

    def yes_no_logodds(self, prompts: Sequence[str], examples: Sequence[tuple[str, str]] = ()) -> list[float]:
        """``log P(yes) - log P(no)`` of the first token of the reply to each prompt, the prompt
        asked after the few-shot ``examples`` (``(prompt, reply)`` pairs given as earlier chat
        turns). Nothing is generated or parsed. Backends without token probabilities raise."""
        raise LLMError(f"the {self.name!r} backend exposes no token log-probabilities; "
                       "use the 'local' backend or an 'openai' server that returns logprobs")

    @property
    def cache_key(self) -> str:
        """Backend + model + generation settings that change the answers."""
        return f"{self.name}|{self.model}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"


# Built-in backends are declared in the LLM_BACKENDS mapping of llm/manifest.py.
BACKENDS: Registry[Any] = Registry("LLM backend", manifest="LLM_BACKENDS")


def make_backend(spec: Any) -> LLMBackend:
    """A backend from a name (``"scripted"``), a mapping ``{"name": ..., "cache": path, **params}``
    or an ``LLMBackend`` (returned as is). ``cache`` (a SQLite path) wraps it in ``CachedBackend``.

    >>> make_backend({"name": "scripted", "rules": [["hello", "yes"]]}).complete(["hello?", "bye"])
    ['yes', 'no']
    """
    if isinstance(spec, LLMBackend):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(f"an LLM backend must be a name or a mapping with 'name', got {spec!r}")
    params = dict(spec)
    kind = params.pop("name")
    cache = params.pop("cache", None)
    cls = BACKENDS.get(kind)
    try:
        backend = cls(**params)
    except TypeError as e:
        raise ConfigError(f"LLM backend {kind!r}: {e}") from e
    except InvalidArgument as e:
        raise ConfigError(f"LLM backend {kind!r}: {e}") from e
    if cache:
        from rewardlab.llm.cache import CachedBackend

        backend = CachedBackend(backend, cache)
    return backend


_YES = re.compile(r"^\W*(yes|y|true|achieved|helpful)\b", re.IGNORECASE)
_NO = re.compile(r"^\W*(no|n|false|not)\b", re.IGNORECASE)

RETRY_SUFFIX = "\nReply with exactly one word: yes or no."


def parse_yes_no(text: str) -> bool | None:
    """``True``/``False`` when the reply starts with yes/no (or a synonym), else ``None``.

    >>> parse_yes_no("Yes, the key was picked up."), parse_yes_no(" no."), parse_yes_no("Maybe")
    (True, False, None)
    """
    if _YES.match(text):
        return True
    if _NO.match(text):
        return False
    return None


# First tokens of a "yes" / "no" reply, as spelled by chat models (case, leading space).
YES_TOKENS = ("yes", "Yes", " yes", " Yes", "YES")
NO_TOKENS = ("no", "No", " no", " No", "NO")


def fewshot_messages(prompt: str, examples: Sequence[tuple[str, str]] = (),
                     system: str | None = None) -> list[dict[str, str]]:
    """Chat messages: optional system turn, each example as a user turn and its reply as an
    assistant turn, then ``prompt``.

    >>> [m["role"] for m in fewshot_messages("q?", [("a?", "yes")], system="be brief")]
    ['system', 'user', 'assistant', 'user']
    """
    msgs = [{"role": "system", "content": system}] if system else []
    for q, a in examples:
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return msgs + [{"role": "user", "content": prompt}]


def _logsumexp(xs: Sequence[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def logodds_from_top(top: Mapping[str, float]) -> tuple[float, int]:
    """``log P(yes) - log P(no)`` from a top-k ``{token: logprob}`` of the first reply token, and
    how many of the two words were missing from the list (0-2). A missing word gets the
    smallest listed logprob: an upper bound on its probability, so the log-odds are clipped.

    >>> logodds_from_top({"Yes": -0.1, " yes": -3.0, "No": -2.5, "Maybe": -4.0})[0] > 2
    True
    >>> logodds_from_top({"No": -0.05, "Sure": -3.0})
    (-2.95, 1)
    """
    if not top:
        raise LLMError("the server returned no top_logprobs for the first token")
    floor = min(top.values())
    yes = [v for k, v in top.items() if k.strip().lower() == "yes"]
    no = [v for k, v in top.items() if k.strip().lower() == "no"]
    missing = (not yes) + (not no)
    return _logsumexp(yes or [floor]) - _logsumexp(no or [floor]), missing


@dataclass
class YesNoStats:
    """Counts of one or more ``ask_yes_no`` calls."""

    asked: int = 0
    yes: int = 0
    retried: int = 0
    garbled: int = 0  # still unparseable after the retries: counted as "no"

    def add(self, other: YesNoStats) -> None:
        self.asked += other.asked
        self.yes += other.yes
        self.retried += other.retried
        self.garbled += other.garbled


def ask_parsed(backend: LLMBackend, prompts: Sequence[str], parse: Callable[[str], Any], retries: int = 1,
               suffix: str = "", counted_as: str = "garbled") -> tuple[list[Any], int]:
    """``parse(reply)`` for each prompt; a ``None`` (garbled) answer is asked again up to ``retries``
    times with ``suffix`` appended once more each time. Returns the answers (``None`` where still
    garbled, logged as a warning saying they are ``counted_as``) and how many re-asks were made.

    >>> from rewardlab.llm.scripted import ScriptedBackend
    >>> ask_parsed(ScriptedBackend(rules=[["door", "Yes"], ["key", "perhaps"]]), ["door?", "key?"], parse_yes_no)
    ([True, None], 1)
    """
    if retries < 0:
        raise InvalidArgument(f"retries must be >= 0, got {retries}")
    prompts = list(prompts)
    answers = [parse(t) for t in backend.complete(prompts)] if prompts else []
    retried = 0
    for attempt in range(1, retries + 1):
        todo = [i for i, a in enumerate(answers) if a is None]
        if not todo:
            break
        retried += len(todo)
        replies = backend.complete([prompts[i] + suffix * attempt for i in todo])
        for i, text in zip(todo, replies, strict=True):
            answers[i] = parse(text)
    if garbled := sum(a is None for a in answers):
        log.warning("%d of %d LLM replies stayed unparseable after %d retries; counted as %s",
                    garbled, len(prompts), retries, counted_as)
    return answers, retried


def ask_yes_no(backend: LLMBackend, prompts: Sequence[str], retries: int = 1) -> tuple[list[bool], YesNoStats]:
    """Yes/no answers to ``prompts``; garbled replies are re-asked ``retries`` times with
    ``RETRY_SUFFIX`` appended, then counted in ``stats.garbled`` and treated as "no".

    >>> from rewardlab.llm.scripted import ScriptedBackend
    >>> b = ScriptedBackend(rules=[["door", "Yes"], ["key", "perhaps"]])
    >>> ask_yes_no(b, ["door?", "key?", "wall?"])
    ([True, False, False], YesNoStats(asked=3, yes=1, retried=1, garbled=1))
    """
    answers, retried = ask_parsed(backend, prompts, parse_yes_no, retries, RETRY_SUFFIX, counted_as="'no'")
    stats = YesNoStats(asked=len(prompts), retried=retried, garbled=sum(a is None for a in answers))
    out = [bool(a) for a in answers]
    stats.yes = sum(out)
    return out, stats
