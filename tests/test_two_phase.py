"""Two-phase indexing: a file's text and keyword terms are committed at once, its vectors follow.

Keyword search answers for new files while the embedder is slow or gone; vector and hybrid
search use the chunks embedded so far and say how many wait; `status` counts them; the next run
embeds exactly what is pending, even when no file changed. Real files, real SQLite and FAISS,
the Ollama-protocol test server (which records every text it is sent).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from semsearch import Index
from semsearch.errors import EmbedderError, InputTooLongError
from semsearch.store import SCHEMA_VERSION
from semsearch.types import Chunk, embed_text
from tests.helpers import HashingEmbedder, assert_one_clean_line, copy_v3_index, run
from tests.ollama_server import OllamaTestServer
from tests.helpers import cli_env, count_answers, index_until_server_stops


def _write_folder(folder: Path, count: int, word: str = "lighthouse") -> list[str]:
    """`count` one-chunk notes, each with a word found in no other; returns those words."""
    folder.mkdir()
    words = []
    for i in range(count):
        words.append(f"{word}{i:03d}")
        (folder / f"note-{i:03d}.md").write_text(
            f"# Note {i}\n\nThe keeper wrote entry {words[-1]} about tides, fog and ships.\n", encoding="utf-8")
    return words


def _chunk_texts(index_dir: Path, *, pending: bool) -> list[str]:
    """The texts of the chunks still waiting for a vector (or, not `pending`, of those with one),
    as the embedder is sent them, sorted."""
    with sqlite3.connect(f"file:{index_dir / 'semsearch.db'}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(f"SELECT heading_path, text FROM chunks WHERE length(vector) {'=' if pending else '>'} 0"
                            ).fetchall()
    return sorted(embed_text(Chunk(0, text, 0, 0, 0, 0, tuple(json.loads(heads)))) for heads, text in rows)


def _keyword_hit(index: Index, word: str) -> bool:
    return any(word in hit.text for hit in index.search(word, k=3, mode="keyword"))


def test_keyword_search_answers_within_seconds_while_the_embedder_is_slow(tmp_path, ollama_server):
    (tmp_path / "first").mkdir()
    (tmp_path / "first" / "tea.md").write_text("# Tea\n\nLongjing is a green tea.\n", encoding="utf-8")
    run(["index", "first"], cwd=tmp_path, host=ollama_server.url)
    words = _write_folder(tmp_path / "notes", 200)
    ollama_server.delay_per_text = 0.06  # 200 texts: over 12 s of embedding, 1 s per request of 16
    env = cli_env(ollama_server.url)
    # 5 s on a machine at rest; on a loaded one, plus what starting a CLI process costs right now,
    # twice (the indexer and the search that finds the word each start one). Capped below the
    # 12 s of embedding, so a run that waited for the vectors still fails.
    started = time.monotonic()
    run(["status"], cwd=tmp_path, host=ollama_server.url)
    allowed = min(5 + 2 * (time.monotonic() - started), 11)
    started = time.monotonic()
    indexing = subprocess.Popen([sys.executable, "-m", "semsearch", "index", "notes", "--batch", "16"],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found_after = None
        while found_after is None and time.monotonic() - started < 60:
            # The last file of the walk: every file before it is committed too.
            result = run(["search", words[-1], "--mode", "keyword", "-k", "1"], cwd=tmp_path,
                         host=ollama_server.url, check=False)
            if result.returncode == 0 and words[-1] in result.stdout:
                found_after = time.monotonic() - started
        assert found_after is not None and found_after < allowed, (found_after, allowed)
        assert indexing.poll() is None, "the embedder was meant to be still busy"

        pending = []
        while indexing.poll() is None:
            pending.append(json.loads(run(["status", "--json"], cwd=tmp_path, host=ollama_server.url).stdout)
                           ["pending_chunks"])
    finally:
        stdout, stderr = indexing.communicate(timeout=300)
    assert indexing.returncode == 0, stderr
    pending.append(json.loads(run(["status", "--json"], cwd=tmp_path, host=ollama_server.url).stdout)
                   ["pending_chunks"])
    assert pending[0] > 0 and pending[-1] == 0, pending
    assert pending == sorted(pending, reverse=True), pending  # falling as vectors arrive
    assert len(set(pending)) >= 3, pending
    assert "Chunks: 200 embedded" in stdout


def test_embedder_stopped_midway_keeps_keyword_complete_and_the_rerun_embeds_only_pending(tmp_path):
    words = _write_folder(tmp_path / "notes", 60)
    index_dir = tmp_path / ".semsearch"
    server = OllamaTestServer().start()
    server.delay_per_text = 0.1
    answers = count_answers(server)
    # Two requests of 8 answered, more under way.
    result = index_until_server_stops(server, tmp_path, lambda: len(answers) >= 2)
    pending = _chunk_texts(index_dir, pending=True)
    assert 0 < len(pending) < 60
    assert_one_clean_line(result, "cannot reach Ollama", "60 files indexed are kept and searchable by keyword",
                          f"{len(pending)} of 60 chunks wait for embeddings", "run the same command again")

    with OllamaTestServer() as again:
        with Index.open(index_dir, create=False, ollama_host=again.url) as index:
            assert all(_keyword_hit(index, word) for word in words)  # the keyword side is complete
            status = index.status()
            assert (status.documents, status.chunks, status.pending_chunks) == (60, 60, len(pending))
            assert status.in_sync and index.vectors().ntotal == 60 - len(pending)
        # No file changed since: the walk finds all unchanged, and the pending chunks are embedded.
        report = json.loads(run(["index", "notes", "--json"], cwd=tmp_path, host=again.url).stdout)
        assert (report["files_unchanged"], report["files_added"], report["chunks_embedded"]) == (60, 0, len(pending))
        assert sorted(again.embed_texts) == pending  # exactly the pending texts, each once
        status = json.loads(run(["status", "--json"], cwd=tmp_path, host=again.url).stdout)
        assert status["pending_chunks"] == 0 and status["in_sync"] and status["faiss_vectors"] == 60


def _generation(index_dir: Path) -> int:
    """How many write transactions the index has committed (each bumps meta.generation)."""
    with sqlite3.connect(f"file:{index_dir / 'semsearch.db'}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


class _AnsweredEmbedder(HashingEmbedder):
    """A HashingEmbedder whose requests can be waited for: `settle()` returns once every request
    sent so far has its answer, so a test does not depend on when the embedding threads run."""

    def __init__(self):
        super().__init__()
        self._idle = threading.Condition()
        self._busy = 0

    def embed(self, texts, kind):
        with self._idle:
            self._busy += 1
        try:
            return super().embed(texts, kind)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def settle(self, _progress=None) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout=10)
        time.sleep(0.002)  # the worker marks its future done just after `embed` returns


def test_vectors_that_arrive_between_batches_are_committed_with_the_next_batch(tmp_path):
    _write_folder(tmp_path / "notes", 48)  # one chunk per note: 12 batches of 4
    index_dir = tmp_path / ".semsearch"
    embedder = _AnsweredEmbedder()  # answers at once, even on a loaded machine: waited for at each file
    with Index.open(index_dir, embedder=embedder) as index:
        report = index.index([tmp_path / "notes"], batch_texts=4, on_progress=embedder.settle)
        status = index.status()
    assert (report.files_added, report.chunks_embedded, report.chunks_pending) == (48, 48, 0)
    assert status.in_sync and status.pending_chunks == 0 and status.faiss_vectors == 48
    # An embedder that answers at once: each batch's transaction also fills the vectors that came
    # back since the one before, and only the last answers (at most one per request in flight,
    # DEFAULT_IN_FLIGHT) are committed alone. A transaction per answer as well doubled the count.
    assert _generation(index_dir) <= 12 + 3 + 1


def test_an_embedder_that_keeps_up_gets_each_chunk_written_once_with_its_vector(tmp_path):
    _write_folder(tmp_path / "notes", 48)  # 12 batches of 4
    index_dir = tmp_path / ".semsearch"
    embedder = _AnsweredEmbedder()
    with Index.open(index_dir, embedder=embedder) as index:
        filled_later = []  # rows given their vector by an UPDATE after their text was committed
        index._store._conn.set_trace_callback(
            lambda sql: filled_later.append(sql) if sql.startswith("UPDATE chunks SET vector") else None)
        report = index.index([tmp_path / "notes"], batch_texts=4, on_progress=embedder.settle)
        index._store._conn.set_trace_callback(None)
        status = index.status()
    assert (report.chunks_embedded, report.chunks_reused, report.chunks_pending) == (48, 0, 0)
    assert status.in_sync and status.faiss_vectors == 48
    # Each batch's texts went to the embedder as it was read and came back before its commit; only
    # the last batch (committed at once, so keyword search has it when the run ends) is filled in after.
    assert len(filled_later) <= 4
    assert sorted(t for call, _ in embedder.calls for t in call) == _chunk_texts(index_dir, pending=False)


class _HeldEmbedder(HashingEmbedder):
    """Answers nothing until `release` is set (an embedder far slower than reading files)."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def embed(self, texts, kind):
        self.release.wait(timeout=20)
        return super().embed(texts, kind)


def test_while_the_embedder_lags_each_batch_is_committed_for_keyword_search_as_soon_as_it_is_read(tmp_path):
    _write_folder(tmp_path / "notes", 48)  # 12 batches of 4
    embedder = _HeldEmbedder()
    done_when_read: dict[int, int] = {}

    def progress(p):
        done_when_read.setdefault(p.files_read, p.files_done)
        if p.files_done == 48:
            embedder.release.set()  # the text phase is over: let the vectors come

    with Index.open(tmp_path / ".semsearch", embedder=embedder) as index:
        report = index.index([tmp_path / "notes"], batch_texts=4, on_progress=progress)
        status = index.status()
    # The first batch's texts were sent ahead and its commit waited for the next batch; its vectors
    # were late, so from then on each full batch is committed the moment it is read.
    assert [done_when_read[read] for read in (5, 9, 13, 45)] == [0, 8, 12, 44]
    assert (report.chunks_embedded, report.chunks_pending) == (48, 0) and status.faiss_vectors == 48


def test_ctrl_c_commits_every_file_read_so_far(tmp_path):
    words = _write_folder(tmp_path / "notes", 30)  # one batch of 64 texts would hold them all

    interrupted = []

    def interrupt_after_twenty(progress):
        if progress.files_read == 20 and not interrupted:
            interrupted.append(progress)
            raise KeyboardInterrupt  # what Ctrl-C raises on the indexing thread

    with Index.open(tmp_path / ".semsearch", embedder=HashingEmbedder()) as index:
        report = index.index([tmp_path / "notes"], on_progress=interrupt_after_twenty)
        status = index.status()
        found = [word for word in words if index.search(word, mode="keyword", k=1)]
    assert report.interrupted
    assert status.documents == 20 and len(found) == 20  # read before the interrupt: searchable by keyword
    assert status.in_sync and status.faiss_vectors + status.pending_chunks == status.chunks


class _ShortContextEmbedder(HashingEmbedder):
    """Refuses a batch holding a text of more than `limit` characters, naming it, as Ollama does
    past the model's context."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.refused = 0

    def embed(self, texts, kind):
        for position, text in enumerate(texts):
            if len(text) > self.limit:
                self.refused += 1
                raise InputTooLongError(f"the input length exceeds the context length ({len(text)})", index=position)
        return super().embed(texts, kind)


def test_a_chunk_the_model_finds_too_long_is_chunked_again_and_every_file_is_embedded(tmp_path):
    _write_folder(tmp_path / "notes", 24)
    long_text = " ".join(f"The tide table for day {day} lists high water at dawn and dusk." for day in range(40))
    (tmp_path / "notes" / "tides.md").write_text(f"# Tides\n\n{long_text}\n", encoding="utf-8")
    index_dir = tmp_path / ".semsearch"
    embedder = _ShortContextEmbedder(limit=700)
    with Index.open(index_dir, embedder=embedder) as index:
        report = index.index([tmp_path / "notes"], batch_texts=8)
        status = index.status()
        hits = index.search("tide table day 37", mode="keyword", k=3)
    assert embedder.refused >= 1  # the first chunking of tides.md was too long for the model
    assert (report.files_added, report.files_failed, report.chunks_pending) == (25, 0, 0)
    assert status.in_sync and status.pending_chunks == 0 and status.faiss_vectors == status.chunks
    assert all(len(text) <= 700 for call, _ in embedder.calls for text in call)
    assert hits and hits[0].path.endswith("tides.md") and "day 37" in hits[0].text


@pytest.fixture
def partly_embedded(tmp_path, ollama_server):
    """An index of `tea/` with vectors and `ships/` whose embedding failed (model gone): (home, ships words)."""
    tea = tmp_path / "tea"
    tea.mkdir()
    (tea / "longjing.md").write_text("# Longjing\n\nGreen tea from Hangzhou, pan-fired, brewed at 80 degrees.\n",
                                     encoding="utf-8")
    (tea / "puer.md").write_text("# Pu'er\n\nFermented tea from Yunnan, pressed into cakes and aged.\n",
                                 encoding="utf-8")
    words = _write_folder(tmp_path / "ships", 5, word="schooner")
    run(["index", "tea"], cwd=tmp_path, host=ollama_server.url)
    model = ollama_server.models.pop("qwen3-embedding:0.6b")
    failed = run(["index", "ships"], cwd=tmp_path, host=ollama_server.url, check=False)
    assert_one_clean_line(failed, "is not pulled", "5 files indexed are kept and searchable by keyword",
                          "5 of 7 chunks wait for embeddings")
    ollama_server.models["qwen3-embedding:0.6b"] = model
    return tmp_path, words


def test_vector_search_on_a_partly_embedded_index_uses_embedded_chunks_and_says_how_many_wait(partly_embedded,
                                                                                              ollama_server):
    home, words = partly_embedded
    with Index.open(home / ".semsearch", create=False, ollama_host=ollama_server.url) as index:
        result = index.search_detailed("ships in the fog and tides", k=10, mode="vector")
        assert (result.pending_chunks, result.chunks) == (5, 7)
        assert {Path(hit.path).parent.name for hit in result.hits} == {"tea"}  # only embedded chunks
        assert index.vectors().ntotal == 2 and index.status().in_sync
        hybrid = index.search_detailed(words[2], k=10, mode="hybrid")
        assert hybrid.pending_chunks == 5 and any(words[2] in hit.text for hit in hybrid.hits)  # by keyword
        assert index.status().pending_chunks == 5
        # Vector-mode context measures relevance against a sample of stored vectors: pending ones are not vectors.
        context = index.context("green tea", mode="vector")
        assert context.sources and context.pending_chunks == 5

    # Vector mode: only embedded chunks answer (hybrid, the default, also finds pending ones by keyword).
    human = run(["search", "ships in the fog", "--mode", "vector"], cwd=home, host=ollama_server.url)
    assert "5 of 7 chunks are still waiting for embeddings; results cover the rest" in human.stderr
    assert "ships/" not in human.stdout and "tea/" in human.stdout
    hits = json.loads(run(["search", "ships in the fog", "--mode", "vector", "--json"], cwd=home, host=ollama_server.url).stdout)
    assert hits and all(hit["pending_chunks"] == 5 for hit in hits)
    keyword = run(["search", words[0], "--mode", "keyword"], cwd=home, host=ollama_server.url)
    assert words[0] in keyword.stdout and "waiting for embeddings" not in keyword.stderr
    context = json.loads(run(["context", "green tea", "--json"], cwd=home, host=ollama_server.url).stdout)
    assert context["pending_chunks"] == 5 and context["sources"]
    status = run(["status"], cwd=home, host=ollama_server.url).stdout
    assert "7, 5 waiting for embeddings" in status
    assert json.loads(run(["status", "--json"], cwd=home, host=ollama_server.url).stdout)["pending_chunks"] == 5

    # The next run of any folder embeds the pending chunks, and vector search then finds them.
    ollama_server.embed_texts.clear()
    report = json.loads(run(["index", "tea", "--json"], cwd=home, host=ollama_server.url).stdout)
    assert report["chunks_embedded"] == 5 and len(ollama_server.embed_texts) == 5
    after = run(["search", "ships in the fog", "--mode", "vector"], cwd=home, host=ollama_server.url)
    assert "ships/" in after.stdout and "waiting for embeddings" not in after.stderr


def test_a_search_with_no_embedded_chunk_says_to_search_by_keyword(tmp_path, ollama_server):
    words = _write_folder(tmp_path / "ships", 3, word="brigantine")
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        index.add_texts([{"id": "seed", "text": "a first text, so the index records its embedder"}])
        index.delete_texts(["seed"])
        model = ollama_server.models.pop("qwen3-embedding:0.6b")
        with pytest.raises(EmbedderError):
            index.index([tmp_path / "ships"])
        ollama_server.models["qwen3-embedding:0.6b"] = model
        assert index.search(words[1], mode="vector") == []
        reason = index.explain_no_results(mode="vector")
        assert "none of the 3 chunks has its embedding yet" in reason and "--mode keyword" in reason
        assert _keyword_hit(index, words[1])


def test_an_index_from_before_two_phase_indexing_is_migrated_and_has_nothing_pending(tmp_path, ollama_server):
    home = tmp_path / "home"
    copy_v3_index(home)
    with Index.open(home / ".semsearch", ollama_host=ollama_server.url) as index:
        status = index.status()
        assert (status.schema_version, status.pending_chunks, status.chunks) == (SCHEMA_VERSION, 0, 5)
        assert index.search("opening hours", k=1)[0].path == "faq-1"
        assert index.status().in_sync
    with sqlite3.connect(home / ".semsearch" / "semsearch.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        plan = " ".join(row[3] for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM chunks WHERE length(vector) = 0"))
    assert "chunks_pending" in plan  # pending chunks are found without reading every row
