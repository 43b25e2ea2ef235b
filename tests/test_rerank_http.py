"""The /v1/rerank provider against a real Jina/Cohere-shaped rerank server on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest

from semsearch.errors import RerankerError, RerankerTimeoutError, RerankerUnavailableError
from semsearch.rerank import HttpReranker
from semsearch.rerank.http import rerank_endpoint
from tests.rerank_server import RerankTestServer

TEXTS = ["Train tickets can be bought at the station or online.",
         "Rinse the rice, add water and simmer it covered for fifteen minutes.",
         "把米洗净，加水，小火煮十五分钟。"]


@pytest.fixture(scope="module")
def rerank_server():
    with RerankTestServer(api_key="s3cret") as server:
        yield server


def test_scores_come_back_in_input_order_with_relevant_texts_higher(rerank_server):
    with HttpReranker(rerank_server.url, model="bge-reranker-v2-m3", api_key="s3cret") as reranker:
        train, rice, chinese_rice = reranker.score("how do I cook rice", TEXTS)
    assert rice > train and chinese_rice > train
    path, body, headers = rerank_server.requests[-1]
    assert path == "/v1/rerank"
    assert body == {"model": "bge-reranker-v2-m3", "query": "how do I cook rice", "documents": TEXTS, "top_n": 3}
    assert headers["Authorization"] == "Bearer s3cret"


def test_api_key_from_the_environment_and_a_missing_key(rerank_server, monkeypatch):
    monkeypatch.setenv("SEMSEARCH_RERANK_API_KEY", "s3cret")
    with HttpReranker(rerank_server.url + "/v1/") as reranker:
        assert len(reranker.score("rice", TEXTS)) == 3
    assert "model" not in rerank_server.requests[-1][1]
    monkeypatch.delenv("SEMSEARCH_RERANK_API_KEY")
    with HttpReranker(rerank_server.url) as reranker:
        with pytest.raises(RerankerError, match="refused the request \\(401: Invalid API Key\\).*--rerank-api-key"):
            reranker.score("rice", TEXTS)


def test_endpoint_forms():
    assert rerank_endpoint("http://h:8080") == "http://h:8080/v1/rerank"
    assert rerank_endpoint("http://h:8080/v1/") == "http://h:8080/v1/rerank"
    assert rerank_endpoint("http://h:8080/rerank") == "http://h:8080/rerank"


def test_wrong_endpoint_timeout_and_unreachable(rerank_server):
    with HttpReranker(rerank_server.url + "/api/other", api_key="s3cret", backoff=0.0) as reranker:
        with pytest.raises(RerankerError, match="is not a rerank endpoint"):
            reranker.score("rice", TEXTS)
    rerank_server.delay = 0.5
    try:
        with HttpReranker(rerank_server.url, api_key="s3cret", timeout=0.1) as reranker:
            with pytest.raises(RerankerTimeoutError, match="did not answer within 0.1 s"):
                reranker.score("rice", TEXTS)
    finally:
        rerank_server.delay = 0.0
    with HttpReranker("http://127.0.0.1:9", backoff=0.0) as reranker:
        with pytest.raises(RerankerUnavailableError, match="cannot reach the reranker"):
            reranker.score("rice", TEXTS)


@pytest.mark.parametrize("answer", [
    {"results": [{"index": 0, "relevance_score": 0.5}]},  # one document missing
    {"data": []},
    {"results": [{"index": 7, "relevance_score": 0.5}, {"index": 1, "relevance_score": 0.1}]},
])
def test_malformed_answers_are_clear_errors(answer):
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    with HttpReranker("http://rerank.test", transport=transport) as reranker:
        with pytest.raises(RerankerError, match="rerank.test/v1/rerank"):
            reranker.score("q", ["a", "b"])


def test_bare_list_with_score_field_is_accepted():
    answer = [{"index": 1, "score": 2.5}, {"index": 0, "score": -1.0}]  # TEI's native /rerank shape
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    with HttpReranker("http://rerank.test/rerank", transport=transport) as reranker:
        assert reranker.score("q", ["a", "b"]) == [-1.0, 2.5]
