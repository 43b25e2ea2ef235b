"""The same behaviour from every vector store: the local FAISS+SQLite store and a Milvus server.

Each test runs the `semsearch` command as a user does (`index DIR --store URL`, then `search`,
`status`, `rebuild` with the store the index records), once with `--store local` and once with
`--store milvus://127.0.0.1:PORT/COLLECTION` against a milvus-lite gRPC server (a fresh
collection per test; see tests/milvus_fixture.py). The embedder is the Ollama-protocol test
server (a real multilingual model over HTTP); it remembers the vectors it computed, so indexing
the demo corpus again costs little after the first time.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import DATA, EXAMPLE_QUERIES, cli_env, embedded, run

STORES = ("local", "milvus")


def citations(hits: list[dict]) -> list[str]:
    """`path:first-last` of each chunk hit, in rank order: what a user cites."""
    return [f"{hit['path']}:{hit['line_start']}-{hit['line_end']}" for hit in hits]


def search_json(workdir: Path, host: str, query: str, *args: str, index: Path | None = None,
                env: dict[str, str] | None = None) -> list[dict]:
    """The hits of `semsearch search --json`; [] when it finds nothing (exit 1 with a reason)."""
    extra = ["-i", str(index)] if index is not None else []
    result = run(["search", "--json", *extra, *args, query], cwd=workdir, host=host, check=False, env=env)
    assert result.returncode in (0, 1) and result.stdout.strip() and "Traceback" not in result.stderr, result
    hits = json.loads(result.stdout)
    assert (result.returncode == 0) == bool(hits), result
    return hits


def status_json(workdir: Path, host: str, index: Path | None = None) -> dict:
    extra = ["-i", str(index)] if index is not None else []
    return json.loads(run(["status", "--json", *extra], cwd=workdir, host=host).stdout)


def assert_store_agrees(status: dict, kind: str) -> None:
    """`status --json`'s store fields: the right kind, and every ledger chunk in the store."""
    store = status["store"]
    assert store["kind"] == kind, store
    assert store["in_sync"] is True, store
    assert store["store_chunks"] == store["ledger_chunks"] == status["chunks"] > 0, (store, status["chunks"])


def store_url(request, name: str) -> str:
    """The --store URL of parameter `name`: `local`, or a new collection on the session's milvus-lite."""
    if name == "local":
        return "local"
    return request.getfixturevalue("milvus_server").store_url()


@pytest.fixture(params=STORES)
def store(request) -> str:
    """The --store URL each parametrised test indexes into."""
    return store_url(request, request.param)


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A folder holding a copy of the demo corpus as data/."""
    shutil.copytree(DATA, tmp_path / "data")
    return tmp_path


# -- searching: three modes, filters, k guaranteed ----------------------------------------------


@pytest.fixture(scope="module", params=STORES)
def indexed(request, tmp_path_factory, ollama_server_session):
    """(workdir, host, store kind) of the demo corpus indexed into each store once for the module's
    read-only tests."""
    workdir = tmp_path_factory.mktemp(f"indexed-{request.param}")
    shutil.copytree(DATA, workdir / "data")
    ollama_server_session.reset()
    url = store_url(request, request.param)
    run(["index", "data", "--store", url], cwd=workdir, host=ollama_server_session.url)
    return workdir, ollama_server_session.url, request.param


@pytest.mark.parametrize(("mode", "query", "expected"), [
    ("vector", "invention of paper in China", "data/history/papermaking-and-printing.md"),
    ("vector", "红烧肉怎么炒糖色", "data/cooking/hongshao-rou.md"),
    ("keyword", "sourdough starter", "data/cooking/sourdough-bread.md"),
    ("keyword", "红烧肉 糖色", "data/cooking/hongshao-rou.md"),
    ("hybrid", "how to fix a flat bicycle tire", "data/cycling/bicycle-maintenance.txt"),
    ("hybrid", "用双筒望远镜能看到哪些星星", "data/astronomy/stargazing-beginners.html"),
])
def test_each_mode_ranks_the_right_document_first_and_returns_k_chunks(indexed, mode, query, expected):
    workdir, host, _ = indexed
    hits = search_json(workdir, host, query, "--mode", mode, "-k", "5")
    assert hits[0]["path"] == expected, citations(hits)
    assert len(hits) == 5 and [hit["rank"] for hit in hits] == [1, 2, 3, 4, 5]
    assert [hit["score"] for hit in hits] == sorted((hit["score"] for hit in hits), reverse=True)


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_a_path_filter_returns_k_hits_all_inside_it(indexed, mode):
    workdir, host, _ = indexed
    # The two cooking files hold more than three chunks, and the query is about tea: the filter,
    # not the ranking, must keep every hit under cooking/.
    hits = search_json(workdir, host, "green tea and oolong" if mode != "keyword" else "the",
                       "--mode", mode, "-k", "3", "--path", "data/cooking/*")
    assert len(hits) == 3, citations(hits)
    assert all(hit["path"].startswith("data/cooking/") for hit in hits), citations(hits)


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_type_and_where_filters_return_k_hits_that_pass_them(indexed, mode):
    workdir, host, _ = indexed
    query = "the" if mode == "keyword" else "how to brew tea"  # keyword: a word most English files hold
    txt = search_json(workdir, host, query, "--mode", mode, "-k", "4", "--where", "suffix=.txt")
    assert len(txt) == 4 and all(hit["path"].endswith(".txt") for hit in txt), citations(txt)
    md = search_json(workdir, host, query, "--mode", mode, "-k", "4", "-t", "md")
    assert len(md) == 4 and all(hit["path"].endswith(".md") for hit in md), citations(md)
    html = search_json(workdir, host, "python package" if mode == "keyword" else "stars in the night sky",
                       "--mode", mode, "-k", "2", "-t", "html", "--path", "data/programming/*",
                       "--path", "data/astronomy/*")
    assert len(html) == 2 and all(hit["path"].endswith(".html") for hit in html), citations(html)


def test_status_reports_the_store_and_that_it_agrees_with_the_ledger(indexed):
    workdir, host, kind = indexed
    status = status_json(workdir, host)
    assert_store_agrees(status, kind)
    assert status["store"]["generation"] >= 1
    human = run(["status"], cwd=workdir, host=host).stdout
    line = next(line for line in human.splitlines() if line.startswith("Store:"))
    if kind == "local":
        assert "local" in line and "FAISS file matches SQLite" in human, human
    else:
        assert status["store"]["location"].startswith("milvus://127.0.0.1:"), status["store"]
        assert f"{status['store']['location']} — {status['chunks']} chunks, agrees with the ledger" in line, line
        assert "FAISS" not in human, human  # a Milvus index has no FAISS file to report on


def test_the_recorded_store_answers_without_store_and_another_store_is_refused(indexed, request):
    workdir, host, kind = indexed
    location = status_json(workdir, host)["store"]["location"]
    other = "local" if kind == "milvus" else request.getfixturevalue("milvus_server").store_url()
    result = run(["index", "data", "--store", other], cwd=workdir, host=host, check=False)
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr, result
    assert "semsearch rebuild --store" in result.stderr, result.stderr
    assert status_json(workdir, host)["store"]["location"] == location
    again = json.loads(run(["index", "data", "--json"], cwd=workdir, host=host).stdout)
    assert again["chunks_embedded"] == 0 and again["files_unchanged"] >= 14


# -- changing the corpus ------------------------------------------------------------------------


def test_edited_and_deleted_files_leave_every_search_mode(workdir, ollama_server, store):
    host = ollama_server.url
    run(["index", "data", "--store", store], cwd=workdir, host=host)
    bread = workdir / "data" / "cooking" / "sourdough-bread.md"
    assert search_json(workdir, host, "sourdough", "--mode", "keyword")  # the old text is found
    bread.write_text("# Zeppelins\n\nA quarterly zeppelin timetable for the harbour of Quillhaven.\n",
                     encoding="utf-8")
    (workdir / "data" / "cycling" / "bicycle-maintenance.txt").unlink()
    report = json.loads(run(["index", "data", "--json"], cwd=workdir, host=host).stdout)
    assert report["files_updated"] == 1 and report["files_removed"] == 1, report

    new = search_json(workdir, host, "zeppelin timetable Quillhaven", "--mode", "keyword")
    assert [hit["path"] for hit in new] == ["data/cooking/sourdough-bread.md"]
    assert search_json(workdir, host, "sourdough", "--mode", "keyword") == []
    for mode in ("vector", "hybrid"):
        hits = search_json(workdir, host, "quarterly zeppelin timetable", "--mode", mode, "-k", "1")
        assert hits[0]["path"] == "data/cooking/sourdough-bread.md" and "Quillhaven" in hits[0]["text"], hits[0]
    chunks = status_json(workdir, host)["chunks"]
    for mode in ("vector", "keyword", "hybrid"):
        # As many hits as the index holds chunks: neither the deleted file nor the old bread text.
        hits = search_json(workdir, host, "how to fix a flat bicycle tire with a sourdough starter", "--mode", mode,
                           "--chunks", "-k", str(chunks))
        assert hits, mode
        assert not {hit["path"] for hit in hits} & {"data/cycling/bicycle-maintenance.txt"}, mode
        assert not any("sourdough" in hit["text"].lower() for hit in hits), mode
        if mode == "vector":
            assert len(hits) == chunks  # the store holds exactly the ledger's chunks, no stale ones
    assert_store_agrees(status_json(workdir, host), store.split(":")[0])


def test_sigkill_of_index_mid_run_then_a_rerun_completes_and_agrees(workdir, ollama_server, store):
    host = ollama_server.url
    index_dir = workdir / ".semsearch"
    ollama_server.delay_per_text = 0.25  # a slow embedder: the run is still going after a few batches
    process = subprocess.Popen([sys.executable, "-m", "semsearch", "index", "data", "--store", store,
                                "--batch", "4"], cwd=workdir, env=cli_env(host),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while embedded(index_dir) < 8:
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
        time.sleep(0.05)
    time.sleep(0.5)  # the next batch is on its way to the store
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL

    ollama_server.delay_per_text = 0.0
    assert status_json(workdir, host)["chunks"] >= 8  # the killed index opens
    run(["index", "data"], cwd=workdir, host=host)
    status = status_json(workdir, host)
    assert status["pending_chunks"] == 0
    assert_store_agrees(status, store.split(":")[0])
    hits = search_json(workdir, host, "invention of paper in China", "--mode", "vector", "--chunks",
                       "-k", str(status["chunks"]))
    assert len(hits) == status["chunks"]  # every chunk once: none lost, none twice
    assert len({hit["chunk_id"] for hit in hits}) == len(hits)
    assert hits[0]["path"] == "data/history/papermaking-and-printing.md"


# -- rebuilding a store from the ledger ---------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [("local", "milvus"), ("milvus", "milvus"), ("milvus", "local")])
def test_rebuild_refills_a_store_from_the_ledger_without_embedding(workdir, ollama_server, request, first, second):
    host = ollama_server.url
    run(["index", "data", "--store", store_url(request, first)], cwd=workdir, host=host)
    # Keyword queries of content words: where common words weigh in, FTS5's and Milvus's bm25
    # order hits differently (see test_store_milvus.py).
    queries = [(query, "vector") for query, _ in EXAMPLE_QUERIES[:4]] + [
        (query, "keyword") for query in ("sourdough starter flour", "红烧肉", "成都 火锅")]
    before = {q: citations(search_json(workdir, host, q[0], "--mode", q[1], "--chunks")) for q in queries}
    target = store_url(request, second)  # a fresh collection for milvus

    ollama_server.reset()
    run(["rebuild", "--store", target], cwd=workdir, host=host)
    assert ollama_server.embed_texts == []  # vectors came from the ledger, not the embedder
    status = status_json(workdir, host)
    assert_store_agrees(status, second)
    if second == "milvus":
        assert status["store"]["location"] == target
    after = {q: citations(search_json(workdir, host, q[0], "--mode", q[1], "--chunks")) for q in queries}
    assert after == before


# -- the library --------------------------------------------------------------------------------


def test_the_library_opens_an_index_on_a_store_and_keeps_to_it(workdir, ollama_server, store):
    from semsearch import Index
    from semsearch.errors import SemsearchError

    host, index_dir = ollama_server.url, workdir / ".semsearch"
    with Index.open(index_dir, store=store, ollama_host=host) as index:
        index.index([str(workdir / "data" / "tea"), str(workdir / "data" / "cooking")])
        hits = index.search("types of Chinese tea", k=3, mode="vector")
        assert len(hits) == 3 and hits[0].path.endswith("tea/chinese-tea.md")
        assert index.search("sourdough", k=2, mode="keyword")[0].path.endswith("cooking/sourdough-bread.md")
    with Index.open(index_dir, ollama_host=host) as index:  # the recorded store, without naming it
        status = index.status()
        assert status.store.kind == store.split(":")[0] and status.store.in_sync
        assert status.store.store_chunks == status.chunks > 0
        assert index.search("红烧肉", k=1, mode="hybrid")[0].path.endswith("cooking/hongshao-rou.md")
    other = "local" if store != "local" else "milvus://127.0.0.1:1/elsewhere"
    with pytest.raises(SemsearchError, match="rebuild"):
        Index.open(index_dir, store=other, ollama_host=host)
