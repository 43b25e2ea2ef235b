"""The SQLite store: schema, migrations and every SQL statement of semsearch.

SQLite is the source of truth (DESIGN §2): documents, chunks, their vectors (float32 BLOBs,
already normalised) and the FTS5 keyword table. Chunk ids are AUTOINCREMENT so an id is never
reused, and each chunk id is also its FAISS id. Every write happens in one transaction that also
bumps `meta.generation`, which the FAISS file is stamped with.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semsearch import keyword
from semsearch.errors import DiskFullError, IndexCorruptError
from semsearch.options import DB_NAME
from semsearch.types import Chunk

SCHEMA_VERSION = 3
# Each step brings a database from the version before it to its own number (PRAGMA user_version).
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # v2: paged formats — a document says what its parts are (pages, cells), a chunk which one it is in.
    2: (
        "ALTER TABLE documents ADD COLUMN part_kind TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE chunks ADD COLUMN part INTEGER",
    ),
    # v3: HNSW cannot remove vectors; ids deleted from SQLite but still in vectors.faiss.
    3: ("CREATE TABLE IF NOT EXISTS faiss_tombstones (id INTEGER PRIMARY KEY)",),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    root TEXT NOT NULL,
    relpath TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    mtime_ns INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    extractor TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    indexed_at REAL NOT NULL,
    part_kind TEXT NOT NULL DEFAULT '',
    UNIQUE (root, relpath)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    line_start INTEGER NOT NULL,
    line_end INTEGER NOT NULL,
    heading_path TEXT NOT NULL DEFAULT '[]',
    text_sha256 TEXT NOT NULL,
    vector BLOB NOT NULL,
    part INTEGER
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
CREATE INDEX IF NOT EXISTS chunks_text_sha256 ON chunks(text_sha256);
-- Chunk ids still present in an HNSW vectors.faiss but deleted here (HNSW cannot remove),
-- written in the same transaction as the FAISS stamp.
CREATE TABLE IF NOT EXISTS faiss_tombstones (id INTEGER PRIMARY KEY);
"""
_FTS_TABLE = f"CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(terms, tokenize = '{keyword.FTS_TOKENIZER}')"


def _keyword_terms(heading_path: Sequence[str], text: str) -> str:
    """What the FTS table holds for a chunk: the analysed terms of its headings and text."""
    return keyword.analyze(" ".join((*heading_path, text)))


@dataclass(frozen=True)
class StoredDocument:
    """A documents row, as change detection needs it."""

    id: int
    root: str
    relpath: str
    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class NewDocument:
    """A document ready to be written: its identity, stat, and its chunks with vectors."""

    root: str
    relpath: str
    kind: str  # "file" | "text"
    size: int
    mtime_ns: int
    sha256: str
    title: str
    extractor: str
    metadata: dict[str, Any]
    chunks: tuple[Chunk, ...]
    text_hashes: tuple[str, ...]
    vectors: np.ndarray  # (len(chunks), dims) float32, normalised
    part_kind: str = ""


@dataclass(frozen=True)
class ChunkRow:
    """A chunk joined with its document, as search results need it."""

    chunk_id: int
    document_id: int
    text: str
    char_start: int
    char_end: int
    line_start: int
    line_end: int
    heading_path: tuple[str, ...]
    root: str
    relpath: str
    kind: str
    title: str
    metadata: dict[str, Any]
    part_kind: str = ""
    part: int | None = None
    ordinal: int = -1  # position of the chunk in its document


_CHUNK_ROW_COLUMNS = (
    "c.id, c.document_id, c.text, c.char_start, c.char_end, c.line_start, c.line_end, c.heading_path, "
    "d.root, d.relpath, d.kind, d.title, d.metadata, d.part_kind, c.part, c.ordinal"
)


def _chunk_row(r: tuple) -> ChunkRow:
    """A ChunkRow from a row selected with _CHUNK_ROW_COLUMNS."""
    return ChunkRow(
        chunk_id=r[0], document_id=r[1], text=r[2], char_start=r[3], char_end=r[4], line_start=r[5],
        line_end=r[6], heading_path=tuple(json.loads(r[7])), root=r[8], relpath=r[9], kind=r[10], title=r[11],
        metadata=json.loads(r[12]), part_kind=r[13], part=r[14], ordinal=r[15],
    )


@dataclass(frozen=True)
class WriteResult:
    """What one transaction changed, so the FAISS index can follow."""

    added_ids: np.ndarray  # int64
    added_vectors: np.ndarray  # float32
    removed_ids: np.ndarray  # int64
    generation: int


class Store:
    """One SQLite database in WAL mode, safe to share between threads (calls are serialised)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._conn = conn
            self._lock = threading.RLock()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            if self._user_version() == 0:
                with self._transaction():
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(_FTS_TABLE)
                    self._write_meta(conn, {"keyword_analysis": keyword.ANALYSIS})
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif self._user_version() < SCHEMA_VERSION:
                self._migrate()
        except sqlite3.DatabaseError as exc:
            if _is_disk_full(exc):
                raise DiskFullError(self.path.parent) from exc
            raise IndexCorruptError(f"cannot read the index database {self.path}: {exc}") from exc
        version = self._user_version()
        if version > SCHEMA_VERSION:
            raise IndexCorruptError(
                f"the index at {self.path.parent} was written by a newer semsearch (schema {version}); "
                "upgrade semsearch to open it"
            )

    def _migrate(self) -> None:
        """Bring an index written by an older semsearch up to SCHEMA_VERSION, one step per transaction."""
        for version in range(self._user_version() + 1, SCHEMA_VERSION + 1):
            with self._transaction() as conn:
                if self._user_version() >= version:  # another process migrated it meanwhile
                    continue
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={version}")
                self._write_meta(conn, {"schema_version": version})

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn

    def _user_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    class _Tx:
        def __init__(self, store: Store):
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._lock.acquire()
            try:
                self.store.conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.store._lock.release()
                raise
            return self.store.conn

        def __exit__(self, exc_type, exc, tb) -> None:
            conn = self.store.conn
            try:
                if exc_type is None:
                    try:
                        conn.execute("COMMIT")
                        return
                    except sqlite3.DatabaseError as commit_error:
                        exc = commit_error
                # SQLite may have rolled back by itself (SQLITE_FULL does); a second ROLLBACK would
                # raise and hide the reason.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if _is_disk_full(exc):
                    raise DiskFullError(self.store.path.parent) from exc
                if exc_type is None:
                    raise exc
            finally:
                self.store._lock.release()

    def _transaction(self) -> _Tx:
        return Store._Tx(self)

    def _query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple]:
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    # -- meta ----------------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return dict(self._query("SELECT key, value FROM meta"))

    def set_meta(self, values: dict[str, Any]) -> None:
        with self._transaction() as conn:
            self._write_meta(conn, values)

    @staticmethod
    def _write_meta(conn: sqlite3.Connection, values: dict[str, Any]) -> None:
        conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(key, str(value)) for key, value in values.items()],
        )

    def stamp_faiss(self, values: dict[str, Any], tombstones: Iterable[int]) -> None:
        """Record what vectors.faiss reflects (meta values) and its tombstones, in one transaction."""
        with self._transaction() as conn:
            self._write_meta(conn, values)
            conn.execute("DELETE FROM faiss_tombstones")
            conn.executemany("INSERT INTO faiss_tombstones (id) VALUES (?)", ((int(i),) for i in tombstones))

    def faiss_tombstones(self) -> np.ndarray:
        rows = self._query("SELECT id FROM faiss_tombstones")
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def generation(self) -> int:
        rows = self._query("SELECT value FROM meta WHERE key = 'generation'")
        return int(rows[0][0]) if rows else 0

    @staticmethod
    def _bump_generation(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        generation = (int(row[0]) if row else 0) + 1
        Store._write_meta(conn, {"generation": generation})
        return generation

    # -- documents -----------------------------------------------------------------------------

    def documents_under(self, root: str) -> dict[str, StoredDocument]:
        """All documents recorded for `root`, by relpath."""
        rows = self._query(
            "SELECT id, root, relpath, size, mtime_ns, sha256 FROM documents WHERE root = ?", (root,)
        )
        return {row[2]: StoredDocument(*row) for row in rows}

    def document(self, root: str, relpath: str) -> StoredDocument | None:
        rows = self._query(
            "SELECT id, root, relpath, size, mtime_ns, sha256 FROM documents WHERE root = ? AND relpath = ?",
            (root, relpath),
        )
        return StoredDocument(*rows[0]) if rows else None

    def update_stat(self, document_id: int, size: int, mtime_ns: int) -> None:
        """Record a new (size, mtime) for a document whose content hash did not change."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE documents SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, document_id)
            )

    def write_documents(self, documents: Sequence[NewDocument]) -> WriteResult:
        """Insert or replace documents and their chunks in one transaction."""
        added_ids: list[int] = []
        added_vectors: list[np.ndarray] = []
        removed: list[int] = []
        with self._transaction() as conn:
            now = time.time()
            for doc in documents:
                row = conn.execute(
                    "SELECT id FROM documents WHERE root = ? AND relpath = ?", (doc.root, doc.relpath)
                ).fetchone()
                if row:
                    document_id = int(row[0])
                    removed.extend(self._delete_chunks(conn, [document_id]))
                    conn.execute(
                        "UPDATE documents SET kind = ?, size = ?, mtime_ns = ?, sha256 = ?, title = ?, "
                        "extractor = ?, metadata = ?, indexed_at = ?, part_kind = ? WHERE id = ?",
                        (doc.kind, doc.size, doc.mtime_ns, doc.sha256, doc.title, doc.extractor,
                         json.dumps(doc.metadata, ensure_ascii=False), now, doc.part_kind, document_id),
                    )
                else:
                    document_id = int(
                        conn.execute(
                            "INSERT INTO documents (root, relpath, kind, size, mtime_ns, sha256, title, "
                            "extractor, metadata, indexed_at, part_kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (doc.root, doc.relpath, doc.kind, doc.size, doc.mtime_ns, doc.sha256, doc.title,
                             doc.extractor, json.dumps(doc.metadata, ensure_ascii=False), now, doc.part_kind),
                        ).lastrowid
                    )
                vectors = np.ascontiguousarray(doc.vectors, dtype="<f4")
                conn.executemany(
                    "INSERT INTO chunks (document_id, ordinal, text, char_start, char_end, line_start, "
                    "line_end, heading_path, text_sha256, vector, part) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(document_id, chunk.ordinal, chunk.text, chunk.char_start, chunk.char_end,
                      chunk.line_start, chunk.line_end, json.dumps(list(chunk.heading_path), ensure_ascii=False),
                      text_hash, vector.tobytes(), chunk.part)
                     for chunk, text_hash, vector in zip(doc.chunks, doc.text_hashes, vectors)],
                )
                # The document's old chunks were deleted above, so its rows are exactly the new ones.
                chunk_ids = [row[0] for row in conn.execute(
                    "SELECT id FROM chunks WHERE document_id = ? ORDER BY id", (document_id,))]
                conn.executemany(
                    "INSERT INTO chunks_fts (rowid, terms) VALUES (?, ?)",
                    [(chunk_id, _keyword_terms(chunk.heading_path, chunk.text))
                     for chunk_id, chunk in zip(chunk_ids, doc.chunks)],
                )
                added_ids.extend(chunk_ids)
                if len(doc.chunks):
                    added_vectors.append(vectors)
            generation = self._bump_generation(conn)
        return WriteResult(
            added_ids=np.asarray(added_ids, dtype=np.int64),
            added_vectors=np.concatenate(added_vectors) if added_vectors else np.zeros((0, 0), np.float32),
            removed_ids=np.asarray(removed, dtype=np.int64),
            generation=generation,
        )

    def delete_documents(self, document_ids: Sequence[int]) -> WriteResult:
        """Delete documents, their chunks, vectors and FTS rows in one transaction."""
        with self._transaction() as conn:
            removed = self._delete_chunks(conn, document_ids)
            conn.executemany("DELETE FROM documents WHERE id = ?", [(i,) for i in document_ids])
            generation = self._bump_generation(conn)
        return WriteResult(
            added_ids=np.zeros(0, np.int64),
            added_vectors=np.zeros((0, 0), np.float32),
            removed_ids=np.asarray(removed, dtype=np.int64),
            generation=generation,
        )

    @staticmethod
    def _delete_chunks(conn: sqlite3.Connection, document_ids: Sequence[int]) -> list[int]:
        removed: list[int] = []
        for document_id in document_ids:
            ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE document_id = ?", (document_id,))]
            conn.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(i,) for i in ids])
            conn.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
            removed.extend(ids)
        return removed

    def document_ids_by_key(self, root: str, relpaths: Iterable[str]) -> list[int]:
        ids = []
        for relpath in relpaths:
            doc = self.document(root, relpath)
            if doc is not None:
                ids.append(doc.id)
        return ids

    # -- vectors -------------------------------------------------------------------------------

    def cached_vectors(self, text_hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored vectors for chunk-text hashes (the embedding cache)."""
        found: dict[str, np.ndarray] = {}
        wanted = list(dict.fromkeys(text_hashes))
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            for text_hash, blob in self._query(
                f"SELECT text_sha256, vector FROM chunks WHERE text_sha256 IN ({marks}) GROUP BY text_sha256", part
            ):
                found[text_hash] = np.frombuffer(blob, dtype="<f4")
        return found

    def iter_vectors(self, batch: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (chunk ids, vectors) in id order, in batches, for rebuilding FAISS."""
        last = -1
        while True:
            rows = self._query("SELECT id, vector FROM chunks WHERE id > ? ORDER BY id LIMIT ?", (last, batch))
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
            yield ids, vectors.astype(np.float32, copy=False)
            last = int(ids[-1])

    # -- reading -------------------------------------------------------------------------------

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRow]:
        """Chunk rows with their documents, by chunk id (missing ids are absent)."""
        out: dict[int, ChunkRow] = {}
        ids = [int(i) for i in chunk_ids]
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._query(
                f"SELECT {_CHUNK_ROW_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.document_id "
                f"WHERE c.id IN ({marks})",
                part,
            )
            out.update((r[0], _chunk_row(r)) for r in rows)
        return out

    def chunk_neighbourhood(self, chunk_ids: Sequence[int], radius: int) -> dict[int, ChunkRow]:
        """The given chunks and those of the same document within `radius` ordinals of one, by id.

        Rows carry their `ordinal`, so callers can tell which chunks are adjacent; ids that no
        longer exist are absent.
        """
        out: dict[int, ChunkRow] = {}
        ids = list(dict.fromkeys(int(i) for i in chunk_ids))
        radius = max(0, int(radius))
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._query(
                f"SELECT DISTINCT {_CHUNK_ROW_COLUMNS} FROM chunks h JOIN chunks c "
                "ON c.document_id = h.document_id AND c.ordinal BETWEEN h.ordinal - ? AND h.ordinal + ? "
                f"JOIN documents d ON d.id = c.document_id WHERE h.id IN ({marks})",
                [radius, radius, *part],
            )
            out.update((r[0], _chunk_row(r)) for r in rows)
        return out

    def keyword_analysis_current(self) -> bool:
        """Whether the FTS table holds terms from this version's keyword analysis."""
        return self.meta().get("keyword_analysis") == keyword.ANALYSIS

    def reanalyze_keywords(self) -> int:
        """Rebuild the FTS table from the stored chunk texts with the current analysis; returns rows.

        For indexes written by a version that analysed text differently. No vectors change.
        """
        with self._transaction() as conn:
            conn.execute("DROP TABLE IF EXISTS chunks_fts")
            conn.execute(_FTS_TABLE)
            rows = conn.execute("SELECT id, heading_path, text FROM chunks").fetchall()
            conn.executemany(
                "INSERT INTO chunks_fts (rowid, terms) VALUES (?, ?)",
                ((cid, _keyword_terms(json.loads(headings), text)) for cid, headings, text in rows),
            )
            self._write_meta(conn, {"keyword_analysis": keyword.ANALYSIS})
        return len(rows)

    def keyword_search(self, query: str, limit: int, allowed_ids: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, score) by FTS5 bm25 over the CJK-aware terms; higher score is better."""
        expression = keyword.match_expression(query)
        if expression is None:
            return []
        if allowed_ids is None:
            rows = self._query(
                "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
                "ORDER BY bm25(chunks_fts) LIMIT ?",
                (expression, limit),
            )
        else:
            with self._lock:
                self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS allowed_ids (id INTEGER PRIMARY KEY)")
                self.conn.execute("DELETE FROM allowed_ids")
                self.conn.executemany("INSERT INTO allowed_ids (id) VALUES (?)", ((int(i),) for i in allowed_ids))
                rows = self.conn.execute(
                    "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
                    "AND rowid IN (SELECT id FROM allowed_ids) ORDER BY bm25(chunks_fts) LIMIT ?",
                    (expression, limit),
                ).fetchall()
        # bm25() is smaller-is-better; flip it so every retrieval score is larger-is-better.
        return [(int(rowid), -float(score)) for rowid, score in rows]

    def chunk_ids_where(self, path_globs: Sequence[str] = (), metadata: dict[str, Any] | None = None) -> np.ndarray:
        """Ids of chunks whose document matches every filter (path globs OR-ed, metadata keys AND-ed).

        A metadata key matches when the document's value equals the wanted one, or is a list that
        contains it; a list of wanted values matches any of them. Values compare as text, so
        `year=2024` from the command line matches a YAML number and `draft=false` a boolean.
        """
        clauses: list[str] = []
        params: list[Any] = []
        if path_globs:
            ors = []
            for glob in path_globs:
                ors.append("(d.relpath GLOB ? OR (d.root || '/' || d.relpath) GLOB ?)")
                params.extend([glob, glob])
            clauses.append("(" + " OR ".join(ors) + ")")
        for key, value in (metadata or {}).items():
            wanted = [_filter_text(v) for v in (value if isinstance(value, (list, tuple, set)) else [value])]
            clauses.append(
                "EXISTS (SELECT 1 FROM json_each(d.metadata, ?) AS item WHERE "
                "(CASE item.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN 'null' "
                f"ELSE CAST(item.value AS TEXT) END) IN ({','.join('?' * len(wanted))}))"
            )
            params.extend([f"$.{json.dumps(str(key), ensure_ascii=False)}", *wanted])
        where = " AND ".join(clauses) or "1"
        rows = self._query(f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE {where}", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> dict[int, tuple[str, np.ndarray]]:
        """(text, stored vector) of chunks by id (missing ids are absent)."""
        out: dict[int, tuple[str, np.ndarray]] = {}
        ids = [int(i) for i in chunk_ids]
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            for cid, text, blob in self._query(f"SELECT id, text, vector FROM chunks WHERE id IN ({marks})", part):
                out[cid] = (text, np.frombuffer(blob, dtype="<f4").astype(np.float32))
        return out

    def chunk_document_keys(self) -> dict[int, str]:
        """Chunk id → its document's key: the caller's id for added texts, root/relpath for files."""
        rows = self._query(
            "SELECT c.id, d.kind, d.root, d.relpath FROM chunks c JOIN documents d ON d.id = c.document_id"
        )
        return {cid: relpath if kind == "text" else f"{root.rstrip('/')}/{relpath}" for cid, kind, root, relpath in rows}

    # -- status --------------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""
        docs = self._query("SELECT count(*) FROM documents")[0][0]
        chunks = self._query("SELECT count(*) FROM chunks")[0][0]
        return int(docs), int(chunks)


def _is_disk_full(error: BaseException | None) -> bool:
    """Whether SQLite failed because the device is full (SQLITE_FULL: database or WAL growth)."""
    return isinstance(error, sqlite3.DatabaseError) and (getattr(error, "sqlite_errorcode", 0) & 0xFF) == 13


def _filter_text(value: Any) -> str:
    """A wanted metadata value as the text SQLite shows for the stored JSON value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)
