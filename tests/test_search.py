"""Query → candidates → fusion → hits over a real SQLite store and real FAISS, with an in-process
embedder (no HTTP): modes and their scores, RRF order, filters that still return k, deleted and
changed documents."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from semsearch.errors import ConfigError
from semsearch.fusion import coverage, fuse, keyword_query
from semsearch.search import (
    Candidate,
    keyword_candidates,
    rrf,
    scale_fused,
    search,
    search_by_vector,
    search_detailed,
    vector_candidates,
)
from semsearch.store import Store
from semsearch.vectors import VectorIndex

from tests.helpers import HashingEmbedder, new_document

NOTES = {
    "tea/green": ("Green tea is brewed with water at eighty degrees.", {"lang": "en", "topic": "tea"}),
    "tea/black": ("Black tea is fully oxidised and brewed with boiling water.", {"lang": "en", "topic": "tea"}),
    "tea/lvcha": ("绿茶要用八十度的水冲泡。", {"lang": "zh", "topic": "tea"}),
    "coffee/espresso": ("Espresso forces hot water through finely ground coffee.", {"lang": "en", "topic": "coffee"}),
    "bike/tire": ("Fix a flat bicycle tire with a patch and glue.", {"lang": "en", "topic": "bike"}),
}


def vectors_of(store: Store, embedder: HashingEmbedder, kind: str = "flat") -> VectorIndex:
    return VectorIndex.build(kind, embedder.dimensions, store.iter_vectors, store.counts()[1])


@pytest.fixture
def notes(store, embedder):
    store.write_documents([new_document(key, [text], embedder, metadata=meta) for key, (text, meta) in NOTES.items()])
    return store, vectors_of(store, embedder), embedder


def paths(hits) -> list[str]:
    return [hit.path for hit in hits]


def test_rrf_puts_a_chunk_found_by_both_lists_above_one_found_by_one():
    vector = [Candidate(1, 0.9), Candidate(2, 0.8), Candidate(3, 0.7)]
    keyword = [Candidate(3, 12.0), Candidate(4, 9.0)]
    fused = rrf(vector, keyword)
    assert [c.chunk_id for c in fused] == [3, 1, 2, 4]  # 2 and 4 tie (both second): list order
    assert fused[0].score == pytest.approx(1 / 63 + 1 / 61)
    assert fused[1].score == pytest.approx(1 / 61)
    scaled = scale_fused(rrf(vector, [Candidate(1, 5.0)]), lists=2)
    assert scaled[0] == Candidate(1, pytest.approx(1.0))  # first in both lists
    assert scale_fused([Candidate(7, 1 / 61)], lists=2)[0].score == pytest.approx(0.5)


def test_vector_mode_ranks_by_cosine_and_hits_are_citable(notes):
    store, vectors, embedder = notes
    hits = search(store, vectors, embedder, "how is green tea brewed", k=3, mode="vector")
    assert paths(hits)[0] == "tea/green"
    assert [hit.rank for hit in hits] == [1, 2, 3]
    assert all(hit.score_kind == "cosine" and -1 <= hit.score <= 1 for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    top = hits[0]
    assert (top.text, top.line_start, top.metadata, top.is_file) == (NOTES["tea/green"][0], 1, NOTES["tea/green"][1],
                                                                     False)


def test_keyword_mode_ranks_by_bm25_and_needs_no_embedder(notes):
    store, vectors, embedder = notes
    embedder.calls.clear()
    hits = search(store, vectors, embedder, "绿茶", k=5, mode="keyword")
    assert paths(hits) == ["tea/lvcha"] and hits[0].score_kind == "bm25" and hits[0].score > 0
    assert embedder.calls == []


def test_hybrid_fuses_the_vector_and_keyword_lists_weighed_by_keyword_coverage(notes):
    store, vectors, embedder = notes
    query = "brewed with boiling water"
    vector_list = vector_candidates(vectors, embedder.embed([query], "query")[0], 50, None)
    keyword_list = keyword_candidates(store, keyword_query(query), 50, None)  # content terms only
    hits = search(store, vectors, embedder, query, k=4, mode="hybrid")
    best_keyword_text = store.chunks([keyword_list[0].chunk_id])[keyword_list[0].chunk_id].text
    expected = fuse(vector_list, keyword_list, coverage(query, best_keyword_text))
    assert [hit.chunk_id for hit in hits] == [c.chunk_id for c in expected][:4]
    assert paths(hits)[0] == "tea/black" and hits[0].score == pytest.approx(1.0)
    assert all(hit.score_kind == "fused" and 0 < hit.score <= 1 for hit in hits)


def test_filters_by_path_and_metadata_keep_only_matching_documents(notes):
    store, vectors, embedder = notes
    for mode in ("vector", "keyword", "hybrid"):
        hits = search(store, vectors, embedder, "water tea coffee", k=10, mode=mode, paths=["coffee/*", "bike/*"])
        assert set(paths(hits)) <= {"coffee/espresso", "bike/tire"} and "coffee/espresso" in paths(hits), mode
        zh = search(store, vectors, embedder, "绿茶 tea", k=10, mode=mode, where={"lang": "zh"})
        assert paths(zh) == ["tea/lvcha"], mode
    both = search(store, vectors, embedder, "water", k=10, where={"topic": ["tea", "coffee"], "lang": "en"})
    assert sorted(paths(both)) == ["coffee/espresso", "tea/black", "tea/green"]


@pytest.mark.parametrize("index_type", ["flat", "hnsw", "ivf"])
@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_k_hits_come_back_whenever_k_chunks_match_the_filter(store, embedder, index_type, mode):
    crowd = [new_document(f"tea/{i}", [f"tea tea tea note {i} about green tea"], embedder) for i in range(120)]
    few = [new_document(f"archive/{i}", [f"old tea receipt {i}, paper"], embedder) for i in range(4)]
    store.write_documents(crowd + few)
    vectors = vectors_of(store, embedder, index_type)
    unfiltered = search(store, vectors, embedder, "green tea note", k=4, mode=mode)
    assert not any(path.startswith("archive/") for path in paths(unfiltered))  # they lose without the filter
    hits = search(store, vectors, embedder, "green tea note", k=4, mode=mode, paths=["archive/*"])
    assert sorted(paths(hits)) == [f"archive/{i}" for i in range(4)]


def test_a_deleted_document_is_no_longer_returned(notes):
    store, vectors, embedder = notes
    doomed = store.document("tea/green", "text")
    stale_reader = vectors_of(store, embedder)  # a reader whose FAISS still holds the deleted vector
    result = store.delete_documents([doomed.id])
    vectors.remove(result.removed_ids)
    for index in (vectors, stale_reader):
        for mode in ("vector", "keyword", "hybrid"):
            hits = search(store, vectors=index, embedder=embedder, query="green tea eighty degrees", k=5, mode=mode)
            assert "tea/green" not in paths(hits) and hits, mode
            assert [hit.rank for hit in hits] == list(range(1, len(hits) + 1))


def test_min_score_drops_weak_hits_and_keeps_the_order(notes):
    store, vectors, embedder = notes
    everything = search(store, vectors, embedder, "green tea water", k=5)
    threshold = everything[1].score
    kept = search(store, vectors, embedder, "green tea water", k=5, min_score=threshold)
    assert [hit.chunk_id for hit in kept] == [hit.chunk_id for hit in everything if hit.score >= threshold]
    assert 2 <= len(kept) < len(everything)


def test_a_hit_from_a_file_changed_since_indexing_is_marked_stale(store, embedder, tmp_path):
    files = {}
    for name, text in (("fresh.txt", "tea leaves in spring"), ("edited.txt", "tea leaves in autumn")):
        file = tmp_path / name
        file.write_text(text, encoding="utf-8")
        stat = file.stat()
        doc = new_document(store.file_key(file), [text], embedder, kind="file")
        store.write_documents([replace(doc, size=stat.st_size, mtime_ns=stat.st_mtime_ns)])
        files[name] = file
    files["edited.txt"].write_text("coffee beans now, a longer text", encoding="utf-8")
    hits = search(store, vectors_of(store, embedder), embedder, "tea leaves", k=2)
    assert {hit.path: hit.stale for hit in hits} == {str(files["fresh.txt"]): False, str(files["edited.txt"]): True}


def test_search_by_vector_matches_vector_mode_and_checks_dimensions(notes):
    store, vectors, embedder = notes
    query = embedder.embed(["bicycle tire patch"], "query")[0]
    by_vector = search_by_vector(store, vectors, query * 3.0, k=3)  # normalised on the way in
    assert [h.chunk_id for h in by_vector] == [h.chunk_id for h in search(store, vectors, embedder,
                                                                          "bicycle tire patch", k=3, mode="vector")]
    with pytest.raises(ConfigError, match="query vector has 8 dimensions; the index has 256"):
        search_by_vector(store, vectors, np.ones(8, np.float32))


@pytest.mark.parametrize(("options", "message"), [
    ({"mode": "fuzzy"}, "unknown search mode 'fuzzy'"),
    ({"k": 0}, "k must be at least 1"),
    ({"query": "   "}, "the query is empty"),
])
def test_bad_requests_are_config_errors(notes, options, message):
    store, vectors, embedder = notes
    query = options.pop("query", "tea")
    with pytest.raises(ConfigError, match=message):
        search_detailed(store, vectors, embedder, query, **options)
