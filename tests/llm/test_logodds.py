"""Yes/no log-odds from next-token probabilities: the local llama.cpp backend (full
distribution, KV-cache reuse), the OpenAI-compatible backend (top_logprobs) against the real
llama.cpp server, the on-disk cache, and backends that expose no probabilities."""

from __future__ import annotations

import json
import math

import pytest

from rewardlab.llm import CachedBackend, LLMError, ScriptedBackend, parse_yes_no
from rewardlab.llm.base import logodds_from_top
from rewardlab.llm.openai import OpenAIBackend

SHOTS = [("Is fire hot? Answer yes or no.", "yes"), ("Is ice hot? Answer yes or no.", "no")]
QUESTIONS = ["Is the sun hot? Answer yes or no.", "Is snow hot? Answer yes or no.",
             "Is lava hot? Answer yes or no.", "Is a glacier hot? Answer yes or no."]


@pytest.fixture(scope="module")
def local():
    pytest.importorskip("llama_cpp", reason="needs llama-cpp-python (the llm extra)")
    from rewardlab.llm.local import LocalBackend

    b = LocalBackend(max_tokens=1)
    yield b
    b.close()


@pytest.mark.slow  # a real model on the CPU
def test_local_logodds_agree_with_greedy_generation_and_reuse_the_prefix(local):
    from rewardlab.llm.base import fewshot_messages

    values = local.yes_no_logodds(QUESTIONS[:3], SHOTS)
    first_prompt = len(local._chat_prompt(fewshot_messages(QUESTIONS[0], SHOTS)))
    assert len(values) == 3 and all(abs(v) < 50 for v in values)
    # the few-shot prefix is evaluated once: the next two prompts run only their own tokens
    assert local.tokens_evaluated < first_prompt + 2 * 40
    # from an empty KV cache the same number comes back, up to llama.cpp's evaluation path
    # (one batch vs one token at a time differ by ~0.1 in log-odds: 0.08 measured here)
    local._llm.reset()
    assert local.yes_no_logodds(QUESTIONS[1:2], SHOTS)[0] == pytest.approx(values[1], abs=0.15)
    # where greedy decoding's first word is yes or no, the log-odds have the same sign
    for q, v in zip(QUESTIONS[:2], values[:2], strict=True):
        res = local._llm.create_chat_completion(messages=fewshot_messages(q, SHOTS), max_tokens=1,
                                                temperature=0.0, top_k=1)
        word = parse_yes_no(res["choices"][0]["message"]["content"] or "")
        if word is not None and abs(v) > 0.2:
            assert word == (v > 0), (q, v, res["choices"][0]["message"]["content"])


@pytest.mark.slow  # a real model on the CPU
def test_cache_stores_logodds(local, tmp_path):
    b = CachedBackend(local, tmp_path / "c.sqlite")
    first = b.yes_no_logodds(QUESTIONS[:2], SHOTS)
    assert b.yes_no_logodds(QUESTIONS[:2], SHOTS) == first and b.hits == 2
    b.yes_no_logodds(QUESTIONS[:1], SHOTS[:1])  # other shots: another key
    assert b.misses == 3


def test_logodds_need_a_backend_that_exposes_probabilities():
    with pytest.raises(LLMError, match="'scripted' backend exposes no token log-probabilities"):
        ScriptedBackend().yes_no_logodds(["q"])


def test_logodds_from_top_clips_a_missing_word():
    value, missing = logodds_from_top({" Yes": -0.2, "yes": -2.0, "Maybe": -5.0})
    assert missing == 1 and value == pytest.approx(math.log(math.exp(-0.2) + math.exp(-2.0)) + 5.0)
    with pytest.raises(LLMError, match="no top_logprobs"):
        logodds_from_top({})


def test_openai_logodds_from_a_scripted_server(chat_server):
    top = [{"token": "No", "logprob": -0.1}, {"token": " yes", "logprob": -2.5}]
    body = {"choices": [{"message": {"role": "assistant", "content": "No"},
                         "logprobs": {"content": [{"token": "No", "logprob": -0.1, "top_logprobs": top}]}}]}
    chat_server.plan.append(("raw", json.dumps(body).encode()))
    b = OpenAIBackend(base_url=chat_server.url, max_retries=0)
    assert b.yes_no_logodds(["q"]) == [pytest.approx(-2.4)]
    chat_server.plan.append(("ok", "yes"))  # a server that sends no logprobs
    with pytest.raises(LLMError, match="returned no top_logprobs.*--logits_all true"):
        b.yes_no_logodds(["q"])


@pytest.mark.slow  # a real model on the CPU
def test_openai_logodds_match_the_local_model_through_llama_server(llama_logits_server, local):
    b = OpenAIBackend(base_url=llama_logits_server.url, timeout=120, max_retries=1)
    remote = b.yes_no_logodds(QUESTIONS[:2], SHOTS)
    near = local.yes_no_logodds(QUESTIONS[:2], SHOTS)
    print(remote, near, b.logprob_missing)
    assert b.logprob_missing == 0  # both words are in the top 20 for these questions
    assert remote == pytest.approx(near, abs=0.15)  # the same model and prompt, over HTTP (see above)
