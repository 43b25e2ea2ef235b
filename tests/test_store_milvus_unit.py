"""The store layer on its own: store URLs, the keyword-term encoding, filters translated for other
ledgers' rows in a shared collection (milvus-lite in a local file, in this process), error mapping
against a server that is down, retries of transient failures, and the local store behind the
boundary. The behavioural suite over both stores is tests/test_stores.py."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from semsearch import Index, TextItem, keyword
from semsearch.errors import (ConfigError, IndexMismatchError, StoreAuthError, StoreError, StoreUnavailableError)
from semsearch.stores import parse_store_url
from tests.helpers import HashingEmbedder, free_port

pytest.importorskip("pymilvus", reason="the Milvus tests need the milvus extra: pip install 'semsearch[milvus]'")
pytest.importorskip("milvus_lite", reason="the Milvus tests need the milvus extra: pip install 'semsearch[milvus]'")

from semsearch.stores import milvus, milvus_terms  # noqa: E402


# -- store URLs ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "kind", "url", "uri", "collection"), [
    ("local", "local", "local", "", ""),
    ("milvus://127.0.0.1:19530/docs", "milvus", "milvus://127.0.0.1:19530/docs", "http://127.0.0.1:19530", "docs"),
    ("milvus://db.example.org:443/team_docs/", "milvus", "milvus://db.example.org:443/team_docs",
     "http://db.example.org:443", "team_docs"),
    ("milvus+https://cloud.example:443/c1", "milvus", "milvus+https://cloud.example:443/c1",
     "https://cloud.example:443", "c1"),
])
def test_store_urls_parse_to_their_canonical_form(given, kind, url, uri, collection):
    parsed = parse_store_url(given)
    assert (parsed.kind, parsed.url, parsed.uri, parsed.collection) == (kind, url, uri, collection)


def test_a_milvus_lite_file_is_recorded_by_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parsed = parse_store_url("milvus:./vectors.db")
    assert parsed.url == f"milvus:{tmp_path / 'vectors.db'}" and parsed.is_file and parsed.collection == "semsearch"


@pytest.mark.parametrize(("given", "says"), [
    ("milvus://127.0.0.1/docs", "milvus://HOST:PORT/COLLECTION"),
    ("milvus://127.0.0.1:19530", "milvus://HOST:PORT/COLLECTION"),
    ("milvus://root:secret@127.0.0.1:19530/docs", "SEMSEARCH_MILVUS_TOKEN"),
    ("milvus://127.0.0.1:19530/my-docs", "letters, digits and underscores"),
    ("milvus:./vectors", "must end in .db"),
    ("qdrant://127.0.0.1:6333/docs", "unknown store"),
])
def test_a_bad_store_url_is_a_config_error_naming_the_forms(given, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        parse_store_url(given)


# -- keyword terms ---------------------------------------------------------------------------------

_WORD_TOKENIZER = re.compile(r"\w+")  # milvus-lite's `standard`: \w+ runs, lower-cased


@pytest.mark.parametrize("term", ["coffee", "2024", "咖啡", "茶", "ü", "naïve", "u0abc", "x_y", "東京", "한국어"])
def test_every_term_survives_encoding_and_a_word_tokenizer_whole(term):
    encoded = milvus_terms.encode_term(term)
    assert _WORD_TOKENIZER.findall(encoded.lower()) == [encoded]
    assert milvus_terms.decode_term(encoded) == term


def test_plain_words_pass_unencoded_and_encodings_never_meet_a_plain_word():
    assert milvus_terms.encode_term("coffee") == "coffee"
    # A word that happens to start like an encoding is encoded itself, so the two never collide.
    assert milvus_terms.encode_term("u0e592") != "u0e592"
    assert milvus_terms.decode_term(milvus_terms.encode_term("u0e592")) == "u0e592"


def test_the_keyword_field_holds_our_analysers_terms_cjk_bigrams_and_stems():
    text = "北京烤鸭 tastes best when the ducks are roasted"
    decoded = [milvus_terms.decode_term(t) for t in milvus_terms.keyword_text(("Food",), text).split()]
    assert {"北京", "京烤", "烤鸭", "北", "鸭"} <= set(decoded)  # bigrams and single characters, as FTS5 holds them
    assert {"duck", "roast", "tast", "food"} <= set(decoded)  # Porter stems, as FTS5's porter tokenizer makes
    assert len(decoded) == len(keyword.terms("Food " + text))


def test_the_keyword_field_holds_exactly_the_tokens_the_local_stores_fts5_table_indexes():
    # FTS5's porter leaves words under 3 bytes alone and stems "technology" to "technolog": a
    # Porter stemmer of its own would make "as" the article "a" and count it in bm25.
    text = "As technology goes, it is possibly a better idea: naïve 北京烤鸭 tastes best roasted"
    connection = sqlite3.connect(":memory:")
    connection.execute(f"CREATE VIRTUAL TABLE fts USING fts5(terms, tokenize = '{keyword.FTS_TOKENIZER}')")
    connection.execute("CREATE VIRTUAL TABLE tokens USING fts5vocab(fts, instance)")
    connection.execute("INSERT INTO fts (rowid, terms) VALUES (1, ?)", (keyword.analyze("Heading " + text),))
    indexed = [token for (token,) in connection.execute("SELECT term FROM tokens ORDER BY offset")]
    held = [milvus_terms.decode_term(t) for t in milvus_terms.keyword_text(("Heading",), text).split()]
    assert held == indexed
    assert {"as", "technolog", "is", "possibl"} <= set(held) and "a" in held


def test_a_query_is_encoded_as_the_chunks_are_so_bm25_matches_the_same_terms():
    chunk = set(milvus_terms.keyword_text((), "Roasting coffee beans in 北京").split())
    query = milvus_terms.query_text("roasted coffee 北京")
    assert query and set(query.split()) <= chunk


# -- filters for other ledgers' rows --------------------------------------------------------------

def _index(path: Path, url: str, items: list[TextItem]) -> Index:
    index = Index.open(path, embedder=HashingEmbedder(), store=url)
    index.add_texts(items)
    return index


@pytest.fixture(scope="module")
def two_ledgers(tmp_path_factory):
    """Two indexes (two ledgers, as two indexing machines would have) sharing one milvus-lite collection."""
    root = tmp_path_factory.mktemp("shared")
    url = f"milvus:{root / 'shared.db'}"
    ours = _index(root / "ours" / ".semsearch", url, [
        TextItem("notes/tea-green.md", "green tea is steamed tea", {"year": 2020, "tags": ["drink", "leaf"]}),
        TextItem("notes/bike.md", "lower the saddle of the bike", {"year": 2024}),
    ])
    theirs = _index(root / "theirs" / ".semsearch", url, [
        TextItem("notes/tea-black.md", "black tea is oxidised tea", {"year": 2021, "tags": ["drink"], "draft": True}),
        TextItem("misc/run.txt", "run the marathon slowly, tea after", {"year": "1999"}),
        TextItem("notes/tea_white.md", "white tea is barely processed tea", {"author": "Lu Yu"}),
    ])
    yield ours, theirs
    ours.close()
    theirs.close()


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_hits_from_another_ledger_come_with_their_own_text_path_and_metadata(two_ledgers, mode):
    ours, _ = two_ledgers
    hits = {hit.path: hit for hit in ours.search("black tea", k=10, mode=mode)}
    assert "notes/tea-black.md" in hits and "notes/tea-green.md" in hits
    black = hits["notes/tea-black.md"]
    assert black.text == "black tea is oxidised tea" and black.metadata["tags"] == ["drink"]
    assert black.chunk_id < 0 and black.document_id < 0 and hits["notes/tea-green.md"].chunk_id > 0


@pytest.mark.parametrize(("where", "paths", "expected"), [
    (["year>=2021"], (), {"notes/tea-black.md", "notes/bike.md"}),
    ({"tags": "drink"}, (), {"notes/tea-black.md", "notes/tea-green.md"}),
    ({"year": "2021"}, (), {"notes/tea-black.md"}),
    ({"year": 1999}, (), {"misc/run.txt"}),
    (["draft=true"], (), {"notes/tea-black.md"}),
    (["draft!=true"], (), {"notes/tea-green.md", "notes/bike.md", "misc/run.txt", "notes/tea_white.md"}),
    (["has:author"], (), {"notes/tea_white.md"}),
    (["-has:year"], (), {"notes/tea_white.md"}),
    (None, ("notes/tea-*",), {"notes/tea-black.md", "notes/tea-green.md"}),
    (None, ("notes/tea_*",), {"notes/tea_white.md"}),  # `_` is a literal underscore, not any character
    (None, ("*.txt",), {"misc/run.txt"}),
])
def test_filters_pass_the_same_rows_of_every_ledger(two_ledgers, where, paths, expected):
    ours, theirs = two_ledgers
    for index in (ours, theirs):
        found = {hit.path for hit in index.search("tea bike marathon", k=10, mode="vector", where=where, paths=paths)}
        assert found == expected


def test_a_filter_with_no_milvus_translation_keeps_to_the_ledgers_own_rows(two_ledgers):
    ours, _ = two_ledgers
    # `[...]` classes have no `like` form: our own rows are still filtered exactly, by id.
    found = {hit.path for hit in ours.search("tea", k=10, mode="vector", paths=["notes/[t]ea-*"])}
    assert found == {"notes/tea-green.md"}


def test_status_counts_only_the_ledgers_own_rows_of_a_shared_collection(two_ledgers):
    ours, theirs = two_ledgers
    assert (ours.status().store.store_chunks, theirs.status().store.store_chunks) == (2, 3)
    assert ours.status().store.in_sync and theirs.status().store.in_sync


# -- failures --------------------------------------------------------------------------------------

def test_a_server_that_is_down_is_one_store_error_after_retries_and_the_index_stays_empty(tmp_path):
    url = f"milvus://127.0.0.1:{free_port()}/docs"
    index = Index.open(tmp_path / ".semsearch", embedder=HashingEmbedder(), store=url)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match=r"cannot reach Milvus at milvus://127\.0\.0\.1:\d+/docs") as caught:
        index.add_texts([TextItem("a", "some text")])
    assert time.monotonic() - started >= sum(milvus.RETRY_DELAYS)  # retried with backoff before giving up
    assert "\n" not in str(caught.value)
    assert index.status().documents == 0 and not index.is_initialized
    index.close()


def test_the_cli_reports_an_unreachable_server_in_one_line_with_exit_1(tmp_path):
    env_index = tmp_path / ".semsearch"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Green tea is steamed soon after picking.", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "semsearch", "index", str(tmp_path / "docs"), "-i", str(env_index),
                             "-m", "local:multilingual-e5-small", "--store", f"milvus://127.0.0.1:{free_port()}/docs"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach Milvus" in lines[0] and "Traceback" not in result.stderr


class _Status:
    def __init__(self, name: str):
        self.name = name


class _RpcError(Exception):
    def __init__(self, name: str, text: str = "rpc failed"):
        super().__init__(text)
        self._name = name

    def code(self):
        return _Status(self._name)


def test_transient_grpc_failures_are_retried_until_the_request_passes(tmp_path, monkeypatch):
    monkeypatch.setattr(milvus, "RETRY_DELAYS", (0.01, 0.01, 0.01))
    store = milvus.MilvusStore(parse_store_url("milvus://127.0.0.1:1/c"), None, lambda: 4)
    failures = iter([_RpcError("UNAVAILABLE"), _RpcError("DEADLINE_EXCEEDED")])

    def flaky():
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return "answered"

    assert store._call(flaky) == "answered"


@pytest.mark.parametrize(("error", "kind", "says"), [
    (_RpcError("UNAUTHENTICATED", "auth check failed"), StoreAuthError, "SEMSEARCH_MILVUS_TOKEN"),
    (_RpcError("UNAVAILABLE"), StoreUnavailableError, "cannot reach Milvus"),
    (_RpcError("INVALID_ARGUMENT", "bad expression\nwith detail"), StoreError, "failed: bad expression"),
])
def test_failures_map_to_one_line_store_errors(monkeypatch, error, kind, says):
    monkeypatch.setattr(milvus, "RETRY_DELAYS", ())
    store = milvus.MilvusStore(parse_store_url("milvus://127.0.0.1:1/c"), None, lambda: 4)

    def failing():
        raise error

    with pytest.raises(kind, match=re.escape(says)) as caught:
        store._call(failing)
    assert "\n" not in str(caught.value)


# -- the local store behind the boundary -----------------------------------------------------------

@pytest.fixture
def local_index(tmp_path):
    index = Index.open(tmp_path / ".semsearch", embedder=HashingEmbedder())
    index.add_texts([TextItem("tea", "green tea is steamed"), TextItem("bike", "lower the saddle of the bike")])
    yield index
    index.close()


def test_the_local_store_answers_as_faiss_does(local_index):
    from semsearch.stores import StoreFilter
    from semsearch.vectors import SearchTuning

    store = local_index._search_store()
    query = HashingEmbedder().embed(["bike saddle"], "query")[0]
    scores, ids = local_index.vectors().search(query, 2)
    found = store.search(query, 2, StoreFilter(), SearchTuning())
    assert [c.chunk_id for c in found.candidates] == [int(i) for i in ids]
    assert np.allclose([c.score for c in found.candidates], scores) and not found.rows
    status = local_index.status()
    assert (status.store.kind, status.store.store_chunks, status.store.in_sync) == ("local", 2, True)


def test_naming_another_store_for_an_existing_index_names_rebuild(local_index, tmp_path):
    local_index.close()
    with pytest.raises(IndexMismatchError, match=re.escape("semsearch rebuild --store milvus:")):
        Index.open(tmp_path / ".semsearch", store=f"milvus:{tmp_path / 'v.db'}")
    Index.open(tmp_path / ".semsearch", store="local").close()


def test_a_local_store_search_loads_no_pymilvus(local_index, tmp_path):
    code = ("import json, sys\nfrom semsearch import Index\nfrom tests.helpers import HashingEmbedder\n"
            f"with Index.open({str(tmp_path / '.semsearch')!r}, embedder=HashingEmbedder()) as index:\n"
            "    assert index.search('bike', k=1)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('pymilvus', 'milvus_lite', 'grpc')))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert json.loads(result.stdout) == []
