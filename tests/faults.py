"""Shared plumbing of the fault tests: an instant Ollama-protocol server, CLI runs, and index checks.

The instant server is benchmarks/_server.py in a subprocess: the same protocol as the test
server, with vectors looked up instead of computed, so a fault test spends its time on the
writes it interrupts rather than on the model.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def instant_ollama():
    """URL of an Ollama-protocol server that answers every embedding at once (module-wide)."""
    yield from _lookup_server(0.0)


@pytest.fixture(scope="module")
def slow_ollama():
    """URL of the same server spending 20 ms per text, as a slow embedder does: the text phase of an
    indexing run runs well ahead of its vectors, so a kill lands between the two (module-wide)."""
    yield from _lookup_server(0.02)


def _lookup_server(delay_per_text: float):
    process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "_server.py"), str(delay_per_text)],
                               cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = process.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    yield url
    process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cli_env(host: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("SEMSEARCH_INDEX", "SEMSEARCH_TOKEN")}
    env["OLLAMA_HOST"] = host
    return env


def run_cli(args: list[str], *, cwd: Path, host: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "semsearch", *args], cwd=cwd, env=cli_env(host),
                            capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def kill(process: subprocess.Popen) -> bool:
    """SIGKILL `process` unless it already ended; True when the kill landed on a running process."""
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait()
    return process.returncode == -signal.SIGKILL


def integrity(index_dir: Path) -> str:
    with sqlite3.connect(index_dir / "semsearch.db", timeout=30) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def stored_documents(index_dir: Path, kind: str) -> dict[str, str]:
    """File name (file; the test folders are flat) or id (text) → content sha256 of every document of `kind`."""
    with sqlite3.connect(f"file:{index_dir / 'semsearch.db'}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute("SELECT path, sha256 FROM documents WHERE kind = ?", (kind,)).fetchall()
    return {(Path(path).name if kind == "file" else path): sha for path, sha in rows}


def temp_files(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.glob(".vectors-*.tmp"))


def check_opens_and_agrees(index_dir: Path, host: str, query: str = "notes about tea") -> dict:
    """Open the index as a user would and check FAISS against SQLite; returns facts for the caller.

    A stale FAISS file is repaired on open (invariant 3): after the first search the status must
    be in sync. The search must answer whenever there is anything to find. FAISS holds exactly the
    chunks that have a vector: a chunk still waiting for one (two-phase indexing) is never in it,
    and every chunk, pending or not, is in the keyword table.
    """
    from semsearch import Index

    assert integrity(index_dir) == "ok"
    with Index.open(index_dir, create=False, ollama_host=host) as index:
        before = index.status()
        hits = index.search(query, k=5, mode="vector") if before.chunks else []
        after = index.status()
        vectors = index.vectors()
        with_vectors = after.chunks - after.pending_chunks
        assert vectors.ntotal == with_vectors, (vectors.ntotal, after)
        assert after.in_sync, after
        assert bool(hits) == (with_vectors > 0)
        everything = index.search(query, k=with_vectors, mode="vector") if with_vectors else []
    with sqlite3.connect(f"file:{index_dir / 'semsearch.db'}?mode=ro", uri=True, timeout=30) as conn:
        pending = {r[0] for r in conn.execute("SELECT id FROM chunks WHERE length(vector) = 0")}
        keyword_rows = conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
    assert len(pending) == after.pending_chunks and keyword_rows == after.chunks
    assert everything or not with_vectors
    assert not {hit.chunk_id for hit in everything} & pending
    return {"documents": after.documents, "chunks": after.chunks, "repaired": not before.in_sync,
            "hits": [(hit.path, hit.text) for hit in hits], "faiss_type": after.faiss_type,
            "pending": after.pending_chunks}


def snapshot(index_dir: Path, host: str, queries: tuple[str, ...]) -> dict:
    """What a user sees of an index: documents, chunk texts, and the hits of some queries."""
    from semsearch import Index

    with Index.open(index_dir, create=False, ollama_host=host) as index:
        with sqlite3.connect(f"file:{index_dir / 'semsearch.db'}?mode=ro", uri=True) as conn:
            docs = sorted(conn.execute("SELECT kind, path, sha256 FROM documents").fetchall())
            chunks = sorted(conn.execute("SELECT text FROM chunks").fetchall())
        hits = {q: [(h.path.rsplit("/", 1)[-1], h.text, round(h.score, 4)) for h in index.search(q, k=5)]
                for q in queries}
        return {"documents": docs, "chunks": chunks, "hits": hits, "in_sync": index.status().in_sync}


def wait_for_line(stream, prefix: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no line starting with {prefix!r}")


def status_json(index_dir: Path, cwd: Path, host: str) -> dict:
    return json.loads(run_cli(["status", "--json", "-i", str(index_dir)], cwd=cwd, host=host).stdout)
