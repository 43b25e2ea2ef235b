"""Shared test data and helpers: the demo corpus and its example queries, the CLI runner, an
in-process embedder for tests that need no HTTP, and documents ready for the store."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.embed.base import EmbedderInfo, normalize
from semsearch.embed.presets import PRESETS
from semsearch.store import NewDocument
from semsearch.types import Chunk

DATA = Path(__file__).resolve().parent.parent / "data"

# (query, relpath of the document that must rank first). Includes Chinese → English and
# English → Chinese queries; the README's quickstart uses the same ones.
EXAMPLE_QUERIES = [
    ("Rust 中 Send 和 Sync trait 的作用", "programming/rust-ownership.md"),
    ("invention of paper in China", "history/papermaking-and-printing.md"),
    ("types of Chinese tea", "tea/chinese-tea.md"),
    ("红烧肉怎么炒糖色", "cooking/hongshao-rou.md"),
    ("how to fix a flat bicycle tire", "cycling/bicycle-maintenance.txt"),
    ("用双筒望远镜能看到哪些星星", "astronomy/stargazing-beginners.html"),
]


def top_relpath(hits, root: Path) -> str | None:
    """The first hit's path relative to `root` (POSIX), or None without hits."""
    if not hits:
        return None
    return Path(hits[0].path).resolve().relative_to(root.resolve()).as_posix()


# -- the command line ----------------------------------------------------------------------------


def run(args, *, cwd, host, check=True, env=None, timeout=600):
    """`python -m semsearch ARGS` in `cwd` against the Ollama server at `host`; with `check`, a
    non-zero exit fails the test showing both streams."""
    full_env = {key: value for key, value in os.environ.items() if key != "SEMSEARCH_INDEX"}
    full_env.update({"OLLAMA_HOST": host, **(env or {})})
    result = subprocess.run([sys.executable, "-m", "semsearch", *args], cwd=cwd, env=full_env,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_one_clean_line(result, *needles):
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# -- without HTTP --------------------------------------------------------------------------------

_WORDS = re.compile(r"[a-z0-9]+|[^\W\d_a-z]", re.UNICODE)


class HashingEmbedder:
    """A deterministic in-process Embedder: hashed bag-of-words counts (each CJK character is a
    word), L2-normalised. Texts sharing more words are closer; texts sharing none are orthogonal
    unless two words collide in one of the `dimensions` buckets."""

    def __init__(self, dimensions: int = 256):
        self.dimensions = dimensions
        self.calls: list[tuple[tuple[str, ...], str]] = []

    def info(self) -> EmbedderInfo:
        return EmbedderInfo("test", "hashed-words", self.dimensions, 512, PRESETS["none"])

    def embed(self, texts: Sequence[str], kind: str) -> np.ndarray:
        self.calls.append((tuple(texts), kind))
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORDS.findall(text.lower()):
                vectors[row, zlib.crc32(word.encode("utf-8")) % self.dimensions] += 1.0
        return normalize(vectors)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_document(path: str, texts: Sequence[str], embedder: HashingEmbedder, *, kind: str = "text",
                 metadata: dict[str, Any] | None = None, headings: tuple[str, ...] = (),
                 title: str = "") -> NewDocument:
    """A document whose chunks are `texts` (one per line, in order), embedded by `embedder`."""
    chunks, offset = [], 0
    for ordinal, text in enumerate(texts):
        chunks.append(Chunk(ordinal=ordinal, text=text, char_start=offset, char_end=offset + len(text),
                            line_start=ordinal + 1, line_end=ordinal + 1, heading_path=headings))
        offset += len(text) + 1
    body = "\n".join(texts)
    return NewDocument(
        path=path, kind=kind, size=len(body.encode("utf-8")), mtime_ns=0, sha256=text_sha256(body), title=title,
        extractor="text", metadata=dict(metadata or {}), chunks=tuple(chunks),
        text_hashes=tuple(text_sha256(t) for t in texts),
        vectors=embedder.embed(list(texts), "document") if texts else np.zeros((0, embedder.dimensions), np.float32),
    )


def write_notes(folder: Path, count: int) -> None:
    """`count` short Markdown notes over eight topics: a folder with enough files for a run to interrupt."""
    folder.mkdir()
    topics = ["tea", "bread", "bicycles", "stars", "rivers", "gardens", "trains", "music"]
    for i in range(count):
        topic = topics[i % len(topics)]
        (folder / f"note-{i:03d}.md").write_text(
            f"# Note {i}\n\nThis note number {i} is about {topic}. It mentions item {i * 7} and {topic}.\n",
            encoding="utf-8",
        )


# An index written by schema 3 (documents keyed by indexed root + relative path), with the small
# folder it was built from: see tests/data/index-v3.
V3_INDEX = Path(__file__).resolve().parent / "data" / "index-v3"


def copy_v3_index(home: Path) -> Path:
    """The schema-3 fixture laid out under `home` (its notes and `.semsearch`); returns the index directory."""
    shutil.copytree(V3_INDEX / "notes", home / "notes")
    index_dir = home / ".semsearch"
    index_dir.mkdir()
    for name in ("semsearch.db", "vectors.faiss"):
        shutil.copy(V3_INDEX / name, index_dir / name)
    return index_dir


def _count(index_dir: Path, sql: str) -> int:
    """`sql`'s count in an index's database, read-only and outside its locking (0 before it exists)."""
    try:
        with sqlite3.connect(f"file:{index_dir / 'semsearch.db'}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.Error:
        return 0


def committed(index_dir: Path) -> int:
    """Documents committed to an index so far."""
    return _count(index_dir, "SELECT count(*) FROM documents")


def cli_env(host: str) -> dict[str, str]:
    """The environment of a CLI subprocess against `host`, as a colour terminal would give it."""
    env = {key: value for key, value in os.environ.items() if key not in ("SEMSEARCH_INDEX", "NO_COLOR")}
    env.update({"OLLAMA_HOST": host, "TERM": "xterm-256color"})
    return env


def embedded(index_dir: Path) -> int:
    """Chunks committed with their vector so far."""
    return _count(index_dir, "SELECT count(*) FROM chunks WHERE length(vector) > 0")


def count_answers(server) -> list[tuple[float, int]]:
    """(time, texts) of every /api/embed answer the server has finished computing."""
    answers: list[tuple[float, int]] = []
    embed = server.embed

    def counting(body: dict) -> dict:
        result = embed(body)
        answers.append((time.monotonic(), len(result["embeddings"])))
        return result

    server.embed = counting
    return answers


def index_until_server_stops(server, cwd: Path, until) -> subprocess.CompletedProcess:
    """`semsearch index notes --batch 8` in `cwd` against `server`, which is stopped as soon as
    `until()` holds (the run must still be going); returns the finished run."""
    try:
        process = subprocess.Popen([sys.executable, "-m", "semsearch", "index", "notes", "--batch", "8"],
                                   cwd=cwd, env=cli_env(server.url), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while not until():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        server.stop()
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
