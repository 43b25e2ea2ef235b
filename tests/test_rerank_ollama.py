"""The Ollama reranker: the exact request (MockTransport), the score math, and real HTTP to the test server."""

from __future__ import annotations

import json
import math
import time

import httpx
import pytest

from semsearch.chunking import estimate_tokens
from semsearch.errors import (
    RerankerModelNotFoundError,
    RerankerTimeoutError,
    RerankerUnavailableError,
    RerankerUnsupportedError,
)
from semsearch.rerank import DEFAULT_RERANK_MODEL, OllamaReranker, yes_probability
from semsearch.rerank.ollama import ABSENT_LOGPROB

# Spelled out here independently of semsearch.rerank.prompts, from the Qwen3-Reranker model card.
GOLDEN_PROMPT = (
    "<|im_start|>system\n"
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided. "
    "Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n"
    "<|im_start|>user\n"
    "<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n"
    "<Query>: 红烧肉怎么炒糖色\n"
    "<Document>: 冰糖小火慢炒至枣红色。<|im_end|>\n"
    "<|im_start|>assistant\n"
    "<think>\n\n</think>\n\n"
)


def logprob_entry(token: str, logprob: float, top: list[tuple[str, float]]) -> dict:
    return {"token": token, "logprob": logprob,
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top]}


class Recorder:
    """Answers /api/generate with scripted logprobs and records every request body (raw bytes too)."""

    def __init__(self, top=(("yes", math.log(0.8)), ("no", math.log(0.2))), status=None, body=None):
        self.top = list(top)
        self.status = status
        self.body = body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status is not None:
            return httpx.Response(self.status, json=self.body)
        first = self.top[0] if self.top else ("x", -1.0)
        return httpx.Response(200, json={
            "model": DEFAULT_RERANK_MODEL, "response": first[0], "done": True, "done_reason": "length",
            "logprobs": [logprob_entry(first[0], first[1], self.top)],
        })


def mock_reranker(recorder: Recorder, **kwargs) -> OllamaReranker:
    return OllamaReranker(host="http://ollama.test:11434", transport=httpx.MockTransport(recorder), backoff=0.0,
                          **kwargs)


def test_request_for_one_pair_is_the_model_card_prompt_byte_for_byte():
    recorder = Recorder()
    with mock_reranker(recorder) as reranker:
        scores = reranker.score("红烧肉怎么炒糖色", ["冰糖小火慢炒至枣红色。"])
    assert scores == [pytest.approx(0.8)]
    (request,) = recorder.requests
    assert (request.method, str(request.url)) == ("POST", "http://ollama.test:11434/api/generate")
    body = json.loads(request.content)
    assert body["prompt"].encode("utf-8") == GOLDEN_PROMPT.encode("utf-8")
    assert body == {
        "model": "dengcao/Qwen3-Reranker-0.6B:Q8_0",
        "prompt": GOLDEN_PROMPT,
        "raw": True,
        "stream": False,
        "options": {"num_predict": 1, "temperature": 0},
        "logprobs": True,
        "top_logprobs": 20,
    }


def test_num_ctx_and_keep_alive_are_sent_only_when_set():
    recorder = Recorder()
    with mock_reranker(recorder, num_ctx=8192, keep_alive="10m") as reranker:
        reranker.score("q", ["d"])
    body = json.loads(recorder.requests[0].content)
    assert body["options"] == {"num_predict": 1, "temperature": 0, "num_ctx": 8192}
    assert body["keep_alive"] == "10m"


@pytest.mark.parametrize(("candidates", "expected"), [
    ([("yes", math.log(0.6)), ("no", math.log(0.3))], 0.6 / 0.9),
    ([("no", math.log(0.9)), ("yes", math.log(0.05))], 0.05 / 0.95),
    # variants: the most likely spelling of each answer counts
    ([(" yes", math.log(0.5)), ("Yes", math.log(0.3)), ("NO", math.log(0.1)), (" no", math.log(0.05))], 0.5 / 0.6),
    ([("Yes", math.log(0.7)), ("\n", math.log(0.2)), ("No ", math.log(0.1))], 0.7 / 0.8),
])
def test_score_is_p_yes_over_p_yes_plus_p_no(candidates, expected):
    assert yes_probability(candidates) == pytest.approx(expected)


def test_an_absent_answer_counts_as_very_unlikely():
    assert yes_probability([("yes", math.log(0.01)), ("The", math.log(0.9))]) > 0.999999
    assert yes_probability([("no", math.log(0.01)), ("The", math.log(0.9))]) < 1e-6
    assert yes_probability([("The", -0.1)]) == pytest.approx(0.5)
    assert yes_probability([("yes", ABSENT_LOGPROB - 50)]) < 1e-6  # stable for tiny logprobs


def test_variants_in_the_response_are_matched(ollama_server):
    recorder = Recorder(top=[("Yes", math.log(0.5)), (" yes", math.log(0.2)), (" No", math.log(0.25))])
    with mock_reranker(recorder) as reranker:
        assert reranker.score("q", ["d"]) == [pytest.approx(0.5 / 0.75)]


def test_long_document_is_cut_so_the_prompt_fits_the_context():
    recorder = Recorder()
    long_document = "the sentence goes on and on " * 2000 + "THE END"
    with mock_reranker(recorder) as reranker:
        reranker.score("q", [long_document])
        prompt = json.loads(recorder.requests[0].content)["prompt"]
        assert estimate_tokens(prompt) <= 4096 // 2
        assert "THE END" not in prompt and prompt.endswith("<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
        assert reranker.prompt("q", "short document") == reranker.prompt("q", "short document")
        assert "<Document>: short document<|im_end|>" in reranker.prompt("q", "short document")


# -- real HTTP to the Ollama-protocol test server --------------------------------------------

def test_relevant_passages_score_higher(ollama_host):
    texts = ["Rinse the rice, add water and simmer it covered for fifteen minutes.",
             "Train tickets can be bought at the station or online.",
             "把米洗净，加水，小火煮十五分钟。"]
    with OllamaReranker(host=ollama_host, timeout=10) as reranker:
        rice, train, chinese_rice = reranker.score("how do I cook rice", texts)
    assert 0.0 <= train < 0.5 < rice <= 1.0
    assert chinese_rice > train


def test_thirty_candidates_are_scored_concurrently(ollama_server):
    texts = ["Green tea is steeped briefly in water below boiling.", "Pour-over coffee needs a gooseneck kettle.",
             "Black tea takes boiling water and a longer steep."] * 10
    with OllamaReranker(host=ollama_server.url, concurrency=4, timeout=60) as reranker:
        # Embedding is the emulation's cost, not Ollama's: warm the server's e5 memo first so the
        # timed call measures the requests' overlap, which is what the delay stands for.
        reranker.score("tea", texts)
        ollama_server.delay = 0.2
        started = time.perf_counter()
        scores = reranker.score("tea", texts)
        elapsed = time.perf_counter() - started
    assert len(scores) == 30
    generate_requests = [body for path, body in ollama_server.requests if path == "/api/generate"]
    assert len(generate_requests) == 60
    serial = 30 * 0.2
    assert elapsed < 0.4 * serial, f"{elapsed:.2f} s for 30 requests at 0.2 s each with concurrency 4"


def test_transient_failures_are_retried(ollama_server):
    with OllamaReranker(host=ollama_server.url, backoff=0.0) as reranker:
        ollama_server.fail_next, ollama_server.fail_status = 1, 503
        ollama_server.drop_next = 1
        assert len(reranker.score("tea", ["green tea", "black tea"])) == 2


def test_failures_raise_their_own_errors(ollama_server):
    with OllamaReranker("no-such-reranker", host=ollama_server.url) as reranker:
        with pytest.raises(RerankerModelNotFoundError, match="ollama pull no-such-reranker"):
            reranker.score("q", ["d"])
    with OllamaReranker("qwen3-embedding:0.6b", host=ollama_server.url) as reranker:
        with pytest.raises(RerankerUnsupportedError, match="does not support generate.*--rerank-url"):
            reranker.score("q", ["d"])
    ollama_server.version = "0.12.10"
    with OllamaReranker(host=ollama_server.url) as reranker:
        with pytest.raises(RerankerUnsupportedError, match=r"version 0\.12\.10.*0\.12\.11 or newer"):
            reranker.score("q", ["d"])
    ollama_server.version = "0.13.0"
    ollama_server.delay = 1.0
    with OllamaReranker(host=ollama_server.url, timeout=0.2) as reranker:
        started = time.perf_counter()
        with pytest.raises(RerankerTimeoutError, match="did not answer within 0.2 s"):
            reranker.score("q", ["d1", "d2", "d3"])
        assert time.perf_counter() - started < 0.9  # timeouts are not retried
    ollama_server.delay = 0.0
    with OllamaReranker(host="http://127.0.0.1:9", backoff=0.0) as reranker:
        with pytest.raises(RerankerUnavailableError, match="cannot reach Ollama at http://127.0.0.1:9"):
            reranker.score("q", ["d"])
