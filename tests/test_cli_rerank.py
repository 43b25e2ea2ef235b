"""`semsearch search --rerank` through real subprocesses: reordering, both scores, every failure mode."""

from __future__ import annotations

import json
import shutil

import pytest

from semsearch import Index
from tests.helpers import DATA
from tests.rerank_server import RerankTestServer
from tests.helpers import assert_one_clean_line, run

QUERY = "红烧肉怎么炒糖色"
EXPECTED = "cooking/hongshao-rou.md"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, ollama_server_session):
    """A copy of data/ indexed once for this module (searches only read it)."""
    workdir = tmp_path_factory.mktemp("rerank")
    shutil.copytree(DATA, workdir / "data")
    with Index.open(workdir / ".semsearch", ollama_host=ollama_server_session.url) as index:
        index.index([workdir / "data"])
    return workdir


def search_json(indexed, host, *args):
    return json.loads(run(["search", "--json", *args], cwd=indexed, host=host).stdout)


def test_rerank_reorders_candidates_and_json_carries_both_scores(indexed, ollama_server):
    host = ollama_server.url
    plain = search_json(indexed, host, "--mode", "hybrid", "-k", "40", QUERY)
    reranked = search_json(indexed, host, "--mode", "hybrid", "-k", "5", "--rerank", "--rerank-top", "40", QUERY)
    assert len(reranked) == 5
    retrieval = {hit["chunk_id"]: hit["score"] for hit in plain}
    for hit in reranked:
        assert hit["score"] == hit["rerank_score"]
        assert 0.0 <= hit["rerank_score"] <= 1.0
        assert hit["retrieval_score"] == pytest.approx(retrieval[hit["chunk_id"]])
    scores = [hit["rerank_score"] for hit in reranked]
    assert scores == sorted(scores, reverse=True)
    assert [hit["rank"] for hit in reranked] == [1, 2, 3, 4, 5]
    # The fused order is not the reranker's: the top five change order or membership.
    assert [hit["chunk_id"] for hit in reranked] != [hit["chunk_id"] for hit in plain[:5]]
    assert reranked[0]["path"] == f"data/{EXPECTED}"
    generate = [body for path, body in ollama_server.requests if path == "/api/generate"]
    assert len(generate) == 40
    assert all(plain_hit["rerank_score"] is None for plain_hit in plain)
    assert all(plain_hit["retrieval_score"] == plain_hit["score"] for plain_hit in plain)


def test_human_output_prints_both_scores(indexed, ollama_server):
    out = run(["search", "--rerank", "--rerank-top", "10", "-k", "2", QUERY], cwd=indexed,
              host=ollama_server.url).stdout
    first = out.splitlines()[0]
    assert "rerank 0." in first and "retrieval 0." in first and f"data/{EXPECTED}:" in first


def test_rerank_through_a_v1_rerank_server(indexed, ollama_server):
    with RerankTestServer(api_key="k") as server:
        hits = json.loads(run(["search", "--json", "-k", "3", "--rerank-url", server.url, "--rerank-top", "40",
                               "--mode", "keyword", "how was paper invented 纸"], cwd=indexed,
                              host=ollama_server.url, env={"SEMSEARCH_RERANK_API_KEY": "k"}).stdout)
        (path, body, _), = server.requests
    assert path == "/v1/rerank" and len(body["documents"]) == body["top_n"] > 3  # every keyword candidate
    # A common word puts another document first in the keyword list; the reranker brings the right one up.
    assert hits[0]["path"] == "data/history/papermaking-and-printing.md"
    plain = search_json(indexed, ollama_server.url, "--mode", "keyword", "-k", "1", "how was paper invented 纸")
    assert plain[0]["path"] != hits[0]["path"]
    assert all(hit["score"] == hit["rerank_score"] is not None for hit in hits)
    assert [hit["score"] for hit in hits] == sorted((hit["score"] for hit in hits), reverse=True)


def test_reranker_not_pulled_names_the_pull_command(indexed, ollama_server):
    result = run(["search", "--rerank-model", "dengcao/Qwen3-Reranker-4B:Q4_K_M", QUERY], cwd=indexed,
                 host=ollama_server.url, check=False)
    assert_one_clean_line(result, "not pulled", "`ollama pull dengcao/Qwen3-Reranker-4B:Q4_K_M`")


def test_model_that_cannot_generate_points_to_the_v1_rerank_provider(indexed, ollama_server):
    result = run(["search", "--rerank-model", "qwen3-embedding:0.6b", QUERY], cwd=indexed,
                 host=ollama_server.url, check=False)
    assert_one_clean_line(result, "qwen3-embedding:0.6b does not support generate", "/v1/rerank", "--rerank-url")


def test_ollama_too_old_for_logprobs_says_which_version_is_needed(indexed, ollama_server):
    ollama_server.version = "0.12.3"
    result = run(["search", "--rerank", QUERY], cwd=indexed, host=ollama_server.url, check=False)
    assert_one_clean_line(result, "version 0.12.3", "needs version 0.12.11 or newer")


def test_timeout_fails_the_query_or_falls_back_with_a_note(indexed, ollama_server):
    ollama_server.delay = 0.6  # also slows the query embedding, which has its own, longer timeout
    args = ["search", "--json", "--rerank", "--rerank-timeout", "0.2", "-k", "3", QUERY]
    failed = run(args, cwd=indexed, host=ollama_server.url, check=False)
    assert_one_clean_line(failed, "did not answer within 0.2 s", "--rerank-fallback")

    fallback = run([*args, "--rerank-fallback"], cwd=indexed, host=ollama_server.url)
    hits = json.loads(fallback.stdout)
    ollama_server.delay = 0.0
    plain = search_json(indexed, ollama_server.url, "-k", "3", QUERY)
    assert [hit["chunk_id"] for hit in hits] == [hit["chunk_id"] for hit in plain]
    assert all(hit["rerank_score"] is None and hit["score"] == hit["retrieval_score"] for hit in hits)
    assert "reranking skipped, results are in retrieval order" in fallback.stderr
    assert "did not answer within 0.2 s" in fallback.stderr
