"""``CachedBackend``: every answer stored on disk in SQLite, keyed by backend + model + prompt.

Repeated runs cost nothing: a prompt answered once is read back from the file. The hit rate
is kept in ``hits``/``misses`` and logged (``rewardlab.llm`` logger) on ``close()``.
Safe to share between threads (one connection behind a lock). ``yes_no_logodds`` values are
cached in the same table (keyed by the few-shot examples too, the value stored as text).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from rewardlab.llm.base import LLMBackend

__all__ = ["CachedBackend"]

log = logging.getLogger("rewardlab.llm")

_SCHEMA = """CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY, backend TEXT NOT NULL, prompt TEXT NOT NULL, reply TEXT NOT NULL)"""


class CachedBackend(LLMBackend):
    """Wrap ``backend`` with an on-disk SQLite cache at ``path``.

    >>> import tempfile, os
    >>> from rewardlab.llm.scripted import ScriptedBackend
    >>> path = os.path.join(tempfile.mkdtemp(), "llm.sqlite")
    >>> b = CachedBackend(ScriptedBackend(rules=[["hi", "yes"]]), path)
    >>> b.complete(["hi", "ho"]), b.complete(["hi"]), (b.hits, b.misses)
    (['yes', 'no'], ['yes'], (1, 2))
    """

    def __init__(self, backend: LLMBackend, path: str | Path):
        self.inner = backend
        self.name, self.model = backend.name, backend.model
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")  # several runs may share one cache file
        self._db.execute(_SCHEMA)
        self._db.commit()
        self.hits = 0
        self.misses = 0

    @property
    def cache_key(self) -> str:
        return self.inner.cache_key

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def _key(self, prompt: str) -> str:
        return hashlib.sha256(f"{self.inner.cache_key}\0{prompt}".encode()).hexdigest()

    def _cached(self, keys: list[str], prompts: Sequence[str],
                compute: Callable[[list[str]], list[str]]) -> list[str]:
        """Stored text per key; the missing ones computed once each (``compute(prompts)``) and stored."""
        with self._lock:
            found: dict[str, str] = {}
            for i in range(0, len(keys), 500):  # SQLite's host-parameter limit
                chunk = keys[i : i + 500]
                q = f"SELECT key, reply FROM answers WHERE key IN ({','.join('?' * len(chunk))})"
                found.update(self._db.execute(q, chunk).fetchall())
        todo: dict[str, int] = {}  # a missing key -> its first prompt
        for i, k in enumerate(keys):
            if k not in found:
                todo.setdefault(k, i)
        if todo:
            idx = list(todo.values())
            replies = compute([prompts[i] for i in idx])
            rows = [(keys[i], self.inner.cache_key, prompts[i], r) for i, r in zip(idx, replies, strict=True)]
            with self._lock:
                self._db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)", rows)
                self._db.commit()
            found.update((k, r) for k, _, _, r in rows)
        with self._lock:
            self.misses += len(todo)
            self.hits += len(prompts) - len(todo)
        return [found[k] for k in keys]

    def complete(self, prompts: Sequence[str]) -> list[str]:
        return self._cached([self._key(p) for p in prompts], prompts, self.inner.complete)

    def yes_no_logodds(self, prompts: Sequence[str], examples: Sequence[tuple[str, str]] = ()) -> list[float]:
        """The inner backend's log-odds, each computed once per (examples, prompt)."""
        shots = hashlib.sha256(repr([tuple(e) for e in examples]).encode()).hexdigest()[:16]
        keys = [self._key(f"\0logodds\0{shots}\0{p}") for p in prompts]

        def compute(todo: list[str]) -> list[str]:
            return [repr(float(v)) for v in self.inner.yes_no_logodds(todo, examples)]

        return [float(v) for v in self._cached(keys, prompts, compute)]

    def close(self) -> None:
        log.info("LLM cache %s: %d hits, %d misses (hit rate %.1f%%)", self.path, self.hits, self.misses,
                 100 * self.hit_rate)
        with self._lock:
            self._db.close()
        self.inner.close()

    def __repr__(self) -> str:
        return f"CachedBackend({self.inner!r}, path={str(self.path)!r})"
