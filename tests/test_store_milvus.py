"""What only the Milvus store must show: the same top-10 as the local flat store, and failures of the
server (killed mid-index, unreachable, collection missing, wrong token, wrong dimension) that end
a command with one line and exit 1 and leave the index answering.

The server is milvus-lite as a gRPC subprocess (tests/milvus_fixture.py); the embedder the
Ollama-protocol test server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.helpers import DATA, EXAMPLE_QUERIES, assert_one_clean_line, cli_env, embedded, free_port, run
from tests.milvus_fixture import new_collection_name
from tests.test_stores import assert_store_agrees, citations, search_json, status_json

VECTOR_QUERIES = [query for query, _ in EXAMPLE_QUERIES]  # three Chinese, three English
# Chinese and English, one word and several, content words and function words. Both stores
# score keyword hits by FTS5's bm25() over the same tokens: the Milvus store lets Milvus retrieve
# the rows and ranks them itself, because Milvus's own BM25 weighs a term by log(1 + (N - n + 0.5)
# / (n + 0.5)) where FTS5 takes log((N - n + 0.5) / (n + 0.5)) floored at ~0, and milvus-lite
# counts n per segment: ranked by Milvus, a word as common as "of" or "a" reorders the hits.
KEYWORD_QUERIES = [
    *VECTOR_QUERIES,
    "sourdough starter flour",
    "bicycle chain lubrication",
    "Python packaging wheel",
    "search index vectors",
    "红烧肉",
    "望远镜 星星",
    "造纸术 蔡伦",
    "成都 火锅",
    "how to make bread",
    "Rust ownership and borrowing",
    "the water temperature for pour-over coffee",
    "when to plant tomatoes on a balcony",
    "a plan for a marathon training week",
    "what is the best camera exposure",
    "茶",
    "番茄",
    "shutter",
    "马拉松 训练计划",
    "the Fushimi Inari shrine",
    "熊猫",
    "绿茶和红茶有什么区别",
]


@pytest.fixture
def workdir(tmp_path) -> Path:
    shutil.copytree(DATA, tmp_path / "data")
    return tmp_path


# -- the same answers as the local flat store ---------------------------------------------------


@pytest.fixture(scope="module")
def twin_indexes(tmp_path_factory, ollama_server_session, milvus_server):
    """(workdir, host): the demo corpus indexed twice, into workdir/local (local store, exact flat
    FAISS) and workdir/milvus (the Milvus store)."""
    workdir = tmp_path_factory.mktemp("twins")
    shutil.copytree(DATA, workdir / "data")
    host = ollama_server_session.url
    ollama_server_session.reset()
    run(["index", "data", "-i", "local", "--store", "local", "--index-type", "flat"], cwd=workdir, host=host)
    run(["index", "data", "-i", "milvus", "--store", milvus_server.store_url()], cwd=workdir, host=host)
    return workdir, host


@pytest.mark.parametrize("query", VECTOR_QUERIES)
def test_vector_top10_of_milvus_equals_the_local_flat_store(twin_indexes, query):
    workdir, host = twin_indexes
    local = search_json(workdir, host, query, "--mode", "vector", "--chunks", "-k", "10", index=workdir / "local")
    milvus = search_json(workdir, host, query, "--mode", "vector", "--chunks", "-k", "10", index=workdir / "milvus")
    assert len(local) == 10
    assert citations(milvus) == citations(local)
    assert [round(h["score"], 4) for h in milvus] == [round(h["score"], 4) for h in local]


@pytest.fixture(scope="module")
def twin_libraries(twin_indexes):
    """The two indexes of `twin_indexes` opened through the library (a CLI run per query and mode
    would take minutes)."""
    from semsearch import Index

    workdir, host = twin_indexes
    with Index.open(workdir / "local", create=False, ollama_host=host) as local, \
            Index.open(workdir / "milvus", create=False, ollama_host=host) as milvus:
        yield local, milvus


def test_keyword_top10_of_milvus_equals_the_local_store(twin_libraries):
    local_index, milvus_index = twin_libraries
    for query in KEYWORD_QUERIES:
        local = local_index.search(query, k=10, mode="keyword")
        milvus = milvus_index.search(query, k=10, mode="keyword")
        assert local, query
        assert [(h.citation, h.score) for h in milvus] == [(h.citation, h.score) for h in local], query


def test_hybrid_top10_of_milvus_equals_the_local_flat_store(twin_libraries):
    local_index, milvus_index = twin_libraries
    for query in KEYWORD_QUERIES:
        local = local_index.search(query, k=10, mode="hybrid")
        milvus = milvus_index.search(query, k=10, mode="hybrid")
        assert [h.citation for h in milvus] == [h.citation for h in local], query
        assert [h.score for h in milvus] == pytest.approx([h.score for h in local], abs=1e-4), query


def _collection_without_terms(client, name: str, dimensions: int) -> None:
    """A collection as semsearch made it before keyword hits were ranked as FTS5 ranks them
    (schema 1: no `terms` field, no `enable_match` on `keywords`)."""
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    for field, kind, options in [
            ("id", DataType.VARCHAR, {"is_primary": True, "max_length": 64}),
            ("ledger", DataType.VARCHAR, {"max_length": 32}), ("chunk", DataType.INT64, {}),
            ("document", DataType.INT64, {}), ("vector", DataType.FLOAT_VECTOR, {"dim": dimensions}),
            ("text", DataType.VARCHAR, {"max_length": 65_535}),
            ("keywords", DataType.VARCHAR, {"max_length": 65_535, "enable_analyzer": True,
                                            "analyzer_params": {"tokenizer": "standard"}}),
            ("sparse", DataType.SPARSE_FLOAT_VECTOR, {}), ("path", DataType.VARCHAR, {"max_length": 4096}),
            ("kind", DataType.VARCHAR, {"max_length": 16}), ("part", DataType.INT64, {}),
            ("part_kind", DataType.VARCHAR, {"max_length": 16}), ("line_start", DataType.INT64, {}),
            ("line_end", DataType.INT64, {}), ("size", DataType.INT64, {}), ("mtime", DataType.DOUBLE, {}),
            ("metadata", DataType.JSON, {}), ("details", DataType.JSON, {})]:
        schema.add_field(field, kind, **options)
    schema.add_function(Function(name="keywords_bm25", function_type=FunctionType.BM25,
                                 input_field_names=["keywords"], output_field_names=["sparse"]))
    index_params = client.prepare_index_params()
    index_params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    index_params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(name, schema=schema, index_params=index_params, consistency_level="Strong",
                             properties={"semsearch.schema": "1"})


def test_a_collection_made_before_the_terms_field_still_takes_writes_and_answers(
        workdir, ollama_server, milvus_server):
    host = ollama_server.url
    collection = new_collection_name()
    with closing(milvus_server.client()) as client:
        _collection_without_terms(client, collection, 384)
    run(["index", "data", "--store", milvus_server.store_url(collection)], cwd=workdir, host=host)
    (workdir / "data" / "tea" / "chinese-tea.md").write_text("# Zeppelins\n\nA zeppelin timetable.\n",
                                                             encoding="utf-8")
    run(["index", "data"], cwd=workdir, host=host)
    assert_store_agrees(status_json(workdir, host), "milvus")
    for mode in ("keyword", "hybrid"):
        assert search_json(workdir, host, "zeppelin timetable", "--mode", mode)[0]["path"] == "data/tea/chinese-tea.md"


def test_each_write_records_the_term_total_so_a_search_scans_no_rows_and_ranks_as_fts5(
        workdir, ollama_server, milvus_server, monkeypatch):
    from semsearch import Index
    from semsearch.stores.milvus_keyword import KeywordRanker

    host = ollama_server.url
    collection = new_collection_name()
    run(["index", "data", "-i", "milvus", "--store", milvus_server.store_url(collection)], cwd=workdir, host=host)
    # Rows replaced and deleted as well as added: the recorded total must follow all three.
    (workdir / "data" / "tea" / "chinese-tea.md").write_text(
        "# Zeppelins\n\nA zeppelin timetable of the routes of the zeppelins over the sea.\n", encoding="utf-8")
    (workdir / "data" / "coffee" / "pour-over-brewing.txt").unlink()
    run(["index", "data", "-i", "milvus"], cwd=workdir, host=host)
    run(["index", "data", "-i", "local", "--store", "local", "--index-type", "flat"], cwd=workdir, host=host)
    client = milvus_server.client()
    try:
        properties = client.describe_collection(collection)["properties"]
        rows = client.query(collection, filter="", output_fields=["terms"], limit=16_384)
    finally:
        client.close()
    assert [int(v) for k, v in properties.items() if k.endswith(".terms")] == [sum(r["terms"] for r in rows)]

    def no_scan(self):
        raise AssertionError("a search scanned the collection's rows for the term total")

    monkeypatch.setattr(KeywordRanker, "_term_total", no_scan)
    with Index.open(workdir / "local", create=False, ollama_host=host) as local, \
            Index.open(workdir / "milvus", create=False, ollama_host=host) as milvus:
        for query in ("zeppelin timetable", "the routes of the sea", "types of Chinese tea", "红烧肉"):
            expected = [(h.citation, h.score) for h in local.search(query, k=10, mode="keyword")]
            assert [(h.citation, h.score) for h in milvus.search(query, k=10, mode="keyword")] == expected, query


def test_the_collection_is_built_with_our_hnsw_and_bm25_parameters(workdir, ollama_server, milvus_server):
    """milvus-lite reads build parameters only in their nested form and otherwise builds silently
    with its own defaults (HNSW M 16, BM25 k1 1.5): keyword scores would drift from FTS5's."""
    from pymilvus import MilvusClient

    from semsearch.vectors import HNSW_EF_CONSTRUCTION, HNSW_M

    url = milvus_server.store_url()
    run(["index", "data", "--store", url, "--index-type", "hnsw"], cwd=workdir, host=ollama_server.url)
    client = MilvusClient(uri=milvus_server.uri)
    try:
        collection = url.rsplit("/", 1)[1]
        vector = client.describe_index(collection, "vector")
        sparse = client.describe_index(collection, "sparse")
    finally:
        client.close()
    assert vector["index_type"] == "HNSW"
    assert {k: int(v) for k, v in vector["params"].items()} == {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}
    assert {k: float(v) for k, v in sparse["params"].items()} == {"bm25_k1": 1.2, "bm25_b": 0.75}


# -- the server fails ---------------------------------------------------------------------------


def test_killing_the_server_mid_index_stops_with_one_line_and_a_rerun_completes(
        workdir, ollama_server, killable_milvus_server):
    host, server = ollama_server.url, killable_milvus_server
    index_dir = workdir / ".semsearch"
    ollama_server.delay_per_text = 0.25  # a slow embedder: the run is still going when the server dies
    process = subprocess.Popen([sys.executable, "-m", "semsearch", "index", "data", "--batch", "4",
                                "--store", server.store_url("killed")], cwd=workdir, env=cli_env(host),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while embedded(index_dir) < 8:
            assert process.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
            time.sleep(0.05)
    finally:
        server.kill()
    stdout, stderr = process.communicate(timeout=600)
    assert_one_clean_line(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr),
                          server.address)

    server.restart()
    ollama_server.delay_per_text = 0.0
    run(["index", "data"], cwd=workdir, host=host)
    status = status_json(workdir, host)
    assert status["pending_chunks"] == 0
    assert_store_agrees(status, "milvus")
    hits = search_json(workdir, host, "invention of paper in China", "--mode", "vector", "--chunks",
                       "-k", str(status["chunks"]))
    assert len(hits) == status["chunks"] == len({hit["chunk_id"] for hit in hits})
    assert hits[0]["path"] == "data/history/papermaking-and-printing.md"


def test_an_unreachable_server_fails_each_command_with_one_line_and_the_index_answers_once_it_is_back(
        workdir, ollama_server, killable_milvus_server):
    host, server = ollama_server.url, killable_milvus_server
    run(["index", "data", "--store", server.store_url()], cwd=workdir, host=host)
    before = citations(search_json(workdir, host, "types of Chinese tea", "--mode", "hybrid", "--chunks"))
    server.kill()

    for mode in ("vector", "keyword", "hybrid"):
        assert_one_clean_line(run(["search", "--mode", mode, "types of Chinese tea"], cwd=workdir, host=host,
                                  check=False), server.address)
    (workdir / "data" / "tea" / "chinese-tea.md").write_text("# Zeppelins\n\nA zeppelin timetable.\n",
                                                             encoding="utf-8")
    assert_one_clean_line(run(["index", "data"], cwd=workdir, host=host, check=False), server.address)

    server.restart()
    assert citations(search_json(workdir, host, "types of Chinese tea", "--mode", "hybrid", "--chunks")) == before
    run(["index", "data"], cwd=workdir, host=host)
    assert [h["path"] for h in search_json(workdir, host, "zeppelin timetable", "--mode", "keyword")] == [
        "data/tea/chinese-tea.md"]
    assert_store_agrees(status_json(workdir, host), "milvus")


def test_a_new_index_on_an_unreachable_server_fails_with_one_line_and_records_nothing(
        workdir, ollama_server, milvus_server):
    host = ollama_server.url
    nowhere = f"127.0.0.1:{free_port()}"
    failed = run(["index", "data", "--store", f"milvus://{nowhere}/notes"], cwd=workdir, host=host, check=False)
    assert_one_clean_line(failed, nowhere)
    # Nothing of the failed attempt stands in the way of the right address.
    url = milvus_server.store_url()
    run(["index", "data", "--store", url], cwd=workdir, host=host)
    status = status_json(workdir, host)
    assert status["store"]["location"] == url
    assert_store_agrees(status, "milvus")


def test_rebuild_into_an_unreachable_server_fails_with_one_line_and_keeps_the_recorded_store(
        workdir, ollama_server, milvus_server):
    host = ollama_server.url
    url = milvus_server.store_url()
    run(["index", "data", "--store", url], cwd=workdir, host=host)
    nowhere = f"127.0.0.1:{free_port()}"
    assert_one_clean_line(run(["rebuild", "--store", f"milvus://{nowhere}/notes"], cwd=workdir, host=host,
                              check=False), nowhere)
    status = status_json(workdir, host)
    assert status["store"]["location"] == url
    assert_store_agrees(status, "milvus")
    assert search_json(workdir, host, "types of Chinese tea", "-k", "1")[0]["path"] == "data/tea/chinese-tea.md"


def test_a_missing_collection_fails_search_with_one_line_and_rebuild_refills_it(
        workdir, ollama_server, milvus_server):
    host = ollama_server.url
    collection = new_collection_name()
    run(["index", "data", "--store", milvus_server.store_url(collection)], cwd=workdir, host=host)
    before = citations(search_json(workdir, host, "types of Chinese tea", "--mode", "vector", "--chunks"))
    client = milvus_server.client()
    try:
        client.drop_collection(collection)
    finally:
        client.close()

    for mode in ("vector", "keyword", "hybrid"):
        assert_one_clean_line(run(["search", "--mode", mode, "types of Chinese tea"], cwd=workdir, host=host,
                                  check=False), collection)
    status = status_json(workdir, host)  # the index still opens, and says the store disagrees
    assert status["store"]["in_sync"] is False and status["store"]["store_chunks"] == 0
    assert status["store"]["ledger_chunks"] == status["chunks"] > 0

    run(["rebuild"], cwd=workdir, host=host)
    assert_store_agrees(status_json(workdir, host), "milvus")
    assert citations(search_json(workdir, host, "types of Chinese tea", "--mode", "vector", "--chunks")) == before


def test_a_collection_of_another_dimension_is_refused_with_one_line_and_left_alone(
        workdir, ollama_server, milvus_server):
    host = ollama_server.url
    # Another machine's index, of a 64-dimension model, already fills the collection.
    shared = milvus_server.store_url()
    run(["index", "data/tea", "-i", "other", "--dimensions", "64", "--store", shared], cwd=workdir, host=host)
    other_before = citations(search_json(workdir, host, "types of Chinese tea", "--chunks", index=workdir / "other"))

    failed = run(["index", "data", "--store", shared], cwd=workdir, host=host, check=False)
    assert_one_clean_line(failed, "64", "384")
    assert "dimension" in failed.stderr.lower()

    url = milvus_server.store_url()
    run(["index", "data", "--store", url], cwd=workdir, host=host)
    refused = run(["rebuild", "--store", shared], cwd=workdir, host=host, check=False)
    assert_one_clean_line(refused, "64", "384")
    status = status_json(workdir, host)  # still the store it had, and it answers
    assert status["store"]["location"] == url
    assert_store_agrees(status, "milvus")
    assert search_json(workdir, host, "types of Chinese tea", "-k", "1")[0]["path"] == "data/tea/chinese-tea.md"
    # The other machine's index is as it was.
    assert_store_agrees(status_json(workdir, host, index=workdir / "other"), "milvus")
    assert citations(search_json(workdir, host, "types of Chinese tea", "--chunks", index=workdir / "other")) == (
        other_before)


def test_a_collection_semsearch_did_not_make_is_refused_with_one_line_and_left_alone(
        workdir, ollama_server, milvus_server):
    host = ollama_server.url
    foreign = new_collection_name()
    client = milvus_server.client()
    try:
        client.create_collection(foreign, dimension=8)
        client.insert(foreign, [{"id": 1, "vector": [1.0] + [0.0] * 7}])
        failed = run(["index", "data", "--store", milvus_server.store_url(foreign)], cwd=workdir, host=host,
                     check=False)
        assert_one_clean_line(failed, foreign)
        assert client.query(foreign, filter="", output_fields=["count(*)"])[0]["count(*)"] == 1
        vector_field = next(f for f in client.describe_collection(foreign)["fields"] if f["name"] == "vector")
        assert vector_field["params"]["dim"] == 8
    finally:
        client.close()


def test_a_wrong_token_fails_with_one_line_and_the_right_one_from_the_environment_works(
        workdir, ollama_server, milvus_server_with_token):
    host, server = ollama_server.url, milvus_server_with_token
    url = server.store_url()
    for env in ({}, {"SEMSEARCH_MILVUS_TOKEN": "root:not-the-token"}):
        failed = run(["index", "data", "--store", url], cwd=workdir, host=host, check=False, env=env)
        assert_one_clean_line(failed, server.address)
        assert "token" in failed.stderr.lower() or "auth" in failed.stderr.lower(), failed.stderr
        assert "not-the-token" not in failed.stderr

    good = {"SEMSEARCH_MILVUS_TOKEN": server.token}
    run(["index", "data", "--store", url], cwd=workdir, host=host, env=good)
    status = json.loads(run(["status", "--json"], cwd=workdir, host=host, env=good).stdout)
    assert_store_agrees(status, "milvus")
    assert server.token not in json.dumps(status)
    # The token is never written into the index.
    for path in (workdir / ".semsearch").iterdir():
        assert server.token.encode() not in path.read_bytes(), path.name
    hits = search_json(workdir, host, "types of Chinese tea", "-k", "1", env=good)
    assert hits[0]["path"] == "data/tea/chinese-tea.md"
    assert_one_clean_line(run(["search", "types of Chinese tea"], cwd=workdir, host=host, check=False),
                          server.address)
