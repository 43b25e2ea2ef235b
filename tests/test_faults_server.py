"""Fault matrix, embedding server: an Ollama (or OpenAI-compatible) server that answers badly.

Each row makes the test server misbehave while a folder is indexed, then checks what a user
would notice: one clear error (or a retry that succeeds), no bad vector in SQLite, and an index
that still opens, searches and reports itself in sync.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from semsearch import Index
from semsearch.embed.ollama import OllamaEmbedder
from semsearch.embed.openai import OpenAIEmbedder
from semsearch.errors import EmbedderError, EmbedderTimeoutError, EmbedderUnavailableError

MODEL = "qwen3-embedding:0.6b"
DIMS = 384

FIRST = "# Tea\n\nGreen tea is steamed or pan-fired soon after picking, which keeps its leaves green.\n"
LATER = {
    "bikes.md": "# Bicycles\n\nA flat tyre is fixed by finding the puncture and patching the inner tube.\n",
    "stars.txt": "Binoculars show the moons of Jupiter and many star clusters on a dark night.\n",
}


def embedder(url: str, *, timeout: float = 30.0, retries: int = 1) -> OllamaEmbedder:
    return OllamaEmbedder(MODEL, host=url, timeout=timeout, retries=retries, backoff=0.01)


@pytest.fixture
def indexed(tmp_path, ollama_server):
    """A folder with one indexed file, and two more files written after it was indexed."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "tea.md").write_text(FIRST, encoding="utf-8")
    index_dir = tmp_path / "idx"
    with Index.open(index_dir, embedder=embedder(ollama_server.url)) as index:
        index.index([folder])
    for name, text in LATER.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder, index_dir


def stored_vectors(index_dir: Path) -> tuple[list[str], np.ndarray]:
    """(file names of stored documents, every stored vector) read straight from SQLite; chunks
    still waiting for their vector (an empty BLOB) have none."""
    with sqlite3.connect(index_dir / "semsearch.db") as conn:
        paths = sorted(Path(row[0]).name for row in conn.execute("SELECT path FROM documents"))
        blobs = [row[0] for row in conn.execute("SELECT vector FROM chunks WHERE length(vector) > 0")]
    assert all(len(blob) == DIMS * 4 for blob in blobs), "a stored vector has the wrong size"
    return paths, np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), DIMS)


def assert_index_healthy(index_dir: Path, url: str, expected_paths: list[str], pending: int = 0) -> None:
    """Nothing bad stored; the index opens, answers, and FAISS agrees with SQLite (which holds
    `pending` chunks still waiting for their vector)."""
    paths, vectors = stored_vectors(index_dir)
    assert paths == expected_paths
    assert np.isfinite(vectors).all()
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    with Index.open(index_dir, embedder=embedder(url), create=False) as index:
        hits = index.search("how is green tea made", k=3)
        assert hits and Path(hits[0].path).name == "tea.md"
        status = index.status()
        assert status.in_sync and status.chunks - pending == len(vectors) == status.faiss_vectors
        assert status.pending_chunks == pending


# Each fault lasts for every request of the run (retries included): the run must fail clearly.
FAILING = {
    "wrong_dimensions": (EmbedderError, "expected 384 dimensions"),
    "fewer": (EmbedderError, "for 2 texts"),
    "nan": (EmbedderError, "NaN, infinite"),
    "inf": (EmbedderError, "NaN, infinite"),
    "not_json": (EmbedderError, "not a valid response"),
    "truncated_json": (EmbedderError, "not a valid response"),
    "error_field": (EmbedderError, "llama runner process has terminated"),
    "reset": (EmbedderUnavailableError, "broke the connection in the middle of an answer"),
    "stall": (EmbedderTimeoutError, "did not answer within 1 s"),
}


@pytest.mark.parametrize("fault", sorted(FAILING))
def test_misbehaving_server_fails_clearly_and_stores_nothing_bad(indexed, ollama_server, fault):
    folder, index_dir = indexed
    error, message = FAILING[fault]
    ollama_server.embed_fault, ollama_server.embed_fault_next = fault, 1000
    ollama_server.stall_seconds = 4.0
    # A short timeout only where it is the point: a busy CPU must not turn other rows into timeouts.
    timeout = 1.0 if fault == "stall" else 60.0
    with Index.open(index_dir, embedder=embedder(ollama_server.url, timeout=timeout), create=False) as index:
        with pytest.raises(error) as caught:
            index.index([folder])
    text = str(caught.value)
    assert message in text and "\n" not in text
    ollama_server.embed_fault_next = 0
    # The text phase went on: both new files are found by keyword, their chunks wait for vectors.
    assert_index_healthy(index_dir, ollama_server.url, ["bikes.md", "stars.txt", "tea.md"], pending=2)

    # The server recovers: the next run embeds what failed, with good vectors.
    with Index.open(index_dir, embedder=embedder(ollama_server.url), create=False) as index:
        report = index.index([folder])
    assert (report.files_unchanged, report.chunks_embedded) == (3, 2)
    assert_index_healthy(index_dir, ollama_server.url, ["bikes.md", "stars.txt", "tea.md"])


@pytest.mark.parametrize("fault", ["stall", "reset", "rate_limit"])
def test_passing_fault_is_retried_and_the_run_succeeds(indexed, ollama_server, fault):
    folder, index_dir = indexed
    ollama_server.embed_fault, ollama_server.embed_fault_next = fault, 1
    ollama_server.stall_seconds = 8.0
    ollama_server.retry_after = "0"
    before = len(ollama_server.requests)
    timeout = 3.0 if fault == "stall" else 60.0
    with Index.open(index_dir, embedder=embedder(ollama_server.url, timeout=timeout), create=False) as index:
        report = index.index([folder])
    assert report.files_added == 2
    embeds = [path for path, _ in ollama_server.requests[before:] if path == "/api/embed"]
    assert len(embeds) == 2  # the failed request and its retry
    assert_index_healthy(index_dir, ollama_server.url, ["bikes.md", "stars.txt", "tea.md"])


def test_rate_limit_waits_as_long_as_retry_after_says(ollama_server):
    ollama_server.embed_fault, ollama_server.embed_fault_next = "rate_limit", 1
    ollama_server.retry_after = "1.5"
    client = OllamaEmbedder(MODEL, host=ollama_server.url, retries=1, backoff=0.0)
    started = time.monotonic()
    vectors = client.embed(["a short text"], "document")
    waited = time.monotonic() - started
    assert vectors.shape == (1, DIMS)
    assert waited >= 1.5  # backoff 0 would have retried at once


def test_rate_limit_retry_after_is_capped(ollama_server, monkeypatch):
    monkeypatch.setattr("semsearch._http.RETRY_AFTER_CAP", 0.2)
    ollama_server.embed_fault, ollama_server.embed_fault_next = "rate_limit", 1
    ollama_server.retry_after = "3600"
    client = OllamaEmbedder(MODEL, host=ollama_server.url, retries=1, backoff=0.0)
    started = time.monotonic()
    assert client.embed(["a short text"], "document").shape == (1, DIMS)
    assert time.monotonic() - started < 30


def test_rate_limit_that_never_ends_names_the_status(ollama_server):
    ollama_server.embed_fault, ollama_server.embed_fault_next = "rate_limit", 1000
    ollama_server.retry_after = "0"
    client = OllamaEmbedder(MODEL, host=ollama_server.url, retries=2, backoff=0.0)
    with pytest.raises(EmbedderError, match="answered 429: too many requests"):
        client.embed(["a short text"], "document")
    assert [path for path, _ in ollama_server.requests].count("/api/embed") == 3


def _cli(args, cwd, host):
    env = {key: value for key, value in os.environ.items() if key != "SEMSEARCH_INDEX"}
    env.update({"OLLAMA_HOST": host})
    return subprocess.run([sys.executable, "-m", "semsearch", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("fault", ["not_json", "nan"])
def test_cli_reports_a_bad_answer_in_one_line_and_the_index_still_answers(indexed, ollama_server, fault):
    folder, index_dir = indexed
    ollama_server.embed_fault, ollama_server.embed_fault_next = fault, 1000
    result = _cli(["index", str(folder), "-i", str(index_dir)], folder.parent, ollama_server.url)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no vector was stored" in lines[0], result.stderr
    ollama_server.embed_fault_next = 0
    found = _cli(["search", "how is green tea made", "-i", str(index_dir), "--json"], folder.parent,
                 ollama_server.url)
    assert found.returncode == 0, found.stderr
    status = json.loads(_cli(["status", "-i", str(index_dir), "--json"], folder.parent, ollama_server.url).stdout)
    assert status["in_sync"] and status["documents"] == 3 and status["pending_chunks"] == 2


# -- the OpenAI-compatible provider: exact answers through MockTransport ----------------------

def _openai_server(vectors_for):
    def handler(request: httpx.Request) -> httpx.Response:
        texts = json.loads(request.content)["input"]
        rows = vectors_for(texts)
        body = json.dumps({"data": [{"index": i, "embedding": row} for i, row in enumerate(rows)]})
        return httpx.Response(200, content=body.encode(), headers={"content-type": "application/json"})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda texts: [[1.0, math.nan, 0.0]] * len(texts), "NaN, infinite"),
        (lambda texts: [[1.0, math.inf, 0.0]] * len(texts), "NaN, infinite"),
        (lambda texts: [[0.0, 0.0, 0.0]] * len(texts), "only zero numbers"),
    ],
    ids=["nan", "inf", "zero"],
)
def test_openai_provider_rejects_bad_vectors(answer, message):
    calls = {"n": 0}

    def vectors_for(texts):
        calls["n"] += 1
        return [[1.0, 0.0, 0.0]] if calls["n"] == 1 else answer(texts)  # the dimension probe is fine

    client = OpenAIEmbedder("m", base_url="http://server/v1", api_key="", retries=0,
                            transport=_openai_server(vectors_for))
    assert client.info().dimensions == 3
    with pytest.raises(EmbedderError, match=message):
        client.embed(["one", "two", "three"], "document")
