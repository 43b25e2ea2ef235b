"""Hybrid search leaves out of its keyword (FTS5) query the terms found in half the chunks or
more (their idf is ~0, and ranking one scores most of the index). That may not change what a user
gets: filters and k kept, bm25 order of the remaining matches kept, and a term that becomes common
(or rare) is treated as such after the index changes, from this connection or another.
No HTTP: a deterministic stand-in embedder gives every text a vector from its words."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from semsearch import Index
from semsearch.embed import EmbedderInfo, preset_for_model
from semsearch import store as store_module
from semsearch.store import DB_NAME, Store

DIMENSIONS = 32
MODEL = "qwen3-embedding:0.6b"
TOPICS = ["harbour", "glacier", "orchard", "volcano", "lantern", "meadow", "canyon", "reef"]


class WordVectors:
    """A unit vector per text: the sum of a fixed random vector per word (deterministic)."""

    def info(self) -> EmbedderInfo:
        return EmbedderInfo("ollama", MODEL, DIMENSIONS, 32768, preset_for_model(MODEL))

    def embed(self, texts, kind):
        rows = []
        for text in texts:
            total = np.zeros(DIMENSIONS, dtype=np.float32)
            for word in text.lower().split():
                seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
                total += np.random.default_rng(seed).standard_normal(DIMENSIONS).astype(np.float32)
            rows.append(total / (np.linalg.norm(total) or 1.0))
        return np.stack(rows)


def text(i: int) -> str:
    # "report" is in every chunk (a term FTS5 gives an IDF of ~0); each topic word in a share.
    words = ["report", TOPICS[i % len(TOPICS)], TOPICS[(i * 3) % len(TOPICS)], f"item{i}"]
    return " ".join(words + [TOPICS[(i * 5) % len(TOPICS)]] * (i % 3))


@pytest.fixture
def index(tmp_path, monkeypatch):
    # Common terms are skipped from 10,000 chunks on; these 120 stand in for such an index.
    monkeypatch.setattr(store_module, "SKIP_COMMON_MIN_CHUNKS", 100)
    with Index.open(tmp_path / "idx", embedder=WordVectors(), index_type="flat") as opened:
        opened.add_texts([{"id": f"t{i:03d}", "text": text(i), "metadata": {"group": str(i % 4)}}
                          for i in range(120)])
        yield opened


def summary(hits):
    return [(h.chunk_id, round(h.score, 12)) for h in hits]


QUERIES = ["harbour glacier report", "the orchard", "lantern in the canyon reef", "item7 volcano"]
OPTIONS = [{"k": 5}, {"k": 12, "where": {"group": "1"}}, {"k": 3, "paths": ["t01*"]}]


@pytest.mark.parametrize("options", OPTIONS)
def test_hybrid_with_filters_still_gives_k_hits_from_the_allowed_chunks(index, options):
    for query in QUERIES:
        hits = index.search(query, mode="hybrid", **options)
        assert len(hits) == options["k"]  # a filter matching at least k chunks yields k
        if "where" in options:
            assert all(h.metadata["group"] == "1" for h in hits)
        if "paths" in options:
            assert all(h.path.startswith("t01") for h in hits)


def test_terms_in_half_the_chunks_or_more_are_skipped_keeping_the_order_of_the_rest(index):
    store = Store(index.path / DB_NAME)
    full = store.keyword_search("report glacier", 50)
    pruned = store.keyword_search("report glacier", 50, skip_common=True)
    glacier = [cid for cid, _ in store.keyword_search("glacier", 50)]
    # Only chunks holding the rare term remain, in the order the full query ranked them.
    assert [cid for cid, _ in pruned] == [cid for cid, _ in full if cid in set(glacier)]
    assert len(full) == 50 and len(pruned) == len(glacier) < 50
    # A query of only the common term has no keyword candidates then (it ranks nothing).
    assert store.keyword_search("report", 10) and store.keyword_search("report", 10, skip_common=True) == []
    store.close()


def test_a_term_that_becomes_common_is_skipped_after_the_index_changes(index):
    store = Store(index.path / DB_NAME)
    assert store.keyword_search("glacier", 10, skip_common=True)  # in a quarter of the chunks
    index.add_texts([{"id": f"g{i:03d}", "text": f"glacier report g{i}"} for i in range(200)])
    assert store.keyword_search("glacier", 10) and store.keyword_search("glacier", 10, skip_common=True) == []
    store.close()


def test_a_term_made_common_by_this_connections_writes_is_skipped_at_once(index):
    store = index._store  # the connection the index writes with
    assert store.keyword_search("glacier", 10, skip_common=True)  # in a quarter of the chunks
    index.add_texts([{"id": f"g{i:03d}", "text": f"glacier report g{i}"} for i in range(200)])
    # Now in over half the chunks: hybrid's keyword list is empty and the vector order rules.
    assert store.keyword_search("glacier", 10) and store.keyword_search("glacier", 10, skip_common=True) == []


def test_a_small_index_keeps_common_terms_in_hybrid(tmp_path):
    with Index.open(tmp_path / "small", embedder=WordVectors(), index_type="flat") as small:
        small.add_texts([{"id": f"t{i:03d}", "text": text(i)} for i in range(120)])
        store = small._store
        assert store.keyword_search("report", 10, skip_common=True) == store.keyword_search("report", 10)
