"""The SQLite store on its own: rows written and replaced, ids never reused, deletions, filters,
batched lookups past SQLite's variable limit, and refusing databases it cannot read."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from semsearch.errors import IndexCorruptError
from semsearch.store import SCHEMA_VERSION, Store

from tests.helpers import new_document, text_sha256


def table_count(store: Store, table: str) -> int:
    with sqlite3.connect(store.path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_written_chunks_read_back_with_their_citation_and_vector(store, embedder):
    doc = new_document("notes/tea", ["Green tea is pan-fired.", "Oolong is half oxidised."], embedder,
                       metadata={"topic": "tea"}, headings=("Tea", "Kinds"), title="Tea notes")
    result = store.write_documents([doc])
    assert store.counts() == (1, 2)
    assert result.added_ids.tolist() == sorted(result.added_ids.tolist()) and len(result.removed_ids) == 0
    rows = store.chunks(result.added_ids)
    second = rows[int(result.added_ids[1])]
    assert (second.text, second.path, second.kind, second.title) == ("Oolong is half oxidised.", "notes/tea", "text",
                                                                   "Tea notes")
    assert (second.line_start, second.char_start, second.ordinal) == (2, 24, 1)
    assert second.heading_path == ("Tea", "Kinds") and second.metadata == {"topic": "tea"}
    text, vector = store.chunk_vectors([int(result.added_ids[0])])[int(result.added_ids[0])]
    assert text == "Green tea is pan-fired."
    np.testing.assert_array_equal(vector, doc.vectors[0])
    assert np.array_equal(result.added_vectors, doc.vectors)


def test_a_file_document_is_stored_relative_to_the_home_and_read_back_absolute(store, embedder, tmp_path):
    file = tmp_path / "docs" / "a.md"
    key = store.file_key(file)
    assert key == "docs/a.md"
    result = store.write_documents([new_document(key, ["alpha"], embedder, kind="file")])
    assert store.chunks(result.added_ids)[int(result.added_ids[0])].path == str(file)
    assert set(store.files_in(tmp_path / "docs")) == {"docs/a.md"}
    assert store.files_in(tmp_path / "elsewhere") == {}


def test_rewriting_a_document_replaces_its_chunks_and_never_reuses_an_id(store, embedder):
    first = store.write_documents([new_document("a", ["one", "two", "three"], embedder)])
    second = store.write_documents([new_document("a", ["uno", "dos"], embedder)])
    assert sorted(second.removed_ids.tolist()) == sorted(first.added_ids.tolist())
    assert min(second.added_ids) > max(first.added_ids)
    assert store.counts() == (1, 2)
    assert table_count(store, "chunks_fts") == 2
    assert store.chunks(first.added_ids) == {}
    store.delete_documents([store.document("a", "text").id])
    third = store.write_documents([new_document("b", ["again"], embedder)])
    assert int(third.added_ids[0]) > max(second.added_ids)  # AUTOINCREMENT: deleted ids stay retired


def test_every_write_bumps_the_generation_that_vectors_faiss_is_stamped_with(store, embedder):
    before = store.generation()
    written = store.write_documents([new_document("a", ["one"], embedder)])
    assert written.generation == before + 1 == store.generation()
    deleted = store.delete_documents([store.document("a", "text").id])
    assert deleted.generation == before + 2 == store.generation()


def test_a_deleted_document_leaves_no_chunk_vector_or_keyword_row(store, embedder):
    store.write_documents([new_document("keep", ["tea leaves"], embedder),
                           new_document("drop", ["coffee beans", "coffee grinder"], embedder)])
    doomed = store.document("drop", "text")
    assert [cid for cid, _ in store.keyword_search("coffee", 10)] != []
    result = store.delete_documents([doomed.id])
    assert len(result.removed_ids) == 2
    assert store.counts() == (1, 1)
    assert store.keyword_search("coffee", 10) == []
    assert store.document("drop", "text") is None
    assert table_count(store, "chunks_fts") == 1
    assert sum(len(ids) for ids, _ in store.iter_vectors()) == 1


def test_vectors_filled_in_with_a_write_reach_faiss_unless_the_write_replaces_their_chunks(store, embedder):
    old = replace(new_document("a", ["one", "two"], embedder), vectors=[None, None])
    kept = replace(new_document("b", ["three"], embedder), vectors=[None])
    assert len(store.write_documents([old, kept]).added_ids) == 0 and store.count_pending() == 3
    answers = dict(zip(old.text_hashes + kept.text_hashes, embedder.embed(["one", "two", "three"], "document")))
    b_chunk = store.chunk_ids_where(["b"]).tolist()
    # "a" is rewritten in the transaction that fills its old chunks: those never reach FAISS, so
    # they are neither added nor removed; "b"'s chunk is added with its vector.
    result = store.write_documents([new_document("a", ["uno"], embedder)], fill=answers)
    new_chunk = [int(i) for i in store.chunk_ids_where(["a"])]
    assert result.filled == 3 and store.count_pending() == 0
    assert sorted(result.added_ids.tolist()) == sorted(b_chunk + new_chunk)
    assert result.removed_ids.tolist() == []
    b_row = result.added_ids.tolist().index(b_chunk[0])
    np.testing.assert_array_equal(result.added_vectors[b_row], answers[kept.text_hashes[0]])
    assert store.chunk_vectors(b_chunk)[b_chunk[0]][0] == "three"


def test_the_embedding_cache_finds_stored_vectors_by_text_hash(store, embedder):
    doc = new_document("a", ["reuse me", "and me"], embedder)
    store.write_documents([doc])
    found = store.cached_vectors([text_sha256("reuse me"), text_sha256("never stored"), text_sha256("reuse me")])
    assert set(found) == {text_sha256("reuse me")}
    np.testing.assert_array_equal(found[text_sha256("reuse me")], doc.vectors[0])


def test_lookups_of_more_ids_than_sqlite_binds_at_once_return_every_row(store, embedder, tmp_path):
    texts = [f"note number {i}" for i in range(1200)]
    ids = store.write_documents([new_document("many", texts, embedder)]).added_ids.tolist()
    files = store.write_documents([new_document(f"f{i}.txt", [f"file {i}"], embedder, kind="file")
                                   for i in range(1200)]).added_ids.tolist()
    file_ids = sorted({row.document_id for row in store.chunks(files).values()})
    # SQLite before 3.32 (still shipped by some systems) binds at most 999 variables per statement.
    store.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    assert len(store.chunks(ids)) == 1200
    assert len(store.chunk_vectors(ids)) == 1200
    assert len(store.chunk_neighbourhood(ids[::2], radius=1)) == 1200
    assert len(store.cached_vectors(text_sha256(t) for t in texts)) == 1200
    stats = store.file_stats(file_ids)
    assert len(stats) == 1200 and {stat.path for stat in stats} == {str(tmp_path / f"f{i}.txt") for i in range(1200)}


def test_neighbourhood_spans_the_radius_within_the_same_document_only(store, embedder):
    a = store.write_documents([new_document("a", [f"a{i}" for i in range(6)], embedder)]).added_ids.tolist()
    store.write_documents([new_document("b", [f"b{i}" for i in range(6)], embedder)])
    around = store.chunk_neighbourhood([a[2]], radius=1)
    assert sorted(row.text for row in around.values()) == ["a1", "a2", "a3"]
    assert sorted(row.text for row in store.chunk_neighbourhood([a[0]], radius=2).values()) == ["a0", "a1", "a2"]


def test_filters_keep_documents_by_path_glob_and_metadata(store, embedder):
    store.write_documents([
        new_document("tea/green", ["green"], embedder, metadata={"year": 2024, "tags": ["tea", "china"]}),
        new_document("tea/black", ["black"], embedder, metadata={"year": 2023, "draft": False}),
        new_document("coffee/espresso", ["espresso"], embedder, metadata={"year": 2024, "tags": ["coffee"]}),
    ])

    def texts(**filters) -> list[str]:
        ids = store.chunk_ids_where(filters.get("paths", ()), filters.get("where"))
        return sorted(row.text for row in store.chunks(ids).values())

    assert texts(paths=["tea/*"]) == ["black", "green"]
    assert texts(paths=["tea/green", "coffee/*"]) == ["espresso", "green"]  # globs are OR-ed
    assert texts(where={"year": "2024"}) == ["espresso", "green"]  # values compare as text
    assert texts(where={"year": 2024, "tags": "tea"}) == ["green"]  # keys are AND-ed; a list contains
    assert texts(where={"tags": ["coffee", "china"]}) == ["espresso", "green"]  # any wanted value
    assert texts(where={"draft": False}) == ["black"]
    assert texts(paths=["tea/*"], where={"year": 2024}) == ["green"]
    assert texts(where={"missing": "x"}) == []


def test_a_database_from_a_newer_semsearch_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "idx" / "semsearch.db"
    path.parent.mkdir()
    Store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(IndexCorruptError, match="newer semsearch.*upgrade semsearch"):
        Store(path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "idx" / "semsearch.db"
    path.parent.mkdir()
    path.write_bytes(b"this is not an SQLite database, just text" * 100)
    with pytest.raises(IndexCorruptError, match="index database") as raised:
        Store(path)
    assert str(path) in str(raised.value)
