"""``OpenAIBackend``: any OpenAI-compatible chat-completions server (vLLM, llama.cpp's
``python -m llama_cpp.server``, Ollama, the OpenAI API).

Standard library only (``urllib``): no client package needed. Settings come from the
arguments, else from environment variables:

- ``base_url``: ``REWARDLAB_LLM_BASE_URL``, else ``OPENAI_BASE_URL`` (e.g. ``http://127.0.0.1:8000/v1``);
- ``model``: ``REWARDLAB_LLM_MODEL`` (servers that serve one model ignore it);
- ``api_key``: ``REWARDLAB_LLM_API_KEY``, else ``OPENAI_API_KEY`` (sent only when set).

Each request has a ``timeout``; failed requests (connection refused, timeout, HTTP 5xx/429,
a body that is not a chat-completion) are retried ``max_retries`` times with exponential
backoff (``backoff * 2**attempt`` seconds, with jitter), then ``LLMError`` names the cause.
At most ``concurrency`` requests are in flight at once.

``yes_no_logodds`` asks for one token with ``logprobs: true, top_logprobs: 20`` and reads the
"yes"/"no" log-probabilities from that list (``logodds_from_top``; a word outside the top 20
gets the 20th logprob, counted in ``logprob_missing``). ``python -m llama_cpp.server`` returns
them only when started with ``--logits_all true``; a server that returns none raises
``LLMError``.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from rewardlab.errors import InvalidArgument
from rewardlab.llm.base import LLMBackend, LLMError, fewshot_messages, log, logodds_from_top

__all__ = ["OpenAIBackend"]


class OpenAIBackend(LLMBackend):
    """Chat completions from an OpenAI-compatible HTTP server (see module doc).

    >>> OpenAIBackend(base_url="http://127.0.0.1:9/v1", model="m", timeout=0.5, max_retries=0).complete(["hi"])
    Traceback (most recent call last):
    ...
    rewardlab.llm.base.LLMError: LLM request to http://127.0.0.1:9/v1/chat/completions failed after 1 attempt(s): ...
    """

    name = "openai"

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 timeout: float = 30.0, max_retries: int = 3, backoff: float = 0.5, concurrency: int = 4,
                 max_tokens: int = 64, temperature: float = 0.0, system: str | None = None,
                 seed: int | None = 0):
        base_url = base_url or os.environ.get("REWARDLAB_LLM_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise InvalidArgument("the openai backend needs base_url (or REWARDLAB_LLM_BASE_URL / OPENAI_BASE_URL), "
                                  "e.g. http://127.0.0.1:8000/v1")
        if not base_url.startswith(("http://", "https://")):
            raise InvalidArgument(f"base_url must start with http:// or https://, got {base_url!r}")
        if timeout <= 0:
            raise InvalidArgument(f"timeout must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise InvalidArgument(f"max_retries must be >= 0, got {max_retries}")
        if backoff < 0:
            raise InvalidArgument(f"backoff must be >= 0 seconds, got {backoff}")
        if concurrency < 1:
            raise InvalidArgument(f"concurrency must be >= 1, got {concurrency}")
        if max_tokens < 1:
            raise InvalidArgument(f"max_tokens must be >= 1, got {max_tokens}")
        self.base_url = base_url.rstrip("/")
        self.model = model or os.environ.get("REWARDLAB_LLM_MODEL") or "default"
        self.api_key = api_key or os.environ.get("REWARDLAB_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.timeout, self.max_retries, self.backoff = float(timeout), int(max_retries), float(backoff)
        self.concurrency = int(concurrency)
        self.max_tokens, self.temperature, self.system, self.seed = int(max_tokens), float(temperature), system, seed
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="rewardlab-llm")
        self._rng = random.Random(0)
        self._lock = threading.Lock()
        self.requests = 0
        self.failures = 0  # failed attempts (each retried or, at the end, raised)
        self.logprob_missing = 0  # "yes"/"no" words outside a reply's top_logprobs

    @property
    def cache_key(self) -> str:
        return f"{self.name}|{self.base_url}|{self.model}|t={self.temperature}|max={self.max_tokens}|sys={self.system}"

    def _payload(self, prompt: str | _LogoddsQuery) -> bytes:
        if isinstance(prompt, _LogoddsQuery):
            body = {"model": self.model, "messages": fewshot_messages(prompt.prompt, prompt.examples, self.system),
                    "max_tokens": 1, "temperature": 0.0, "logprobs": True, "top_logprobs": 20}
        else:
            messages = fewshot_messages(prompt, (), self.system)
            body = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens,
                    "temperature": self.temperature}
        if self.seed is not None:
            body["seed"] = self.seed
        return json.dumps(body).encode()

    def _once(self, prompt: str | _LogoddsQuery) -> Any:
        req = urllib.request.Request(f"{self.base_url}/chat/completions", data=self._payload(prompt), method="POST",
                                     headers={"Content-Type": "application/json"})
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            raw = resp.read()
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            content = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise _Malformed(f"malformed chat-completion reply {raw[:200]!r}") from e
        if isinstance(prompt, _LogoddsQuery):
            try:
                top = choice["logprobs"]["content"][0]["top_logprobs"]
                return {str(t["token"]): float(t["logprob"]) for t in top}
            except (KeyError, IndexError, TypeError, ValueError) as e:
                raise LLMError(f"the server at {self.base_url} returned no top_logprobs for the first token "
                               "(llama_cpp.server needs --logits_all true)") from e
        if not isinstance(content, str):
            raise _Malformed(f"chat-completion content is not a string: {content!r}"[:200])
        return content

    def yes_no_logodds(self, prompts: Sequence[str], examples: Sequence[tuple[str, str]] = ()) -> list[float]:
        """``log P(yes) - log P(no)`` of the first reply token from the server's top-20 logprobs."""
        queries = [_LogoddsQuery(p, tuple(examples)) for p in prompts]
        tops = [self._ask(queries[0])] if len(queries) == 1 else list(self._pool.map(self._ask, queries))
        out = []
        for top in tops:
            value, missing = logodds_from_top(top)
            with self._lock:
                self.logprob_missing += missing
            out.append(value)
        return out

    def _ask(self, prompt: Any) -> Any:
        url = f"{self.base_url}/chat/completions"
        last: str = ""
        for attempt in range(self.max_retries + 1):
            with self._lock:
                self.requests += 1
            try:
                return self._once(prompt)
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code} {e.reason}"
                if e.code < 500 and e.code != 429:  # a client error will not fix itself
                    raise LLMError(f"LLM request to {url} failed: {last}: {e.read()[:200]!r}") from e
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, _Malformed) as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            with self._lock:
                self.failures += 1
            if attempt < self.max_retries:
                delay = self.backoff * 2**attempt * (1 + 0.25 * self._rng.random())
                log.warning("LLM request to %s failed (%s); retry %d/%d in %.2fs", url, last, attempt + 1,
                            self.max_retries, delay)
                time.sleep(delay)
        raise LLMError(f"LLM request to {url} failed after {self.max_retries + 1} attempt(s): {last}")

    def complete(self, prompts: Sequence[str]) -> list[str]:
        if len(prompts) == 1:
            return [self._ask(prompts[0])]
        return list(self._pool.map(self._ask, prompts))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __repr__(self) -> str:
        return f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r})"


@dataclass(frozen=True)
class _LogoddsQuery:
    """A ``yes_no_logodds`` request: the prompt after few-shot examples."""

    prompt: str
    examples: tuple[tuple[str, str], ...]


class _Malformed(Exception):
    """The server answered, but not with a chat completion."""
