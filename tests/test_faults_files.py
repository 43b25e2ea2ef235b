"""Fault matrix, index files: a damaged semsearch.db, a vectors.faiss from elsewhere, a stray -wal.

SQLite damage must be reported with the fix (one line, exit 1, no traceback); a FAISS file that
is not the one SQLite was stamped with must be rebuilt from SQLite, never searched; a WAL file
left behind must be replayed when valid and ignored when garbage. Anything run against a damaged
file goes through a subprocess, so a crash inside SQLite or FAISS would show as a signal.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from semsearch import Index
from semsearch.embed.ollama import OllamaEmbedder
from semsearch.errors import IndexCorruptError

MODEL = "qwen3-embedding:0.6b"
TOPICS = [
    "green tea is pan-fired to stop oxidation",
    "a flat bicycle tyre is patched after finding the puncture",
    "binoculars show the moons of Jupiter",
    "paper was invented in China during the Han dynasty",
    "sourdough bread rises with wild yeast",
    "the harbour crane lifted forty containers",
    "glaciers carve U-shaped valleys",
    "violins are tuned in perfect fifths",
    "honeybees dance to show where flowers are",
    "a lighthouse keeper trims the lamp wick",
]


def write_notes(folder: Path, topics: list[str]) -> None:
    folder.mkdir(parents=True)
    for number, topic in enumerate(topics):
        (folder / f"note-{number:02d}.txt").write_text(f"Note about {topic}.\n", encoding="utf-8")


def build(tmp_path: Path, url: str, name: str, topics: list[str], **options) -> tuple[Path, Path]:
    folder = tmp_path / f"{name}-docs"
    write_notes(folder, topics)
    index_dir = tmp_path / name
    with Index.open(index_dir, embedder=OllamaEmbedder(MODEL, host=url, **options)) as index:
        index.index([folder])
    return folder, index_dir


def cli(args: list[str], url: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "SEMSEARCH_INDEX"}
    env["OLLAMA_HOST"] = url
    return subprocess.run([sys.executable, "-m", "semsearch", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def assert_one_clean_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr)  # a signal would be negative
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def top_note(index_dir: Path, url: str, query: str) -> str:
    found = cli(["search", query, "-i", str(index_dir), "--json", "-k", "1"], url)
    assert found.returncode == 0, found.stderr
    answer = json.loads(found.stdout)
    hits = answer if isinstance(answer, list) else answer.get("results") or answer.get("hits")
    return Path(hits[0]["path"]).name


@pytest.fixture
def notes(tmp_path, ollama_server):
    return build(tmp_path, ollama_server.url, "idx", TOPICS)


# -- semsearch.db ---------------------------------------------------------------------------

def test_truncated_database_says_to_index_again(notes, ollama_server):
    _, index_dir = notes
    db = index_dir / "semsearch.db"
    with open(db, "r+b") as handle:
        handle.truncate(db.stat().st_size // 2)
    with pytest.raises(IndexCorruptError, match="damaged"):
        Index.open(index_dir, create=False)
    result = cli(["search", "green tea", "-i", str(index_dir)], ollama_server.url)
    assert_one_clean_line(result, "is damaged", "semsearch index")


def _chunk_pages(db: Path) -> list[int]:
    """Page numbers (1-based) of the chunks table's b-tree, found by walking it from its root."""
    with sqlite3.connect(db) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'chunks'").fetchone()[0]
    data = db.read_bytes()
    pages, todo = [], [root]
    while todo:
        number = todo.pop()
        pages.append(number)
        start = (number - 1) * page_size
        kind = data[start]
        if kind == 0x05:  # interior table page: child pointers, then the right-most child
            cells = int.from_bytes(data[start + 3 : start + 5], "big")
            todo.append(int.from_bytes(data[start + 8 : start + 12], "big"))
            for cell in range(cells):
                offset = int.from_bytes(data[start + 12 + 2 * cell : start + 14 + 2 * cell], "big")
                todo.append(int.from_bytes(data[start + offset : start + offset + 4], "big"))
    return pages


def test_bit_flipped_pages_are_reported_not_a_traceback(notes, ollama_server):
    _, index_dir = notes
    db = index_dir / "semsearch.db"
    with sqlite3.connect(db) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(db.read_bytes())
    for page in _chunk_pages(db):
        data[(page - 1) * page_size] ^= 0xFF  # the b-tree page type: no longer a page SQLite knows
    db.write_bytes(bytes(data))

    with Index.open(index_dir, create=False, ollama_host=ollama_server.url) as index:
        with pytest.raises(IndexCorruptError, match="damaged"):
            index.search("green tea")
    result = cli(["search", "green tea", "-i", str(index_dir)], ollama_server.url)
    assert_one_clean_line(result, "is damaged", "semsearch index")


# -- a stray write-ahead log ----------------------------------------------------------------

def test_valid_wal_left_behind_is_replayed(tmp_path, notes, ollama_server):
    folder, index_dir = notes
    (folder / "late.txt").write_text("Note about a kingfisher diving for minnows.\n", encoding="utf-8")
    copy = tmp_path / "copy"
    copy.mkdir()
    with Index.open(index_dir, create=False, ollama_host=ollama_server.url) as index:
        index.index([folder])
        # As if the process died now: the last commits live only in semsearch.db-wal.
        assert (index_dir / "semsearch.db-wal").stat().st_size > 0
        for name in ("semsearch.db", "semsearch.db-wal", "vectors.faiss"):
            shutil.copy2(index_dir / name, copy / name)
    assert top_note(copy, ollama_server.url, "kingfisher diving") == "late.txt"
    status = json.loads(cli(["status", "-i", str(copy), "--json"], ollama_server.url).stdout)
    assert status["documents"] == len(TOPICS) + 1 and status["in_sync"]


def test_garbage_wal_left_behind_is_ignored(notes, ollama_server):
    _, index_dir = notes
    (index_dir / "semsearch.db-wal").write_bytes(os.urandom(64 * 1024))
    assert top_note(index_dir, ollama_server.url, "moons of Jupiter") == "note-02.txt"
    status = json.loads(cli(["status", "-i", str(index_dir), "--json"], ollama_server.url).stdout)
    assert status["documents"] == len(TOPICS) and status["in_sync"]


# -- vectors.faiss ---------------------------------------------------------------------------

def test_faiss_of_another_index_with_same_dims_and_count_is_rebuilt(tmp_path, notes, ollama_server):
    _, index_dir = notes
    # Same dimensions, count, ids and file size; the vectors belong to other notes.
    _, other = build(tmp_path, ollama_server.url, "other", list(reversed(TOPICS)))
    assert (other / "vectors.faiss").stat().st_size == (index_dir / "vectors.faiss").stat().st_size
    shutil.copy2(other / "vectors.faiss", index_dir / "vectors.faiss")
    with Index.open(index_dir, create=False, ollama_host=ollama_server.url) as index:
        hits = index.search("moons of Jupiter", k=1)
        assert Path(hits[0].path).name == "note-02.txt"
        assert index.repaired and "rebuilt" in index.repaired
    assert top_note(index_dir, ollama_server.url, "glaciers carve valleys") == "note-06.txt"


def test_faiss_of_another_index_with_other_dims_is_rebuilt(tmp_path, notes, ollama_server):
    _, index_dir = notes
    _, other = build(tmp_path, ollama_server.url, "other", TOPICS, dimensions=128)
    shutil.copy2(other / "vectors.faiss", index_dir / "vectors.faiss")
    assert top_note(index_dir, ollama_server.url, "moons of Jupiter") == "note-02.txt"
    status = json.loads(cli(["status", "-i", str(index_dir), "--json"], ollama_server.url).stdout)
    assert status["in_sync"] and status["faiss_vectors"] == len(TOPICS)


def test_garbage_faiss_of_the_stamped_size_is_rebuilt_not_loaded(notes, ollama_server):
    _, index_dir = notes
    faiss_path = index_dir / "vectors.faiss"
    faiss_path.write_bytes(os.urandom(faiss_path.stat().st_size))
    assert top_note(index_dir, ollama_server.url, "violins tuned in fifths") == "note-07.txt"
