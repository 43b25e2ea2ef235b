"""Reranking inside `Index.search`: candidate pool, both scores, timings, custom rerankers, fallback."""

from __future__ import annotations

import pytest

from semsearch import Index, OllamaReranker, RerankerTimeoutError
from semsearch.errors import ConfigError

TEXTS = [
    ("rice", "Rinse the rice, add water and simmer it covered for fifteen minutes."),
    ("train", "Train tickets can be bought at the station or online."),
    ("tea", "Green tea is steeped briefly in water below boiling."),
    ("bike", "Patch a flat bicycle tire by finding the puncture and gluing a patch."),
    ("mifan", "把米洗净，加水，小火煮十五分钟。"),
    ("stars", "Binoculars show the moons of Jupiter on a clear night."),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory, ollama_server_session):
    with Index.open(tmp_path_factory.mktemp("search-rerank"), ollama_host=ollama_server_session.url) as index:
        index.add_texts({"id": key, "text": text} for key, text in TEXTS)
        yield index


class Alphabetical:
    """A caller's own reranker: anything with `score(query, texts)` plugs in."""

    def score(self, query, texts):
        return [-ord(text[0]) for text in texts]


def test_rerank_true_uses_qwen3_reranker_on_the_index_host(index, ollama_server):
    result = index.search_detailed("how do I cook rice", k=2, rerank=True, rerank_top=6)
    assert result.reranked and result.rerank_fallback is None
    assert result.hits[0].path in ("rice", "mifan")
    for hit in result.hits:
        assert hit.score == hit.rerank_score and hit.retrieval_score is not None
    generate = [body for path, body in ollama_server.requests if path == "/api/generate"]
    assert len(generate) == len(TEXTS)  # every candidate, not just k
    assert generate[0]["model"] == "dengcao/Qwen3-Reranker-0.6B:Q8_0"
    assert result.timings.rerank > 0 and result.timings.total >= result.timings.rerank


def test_rerank_top_bounds_the_candidates_and_k_above_it_widens_them(index, ollama_server):
    index.search("rice", k=1, mode="vector", rerank=True, rerank_top=3)
    assert sum(1 for path, _ in ollama_server.requests if path == "/api/generate") == 3
    hits = index.search("rice", k=5, mode="vector", rerank=True, rerank_top=2)
    assert len(hits) == 5 and all(hit.rerank_score is not None for hit in hits)


def test_any_object_with_score_is_a_reranker(index):
    hits = index.search("water", k=6, mode="vector", rerank=Alphabetical(), rerank_top=6)
    firsts = [hit.text[0] for hit in hits]
    assert firsts == sorted(firsts) and firsts != [hit.text[0] for hit in index.search("water", k=6)]
    assert [hit.rank for hit in hits] == list(range(1, 7))


def test_without_rerank_hits_carry_only_the_retrieval_score(index):
    result = index.search_detailed("tea", k=3)
    assert not result.reranked and result.timings.rerank == 0
    assert all(hit.rerank_score is None and hit.retrieval_score == hit.score for hit in result.hits)
    assert set(result.hits[0].to_dict()) >= {"score", "retrieval_score", "rerank_score"}


def test_timeout_raises_or_falls_back_to_retrieval_order(index, ollama_server):
    plain = index.search("bicycle tire", k=3)
    with OllamaReranker(host=ollama_server.url, timeout=0.2) as slow:
        ollama_server.delay = 0.5
        with pytest.raises(RerankerTimeoutError):
            index.search("bicycle tire", k=3, rerank=slow)
        result = index.search_detailed("bicycle tire", k=3, rerank=slow, rerank_fallback=True)
    assert not result.reranked
    assert "did not answer within 0.2 s" in result.rerank_fallback
    assert [hit.chunk_id for hit in result.hits] == [hit.chunk_id for hit in plain]


def test_bad_rerank_top_is_a_config_error(index):
    with pytest.raises(ConfigError, match="rerank_top"):
        index.search("tea", rerank=Alphabetical(), rerank_top=0)
