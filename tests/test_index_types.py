"""FAISS index types end to end: conversion by `rebuild`, filtered search, HNSW deletions, `auto`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsearch import ConfigError, Index, TextItem
from semsearch.vectors import RebuildPolicy, VectorIndex

from tests.helpers import EXAMPLE_QUERIES
from tests.helpers import run

ANN_TYPES = ("hnsw", "hnsw-sq8", "ivf", "ivf-sq8")


def _ranked(index: Index) -> list[list[tuple[int, float]]]:
    return [[(hit.chunk_id, round(hit.score, 5)) for hit in index.search(query, k=8)] for query, _ in EXAMPLE_QUERIES]


def test_flat_to_hnsw_to_flat_keeps_exact_results_without_embedding(tmp_path, corpus, ollama_server):
    path = tmp_path / "idx"
    with Index.open(path, ollama_host=ollama_server.url, index_type="flat") as index:
        index.index([corpus])
        before = _ranked(index)
    requests = len(ollama_server.requests)
    converted = run(["rebuild", "--index-type", "hnsw", "-i", str(path), "--json"], cwd=tmp_path,
                    host=ollama_server.url)
    assert '"index_type": "hnsw"' in converted.stdout
    status = run(["status", "-i", str(path)], cwd=tmp_path, host=ollama_server.url).stdout
    assert "Index type:        hnsw" in status
    back = run(["rebuild", "--index-type", "flat", "-i", str(path)], cwd=tmp_path, host=ollama_server.url)
    assert "Rebuilt vectors.faiss (flat)" in back.stdout
    assert len(ollama_server.requests) == requests  # converting never calls the embedder
    with Index.open(path, ollama_host=ollama_server.url) as index:
        assert index.status().faiss_type == "flat" and index.status().in_sync
        assert _ranked(index) == before


@pytest.mark.parametrize("kind", ANN_TYPES)
def test_every_type_finds_the_right_document_and_honours_filters(tmp_path, corpus, ollama_server, kind):
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url, index_type=kind) as index:
        index.index([corpus])
        status = index.status()
        assert (status.index_type, status.faiss_type) == (kind, kind)
        for query, expected in EXAMPLE_QUERIES:
            assert Path(index.search(query, k=3)[0].path).relative_to(corpus.resolve()).as_posix() == expected
        # A filter matching few chunks still yields k hits when at least k are allowed.
        allowed = [hit for hit in index.search("tea", k=50, paths=["data/tea/*", "data/coffee/*"])]
        assert allowed and all("/tea/" in hit.path or "/coffee/" in hit.path for hit in allowed)
        total = len(allowed)
        hits = index.search("bicycle tire", k=min(3, total), paths=["data/tea/*", "data/coffee/*"])
        assert len(hits) == min(3, total)
        assert all("/tea/" in hit.path or "/coffee/" in hit.path for hit in hits)


def test_ann_search_parameters_are_overridable(tmp_path, corpus, ollama_server):
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url, index_type="ivf") as index:
        index.index([corpus])
        wide = index.search("types of Chinese tea", k=5, nprobe=10_000)
        assert [h.chunk_id for h in wide] == [h.chunk_id for h in index.search("types of Chinese tea", k=5)]
    result = run(["search", "types of Chinese tea", "-i", str(tmp_path / "idx"), "--nprobe", "1", "--json"],
                 cwd=tmp_path, host=ollama_server.url)
    assert result.returncode == 0 and '"chunk_id"' in result.stdout


def test_search_vector_matches_text_search(tmp_path, corpus, ollama_server):
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url, index_type="hnsw") as index:
        index.index([corpus])
        query = "how to fix a flat bicycle tire"
        vector = index.embedder().embed([query], "query")[0]
        by_text = index.search(query, k=5, mode="vector")
        by_vector = index.search_vector(vector * 3.0, k=5)  # normalised on the way in
        assert [h.chunk_id for h in by_vector] == [h.chunk_id for h in by_text]
        with pytest.raises(ConfigError, match="dimensions"):
            index.search_vector(vector[:10], k=5)


def test_hnsw_deletions_are_hidden_persisted_and_rebuilt_past_the_threshold(tmp_path, ollama_server):
    texts = [TextItem(id=f"t{i}", text=f"note {i}: the quick brown fox number {i} jumps") for i in range(30)]
    path = tmp_path / "idx"
    with Index.open(path, ollama_host=ollama_server.url, index_type="hnsw") as index:
        index.add_texts(texts)
        assert index.delete_texts(["t0", "t1", "t2"]) == 3
        assert index.status().tombstones == 3
    with Index.open(path, ollama_host=ollama_server.url) as index:  # tombstones survive reopening
        status = index.status()
        assert status.tombstones == 3 and status.chunks == 27 and status.in_sync
        hits = index.search("the quick brown fox number 1 jumps", k=30)
        assert len(hits) == 27 and not {"t0", "t1", "t2"} & {hit.path for hit in hits}
        filtered = index.search_vector(index.embedder().embed(["fox"], "query")[0], k=30)
        assert len(filtered) == 27
    with Index.open(path, ollama_host=ollama_server.url, rebuild_policy=RebuildPolicy(tombstone_min=2)) as index:
        index.delete_texts(["t3", "t4", "t5"])  # 6 of 30 > 10 %: rebuilt from SQLite
        status = index.status()
        assert status.tombstones == 0 and status.chunks == 24 and status.faiss_vectors == 24 and status.in_sync


def test_auto_switches_from_flat_to_hnsw_as_the_index_grows(tmp_path, ollama_server):
    policy = RebuildPolicy(auto_flat_max_elements=20 * 384)
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url, rebuild_policy=policy) as index:
        index.add_texts([TextItem(id=f"a{i}", text=f"short note {i}") for i in range(10)])
        assert (index.status().index_type, index.status().faiss_type) == ("auto", "flat")
        index.add_texts([TextItem(id=f"b{i}", text=f"another note {i}") for i in range(15)])
        status = index.status()
        assert (status.index_type, status.faiss_type, status.faiss_vectors) == ("auto", "hnsw", 25)
        assert len(index.search("another note 3", k=25)) == 25


def test_unknown_index_type_is_a_clear_error(tmp_path, ollama_server):
    with pytest.raises(ConfigError, match="unknown index type 'annoy'"):
        Index.open(tmp_path / "idx", ollama_host=ollama_server.url, index_type="annoy")
    result = run(["index", str(tmp_path), "--index-type", "annoy"], cwd=tmp_path, host=ollama_server.url, check=False)
    assert result.returncode == 2


def test_memory_mapped_index_refuses_writes_instead_of_aborting(tmp_path):
    vectors = np.eye(8, dtype=np.float32)
    index = VectorIndex.build("hnsw", 8, lambda: iter([(np.arange(8), vectors)]), 8)
    index.save(tmp_path / "v.faiss")
    mapped = VectorIndex.load(tmp_path / "v.faiss", 8, "hnsw", mmap=True)
    assert mapped is not None and mapped.mapped
    assert mapped.search(vectors[3], 1)[1].tolist() == [3]
    with pytest.raises(RuntimeError, match="memory-mapped"):
        mapped.add(np.array([9]), vectors[:1])
