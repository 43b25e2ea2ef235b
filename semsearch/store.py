"""The SQLite store: schema, migrations and every SQL statement of semsearch.

SQLite is the source of truth (DESIGN §2): documents, chunks, their vectors (float32 BLOBs,
already normalised) and the FTS5 keyword table. Chunk ids are AUTOINCREMENT so an id is never
reused, and each chunk id is also its FAISS id. Every write happens in one transaction that also
bumps `meta.generation`, which the FAISS file is stamped with.

A file is one document however it was reached, stored under its real path relative to the
index home (the directory holding the index directory) when inside it, else absolute; rows
read back carry the absolute path again (`semsearch.paths.document_key`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semsearch import keyword
from semsearch.errors import DiskFullError, IndexCorruptError, IndexReadOnlyError
from semsearch.options import DB_NAME
from semsearch.paths import absolute_path, document_key, keys_prefix
from semsearch.types import Chunk

# numpy loads in the methods that handle vectors: `status` and opening an index never need it.
if TYPE_CHECKING:
    import numpy as np

SCHEMA_VERSION = 4
# Values bound per `IN (...)` query: SQLite before 3.32 refuses more than 999 variables.
IN_BATCH = 500

_DOCUMENTS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    mtime_ns INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    extractor TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{{}}',
    indexed_at REAL NOT NULL,
    part_kind TEXT NOT NULL DEFAULT '',
    UNIQUE (kind, path)
)"""


def _key_documents_by_path(conn: sqlite3.Connection, home: Path) -> None:
    """v4: documents were keyed by (indexed root, path relative to it), so a file indexed through
    a folder and a sub-folder was stored twice. Key each file by its real path (relative to the
    home when inside it) and keep, of duplicates, the copy indexed last with its chunks and
    vectors; the others' chunks go, and the generation bump makes FAISS follow SQLite."""
    rows = conn.execute("SELECT id, kind, root, relpath FROM documents ORDER BY indexed_at, id").fetchall()
    kept: dict[tuple[str, str], int] = {}
    for document_id, kind, root, relpath in rows:
        key = document_key(Path(root, relpath), home) if kind == "file" else relpath
        kept[(kind, key)] = document_id  # a later row replaces an earlier one
    survivors = set(kept.values())
    Store._delete_chunks(conn, [row[0] for row in rows if row[0] not in survivors])
    conn.execute(_DOCUMENTS_TABLE.format(name="documents_v4"))
    conn.execute("CREATE TEMP TABLE document_keys (id INTEGER PRIMARY KEY, path TEXT NOT NULL)")
    conn.executemany("INSERT INTO document_keys (id, path) VALUES (?, ?)",
                     [(document_id, key) for (_, key), document_id in kept.items()])
    conn.execute(
        "INSERT INTO documents_v4 (id, kind, path, size, mtime_ns, sha256, title, extractor, metadata, indexed_at, "
        "part_kind) SELECT d.id, d.kind, k.path, d.size, d.mtime_ns, d.sha256, d.title, d.extractor, d.metadata, "
        "d.indexed_at, d.part_kind FROM documents d JOIN document_keys k ON k.id = d.id"
    )
    conn.execute("DROP TABLE temp.document_keys")
    conn.execute("DROP TABLE documents")
    conn.execute("ALTER TABLE documents_v4 RENAME TO documents")
    Store._bump_generation(conn)


# Each step brings a database from the version before it to its own number (PRAGMA user_version):
# SQL statements, or a function of (connection, index home) for steps that rebuild a table.
_MIGRATIONS: dict[int, Any] = {
    # v2: paged formats — a document says what its parts are (pages, cells), a chunk which one it is in.
    2: (
        "ALTER TABLE documents ADD COLUMN part_kind TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE chunks ADD COLUMN part INTEGER",
    ),
    # v3: HNSW cannot remove vectors; ids deleted from SQLite but still in vectors.faiss.
    3: ("CREATE TABLE IF NOT EXISTS faiss_tombstones (id INTEGER PRIMARY KEY)",),
    4: _key_documents_by_path,
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
""" + _DOCUMENTS_TABLE.format(name="documents") + """;
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
    """A documents row, as change detection needs it (`path` is the stored key)."""

    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class FileStat:
    """A file document's absolute path and the (size, mtime_ns) it had when indexed."""

    document_id: int
    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class NewDocument:
    """A document ready to be written: its identity, stat, and its chunks with vectors."""

    path: str  # a file's key (`semsearch.paths.document_key`) or a text's id
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
    path: str  # absolute file path, or the caller's id for a text
    kind: str
    title: str
    metadata: dict[str, Any]
    part_kind: str = ""
    part: int | None = None
    ordinal: int = -1  # position of the chunk in its document


_CHUNK_ROW_COLUMNS = (
    "c.id, c.document_id, c.text, c.char_start, c.char_end, c.line_start, c.line_end, c.heading_path, "
    "d.path, d.kind, d.title, d.metadata, d.part_kind, c.part, c.ordinal"
)


def _chunk_row(r: tuple, home: Path) -> ChunkRow:
    """A ChunkRow from a row selected with _CHUNK_ROW_COLUMNS, its file path made absolute."""
    return ChunkRow(
        chunk_id=r[0], document_id=r[1], text=r[2], char_start=r[3], char_end=r[4], line_start=r[5],
        line_end=r[6], heading_path=tuple(json.loads(r[7])),
        path=absolute_path(r[8], home) if r[9] == "file" else r[8], kind=r[9], title=r[10],
        metadata=json.loads(r[11]), part_kind=r[12], part=r[13], ordinal=r[14],
    )


@dataclass(frozen=True)
class WriteResult:
    """What one transaction changed, so the FAISS index can follow."""

    added_ids: np.ndarray  # int64
    added_vectors: np.ndarray  # float32
    removed_ids: np.ndarray  # int64
    generation: int


# SQLITE_CORRUPT and SQLITE_NOTADB (primary codes): the file's pages are damaged, not busy or locked.
_CORRUPT_CODES = frozenset({11, 26})


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in _CORRUPT_CODES
    text = str(exc)
    return "malformed" in text or "not a database" in text


def _corrupt_error(path: Path, exc: sqlite3.DatabaseError) -> IndexCorruptError:
    return IndexCorruptError(
        f"the index database {path} is damaged ({exc}) — its vectors and text cannot be trusted: delete "
        f"the index directory {path.parent} and index your folders again (`semsearch index FOLDER`)"
    )


class _GuardedCursor(sqlite3.Cursor):
    """A cursor whose reads turn damaged-page errors into IndexCorruptError (pages are read lazily,
    so corruption shows up while rows are fetched, not only when a statement starts)."""

    db_path: Path

    def execute(self, *args: Any) -> sqlite3.Cursor:
        return self._guard(super().execute, *args)

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        return self._guard(super().executemany, *args)

    def fetchone(self) -> Any:
        return self._guard(super().fetchone)

    def fetchmany(self, *args: Any) -> list[Any]:
        return self._guard(super().fetchmany, *args)

    def fetchall(self) -> list[Any]:
        return self._guard(super().fetchall)

    def __next__(self) -> Any:
        return self._guard(super().__next__)

    def _guard(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except sqlite3.DatabaseError as exc:
            if _is_corrupt(exc):
                raise _corrupt_error(self.connection.db_path, exc) from exc
            raise


class _GuardedConnection(sqlite3.Connection):
    """A connection whose statements raise IndexCorruptError, with the fix, on a damaged file."""

    db_path: Path

    def cursor(self, factory: Any = _GuardedCursor) -> sqlite3.Cursor:
        return super().cursor(factory)

    def execute(self, *args: Any) -> sqlite3.Cursor:
        return self.cursor().execute(*args)

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        return self.cursor().executemany(*args)


class Store:
    """One SQLite database in WAL mode, safe to share between threads (calls are serialised)."""

    def __init__(self, path: Path, *, read_only: bool = False):
        """Open (or create) the database at `path`; `read_only` opens it without writing anything,
        for an index directory this process cannot write (raises IndexReadOnlyError if that
        cannot work: an index that needs an upgrade, or an unreadable write-ahead log)."""
        self.path = Path(path)
        # File paths are stored relative to this (the directory holding the index directory).
        self.home = Path(os.path.realpath(self.path.parent.parent))
        self.read_only = read_only
        if read_only:
            self._open_read_only()
            return
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30,
                                   factory=_GuardedConnection)
            conn.db_path = self.path
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
        except IndexCorruptError:
            raise
        except sqlite3.DatabaseError as exc:
            if _is_disk_full(exc):
                raise DiskFullError(self.path.parent) from exc
            if _is_corrupt(exc):
                raise _corrupt_error(self.path, exc) from exc
            raise IndexCorruptError(f"cannot read the index database {self.path}: {exc}") from exc
        version = self._user_version()
        if version > SCHEMA_VERSION:
            raise IndexCorruptError(
                f"the index at {self.path.parent} was written by a newer semsearch (schema {version}); "
                "upgrade semsearch to open it"
            )

    def _open_read_only(self) -> None:
        """Open without creating or changing any file: `mode=ro`, else `immutable=1`.

        A WAL database opened with `mode=ro` needs its `-shm` file, or must create it: in a
        read-only directory that fails whenever the last writer closed cleanly (SQLite then
        deletes `-wal` and `-shm`). `immutable=1` reads the database file alone, skipping
        locks and the write-ahead log, so it is only used when the log holds nothing.
        """
        uri = self.path.resolve().as_uri()
        self._lock = threading.RLock()
        try:
            self._conn = self._connect_uri(f"{uri}?mode=ro")
        except sqlite3.DatabaseError:
            wal = self.path.with_name(self.path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise IndexReadOnlyError(
                    f"cannot read {wal.name}, the write-ahead log of the index at {self.path.parent}: the directory "
                    f"is read-only and SQLite needs to create {self.path.name}-shm beside it to read the log — "
                    "open the index once where it is writable (e.g. a copy: `semsearch status -i COPY` folds the "
                    f"log into {self.path.name}) and ship that, or ship {self.path.name}-shm with it"
                ) from None
            try:
                self._conn = self._connect_uri(f"{uri}?mode=ro&immutable=1")
            except sqlite3.DatabaseError as exc:
                raise IndexCorruptError(f"cannot read the index database {self.path}: {exc}") from exc
        version = self._user_version()
        if version != SCHEMA_VERSION:
            self._conn.close()
            if version > SCHEMA_VERSION:
                raise IndexCorruptError(
                    f"the index at {self.path.parent} was written by a newer semsearch (schema {version}); "
                    "upgrade semsearch to open it"
                )
            raise IndexReadOnlyError(
                f"the index at {self.path.parent} was written by an older semsearch (schema {version}) and must be "
                "upgraded, which needs a writable directory — open it once where it is writable (e.g. "
                "`semsearch status -i COPY` on a copy) and use that"
            )

    def _connect_uri(self, uri: str) -> sqlite3.Connection:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=30,
                               factory=_GuardedConnection)
        conn.db_path = self.path
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opening is lazy: read once
        except (sqlite3.DatabaseError, IndexCorruptError):
            conn.close()
            raise
        return conn

    def _migrate(self) -> None:
        """Bring an index written by an older semsearch up to SCHEMA_VERSION, one step per transaction."""
        for version in range(self._user_version() + 1, SCHEMA_VERSION + 1):
            step = _MIGRATIONS[version]
            if callable(step):
                # A table rebuild drops the old table: without this its chunks would cascade away.
                # The pragma is a no-op inside a transaction, so it is set around it.
                self.conn.execute("PRAGMA foreign_keys=OFF")
            try:
                with self._transaction() as conn:
                    if self._user_version() >= version:  # another process migrated it meanwhile
                        continue
                    if callable(step):
                        step(conn, self.home)
                    else:
                        for statement in step:
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version={version}")
                    self._write_meta(conn, {"schema_version": version})
            finally:
                self.conn.execute("PRAGMA foreign_keys=ON")

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

    def _query_in(self, sql: str, values: Sequence[Any], leading: Sequence[Any] = ()) -> list[tuple]:
        """The rows of `sql` for every value, its `{marks}` filled with placeholders for at most
        IN_BATCH values per query (after the `leading` parameters)."""
        rows: list[tuple] = []
        for start in range(0, len(values), IN_BATCH):
            part = list(values[start : start + IN_BATCH])
            rows.extend(self._query(sql.format(marks=",".join("?" * len(part))), [*leading, *part]))
        return rows

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
        import numpy as np

        rows = self._query("SELECT id FROM faiss_tombstones")
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def count_faiss_tombstones(self) -> int:
        return self._query("SELECT count(*) FROM faiss_tombstones")[0][0]

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

    def file_key(self, path: Path) -> str:
        """The key a file is stored under in this index (see `semsearch.paths.document_key`)."""
        return document_key(path, self.home)

    def files_in(self, folder: Path) -> dict[str, StoredDocument]:
        """Stored files inside `folder` (by its real path, at any depth), by key."""
        found = self._files_under(keys_prefix(folder, self.home))
        real = Path(os.path.realpath(folder))
        if real != self.home and self.home.is_relative_to(real):  # the home's files are stored relative to it
            found.update(self._files_under(""))
        return found

    def _files_under(self, prefix: str) -> dict[str, StoredDocument]:
        """Stored files whose key starts with `prefix` (a folder key ending in `/`; '' for every
        file inside the home), by key."""
        if prefix:
            rows = self._query(
                "SELECT id, path, size, mtime_ns, sha256 FROM documents WHERE kind = 'file' "
                "AND substr(path, 1, ?) = ?", (len(prefix), prefix),
            )
        else:
            rows = self._query(
                "SELECT id, path, size, mtime_ns, sha256 FROM documents WHERE kind = 'file' AND path NOT LIKE '/%'"
            )
        return {row[1]: StoredDocument(*row) for row in rows}

    def document(self, path: str, kind: str = "file") -> StoredDocument | None:
        """The document stored under a file key or, with kind "text", a text id."""
        rows = self._query(
            "SELECT id, path, size, mtime_ns, sha256 FROM documents WHERE kind = ? AND path = ?", (kind, path),
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
        import numpy as np

        added_ids: list[int] = []
        added_vectors: list[np.ndarray] = []
        removed: list[int] = []
        with self._transaction() as conn:
            now = time.time()
            for doc in documents:
                row = conn.execute(
                    "SELECT id FROM documents WHERE kind = ? AND path = ?", (doc.kind, doc.path)
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
                            "INSERT INTO documents (path, kind, size, mtime_ns, sha256, title, "
                            "extractor, metadata, indexed_at, part_kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (doc.path, doc.kind, doc.size, doc.mtime_ns, doc.sha256, doc.title,
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
        import numpy as np

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

    def find_document(self, file_paths: Sequence[str], text_id: str) -> int | None:
        """The id of the file document at one of `file_paths` (absolute, as search hits show them),
        else of the added text whose id is `text_id`; None when neither is indexed."""
        for path in dict.fromkeys(file_paths):
            stored = self.document(document_key(Path(path), self.home), "file")
            if stored is not None:
                return stored.id
        stored = self.document(text_id, "text")
        return stored.id if stored is not None else None

    def document_chunks(self, document_id: int) -> list[ChunkRow]:
        """Every chunk of a document with its document columns, in order."""
        rows = self._query(
            f"SELECT {_CHUNK_ROW_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.document_id "
            "WHERE c.document_id = ? ORDER BY c.ordinal",
            (document_id,),
        )
        return [_chunk_row(r, self.home) for r in rows]

    def document_ids_by_key(self, keys: Iterable[str], kind: str = "file") -> list[int]:
        ids = []
        for key in keys:
            doc = self.document(key, kind)
            if doc is not None:
                ids.append(doc.id)
        return ids

    # -- vectors -------------------------------------------------------------------------------

    def cached_vectors(self, text_hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored vectors for chunk-text hashes (the embedding cache)."""
        import numpy as np

        rows = self._query_in("SELECT text_sha256, vector FROM chunks WHERE text_sha256 IN ({marks}) "
                              "GROUP BY text_sha256", list(dict.fromkeys(text_hashes)))
        return {text_hash: np.frombuffer(blob, dtype="<f4") for text_hash, blob in rows}

    def iter_vectors(self, batch: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (chunk ids, vectors) in id order, in batches, for rebuilding FAISS."""
        import numpy as np

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
        rows = self._query_in(
            f"SELECT {_CHUNK_ROW_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.document_id "
            "WHERE c.id IN ({marks})",
            [int(i) for i in chunk_ids],
        )
        return {r[0]: _chunk_row(r, self.home) for r in rows}

    def chunk_neighbourhood(self, chunk_ids: Sequence[int], radius: int) -> dict[int, ChunkRow]:
        """The given chunks and those of the same document within `radius` ordinals of one, by id.

        Rows carry their `ordinal`, so callers can tell which chunks are adjacent; ids that no
        longer exist are absent.
        """
        radius = max(0, int(radius))
        rows = self._query_in(
            f"SELECT DISTINCT {_CHUNK_ROW_COLUMNS} FROM chunks h JOIN chunks c "
            "ON c.document_id = h.document_id AND c.ordinal BETWEEN h.ordinal - ? AND h.ordinal + ? "
            "JOIN documents d ON d.id = c.document_id WHERE h.id IN ({marks})",
            list(dict.fromkeys(int(i) for i in chunk_ids)), leading=(radius, radius),
        )
        return {r[0]: _chunk_row(r, self.home) for r in rows}

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
        import numpy as np

        clauses: list[str] = []
        params: list[Any] = []
        if path_globs:
            # A glob matches the stored path (relative to the home, or absolute outside it; a
            # text's id) or the file's absolute path under the home's current location.
            absolute = "(CASE WHEN d.kind = 'file' AND substr(d.path, 1, 1) != '/' THEN ? || d.path ELSE d.path END)"
            ors = []
            for glob in path_globs:
                ors.append(f"(d.path GLOB ? OR {absolute} GLOB ?)")
                params.extend([glob, self.home.as_posix().rstrip("/") + "/", glob])
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
        import numpy as np

        rows = self._query_in("SELECT id, text, vector FROM chunks WHERE id IN ({marks})", [int(i) for i in chunk_ids])
        return {cid: (text, np.frombuffer(blob, dtype="<f4").astype(np.float32)) for cid, text, blob in rows}

    def chunk_document_keys(self) -> dict[int, str]:
        """Chunk id → its document's key: the caller's id for added texts, the absolute path for files."""
        rows = self._query("SELECT c.id, d.kind, d.path FROM chunks c JOIN documents d ON d.id = c.document_id")
        return {cid: path if kind == "text" else absolute_path(path, self.home) for cid, kind, path in rows}

    def file_stats(self, document_ids: Iterable[int] | None = None) -> list[FileStat]:
        """The stored stat of file documents (the given ones, or all), with absolute paths."""
        sql = "SELECT id, path, size, mtime_ns FROM documents WHERE kind = 'file'"
        if document_ids is None:
            rows = self._query(sql)
        else:
            ids = list(dict.fromkeys(int(i) for i in document_ids))
            rows = self._query_in(sql + " AND id IN ({marks})", ids)
        return [FileStat(i, absolute_path(path, self.home), size, mtime_ns) for i, path, size, mtime_ns in rows]

    # -- status --------------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""
        docs = self._query("SELECT count(*) FROM documents")[0][0]
        chunks = self._query("SELECT count(*) FROM chunks")[0][0]
        return int(docs), int(chunks)

    def metadata_keys(self) -> list[str]:
        """The distinct top-level metadata keys of all documents, sorted."""
        rows = self._query("SELECT DISTINCT item.key FROM documents d, json_each(d.metadata) AS item "
                           "WHERE json_valid(d.metadata) ORDER BY item.key")
        return [str(r[0]) for r in rows]


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
