"""The FAISS wrapper with real FAISS: ranking, replacing and removing by id, filters that still
return k, atomic files, and an index whose vectors.faiss is stale being rebuilt from SQLite."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from semsearch import Index, TextItem
from semsearch.options import DB_NAME
from semsearch.store import Store
from semsearch.vectors import AUTO_FLAT_MAX_ELEMENTS, RebuildPolicy, VectorIndex, resolve_index_type

from tests.helpers import new_document

DIMS = 16
TYPES = ("flat", "hnsw", "hnsw-sq8", "ivf", "ivf-sq8")


def unit_rows(count: int, seed: int = 7) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, DIMS)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def built(kind: str, ids: np.ndarray, vectors: np.ndarray, policy: RebuildPolicy = RebuildPolicy()) -> VectorIndex:
    return VectorIndex.build(kind, DIMS, lambda: iter([(ids, vectors)]), len(ids), policy)


def test_flat_search_ranks_by_cosine_and_answers_with_the_given_ids():
    vectors = unit_rows(50)
    ids = np.arange(1000, 1050)
    index = built("flat", ids, vectors)
    query = vectors[17] + 0.1 * vectors[3]
    query /= np.linalg.norm(query)
    scores, found = index.search(query, 5)
    expected = np.argsort(-(vectors @ query))[:5]
    assert found.tolist() == (ids[expected]).tolist()
    assert found[0] == 1017
    np.testing.assert_allclose(scores, (vectors @ query)[expected], rtol=1e-5)
    assert list(scores) == sorted(scores, reverse=True)


def test_adding_an_existing_id_replaces_its_vector_instead_of_duplicating_it():
    vectors = unit_rows(4)
    index = built("flat", np.arange(4), vectors)
    index.add(np.array([2]), vectors[0:1])
    assert index.ntotal == 4
    scores, found = index.search(vectors[0], 4)
    assert sorted(found[:2].tolist()) == [0, 2] and scores[1] == pytest.approx(1.0)
    assert sorted(found.tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("kind", TYPES)
def test_removed_ids_are_never_returned(kind):
    vectors = unit_rows(200)
    index = built(kind, np.arange(200), vectors)
    index.remove(np.arange(0, 200, 2))
    assert index.ntotal == 100
    _, found = index.search(vectors[10], 100)
    assert len(found) > 0 and not any(i % 2 == 0 for i in found.tolist())


@pytest.mark.parametrize("kind", TYPES)
def test_a_filter_matching_at_least_k_vectors_returns_k(kind):
    vectors = unit_rows(400)
    index = built(kind, np.arange(400), vectors)
    allowed = np.array([5, 77, 150, 151, 299, 398])  # few, far from the query's neighbourhood
    scores, found = index.search(vectors[200], 5, allowed_ids=allowed)
    assert len(found) == 5 and set(found.tolist()) <= set(allowed.tolist())
    assert list(scores) == sorted(scores, reverse=True)
    _, all_of_them = index.search(vectors[200], 10, allowed_ids=allowed)
    assert sorted(all_of_them.tolist()) == allowed.tolist()
    assert len(index.search(vectors[200], 5, allowed_ids=np.array([], np.int64))[1]) == 0


def test_hnsw_tombstones_past_the_policy_ask_for_a_rebuild():
    vectors = unit_rows(20)
    index = built("hnsw", np.arange(20), vectors, RebuildPolicy(tombstone_min=2))
    index.remove(np.array([0, 1]))
    assert index.tombstones == {0, 1} and not index.needs_rebuild  # 2 is not past the minimum
    index.remove(np.array([2]))
    assert index.needs_rebuild  # 3 > max(2, 10 % of 20)
    default = built("hnsw", np.arange(20), vectors)
    default.remove(np.arange(10))
    assert not default.needs_rebuild  # the default minimum (1000) keeps small indexes from churning


def test_auto_stays_exact_up_to_the_policy_threshold():
    assert resolve_index_type("auto", 1000, 384) == "flat"
    assert resolve_index_type("auto", AUTO_FLAT_MAX_ELEMENTS // 384 + 1, 384) == "hnsw"
    small = RebuildPolicy(auto_flat_max_elements=20 * 384)
    assert resolve_index_type("auto", 20, 384, small) == "flat"
    assert resolve_index_type("auto", 21, 384, small) == "hnsw"
    assert resolve_index_type("ivf", 21, 384, small) == "ivf"


@pytest.mark.parametrize("kind", TYPES)
def test_a_saved_index_loads_back_with_the_same_answers(tmp_path, kind):
    vectors = unit_rows(300)
    index = built(kind, np.arange(300) * 3, vectors)
    size = index.save(tmp_path / "vectors.faiss")
    assert size == (tmp_path / "vectors.faiss").stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.faiss"]  # no temp file left behind
    loaded = VectorIndex.load(tmp_path / "vectors.faiss", DIMS, kind)
    assert loaded is not None and loaded.ntotal == 300
    for row in (0, 123, 299):
        assert loaded.search(vectors[row], 3)[1].tolist() == index.search(vectors[row], 3)[1].tolist()


def test_a_file_of_other_dimensions_type_or_garbage_is_not_trusted(tmp_path):
    path = tmp_path / "vectors.faiss"
    built("flat", np.arange(10), unit_rows(10)).save(path)
    assert VectorIndex.load(path, DIMS + 1, "flat") is None
    assert VectorIndex.load(path, DIMS, "hnsw") is None
    path.write_bytes(b"\0" * 100)
    assert VectorIndex.load(path, DIMS, "flat") is None
    assert VectorIndex.load(tmp_path / "missing.faiss", DIMS, "flat") is None


NOTES = [TextItem(f"n{i}", text) for i, text in enumerate([
    "green tea is brewed with water at eighty degrees",
    "black tea is fully oxidised",
    "espresso needs finely ground coffee beans",
    "the bicycle tire has a puncture",
    "the moons of jupiter through binoculars",
])]


def test_a_stale_vectors_file_is_rebuilt_from_sqlite_without_embedding(tmp_path, embedder):
    path = tmp_path / "idx"
    with Index.open(path, embedder=embedder) as index:
        index.add_texts(NOTES[:2])
        shutil.copy(path / "vectors.faiss", tmp_path / "old.faiss")
        index.add_texts(NOTES[2:])
        expected = [hit.chunk_id for hit in index.search("coffee beans for espresso", k=5)]
    shutil.copy(tmp_path / "old.faiss", path / "vectors.faiss")  # an older generation: 2 of 5 vectors
    embedder.calls.clear()
    with Index.open(path, embedder=embedder) as index:
        hits = index.search("coffee beans for espresso", k=5)
        assert [hit.chunk_id for hit in hits] == expected and hits[0].path == "n2"
        assert index.repaired and "rebuilt it from SQLite (5 vectors)" in index.repaired
        assert index.status().in_sync
    assert embedder.calls == [(("coffee beans for espresso",), "query")]  # documents were not re-embedded
    reloaded = VectorIndex.load(path / "vectors.faiss", embedder.dimensions, "flat")
    assert reloaded is not None and reloaded.ntotal == 5  # the repaired file was written back


def test_a_missing_vectors_file_is_rebuilt(tmp_path, embedder):
    path = tmp_path / "idx"
    with Index.open(path, embedder=embedder) as index:
        index.add_texts(NOTES)
    (path / "vectors.faiss").unlink()
    with Index.open(path, embedder=embedder) as index:
        assert index.search("puncture in the bicycle tire", k=1)[0].path == "n3"
        assert index.repaired is not None
    assert (path / "vectors.faiss").exists()



def test_writes_committed_to_sqlite_after_the_last_save_are_not_missed(tmp_path, embedder):
    path = tmp_path / "idx"
    with Index.open(path, embedder=embedder) as index:
        index.add_texts(NOTES)
    # As if a process died after committing to SQLite and before saving vectors.faiss: same
    # number of chunks, one replaced, the file one generation behind.
    store = Store(path / DB_NAME)
    store.write_documents([new_document("n4", ["a saucepan of rice simmering for fifteen minutes"], embedder)])
    store.close()
    with Index.open(path, embedder=embedder) as index:
        assert index.search("rice simmering in a saucepan", k=1)[0].path == "n4"
        assert index.repaired is not None
