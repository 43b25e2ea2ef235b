"""The store's database file: schema, migrations, opening, transactions and failure mapping.

How SQLite failures of a damaged file or a full disk become semsearch errors is decided here.
Part of the store layer with `semsearch.store`, which holds every query and write (its pending-chunk
queries in `semsearch.store_pending`): SQL lives in these modules and nowhere else. `Store` opens the file through `connect` or
`connect_read_only`, creates the tables with `create_schema` and upgrades an older index one
`MIGRATIONS` step at a time (`migrate`), and writes through `Transaction`. The few statements
both need (`write_meta`, `bump_generation`, `delete_chunks`) take a connection inside the
caller's transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from semsearch import keyword
from semsearch.errors import DiskFullError, IndexCorruptError, IndexReadOnlyError
from semsearch.paths import document_key

SCHEMA_VERSION = 6

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

# The folders and files given to `index`, keyed like documents (`semsearch.paths.document_key`;
# '.' for the home itself), with the options that decide which of their files are indexed.
SOURCES_TABLE = """
CREATE TABLE IF NOT EXISTS sources (
    path TEXT PRIMARY KEY,
    include TEXT NOT NULL DEFAULT '[]',
    exclude TEXT NOT NULL DEFAULT '[]',
    use_ignore_files INTEGER NOT NULL DEFAULT 1,
    added_at REAL NOT NULL
)"""

# Two-phase indexing (DESIGN §2 invariant 0): a chunk's text and keyword terms are committed
# before its vector. Until the vector arrives the row holds an empty BLOB (the column predates
# pending chunks and is NOT NULL; SQLite cannot relax that without copying the table), and the
# partial index below finds the pending rows without reading any vector. `length()` of a BLOB
# is read from the record header, so the test costs nothing per row.
PENDING = "length(vector) = 0"
PENDING_INDEX = f"CREATE INDEX IF NOT EXISTS chunks_pending ON chunks(id) WHERE {PENDING}"

SCHEMA = """
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
""" + PENDING_INDEX + """;
-- Chunk ids still present in an HNSW vectors.faiss but deleted here (HNSW cannot remove),
-- written in the same transaction as the FAISS stamp.
CREATE TABLE IF NOT EXISTS faiss_tombstones (id INTEGER PRIMARY KEY);
""" + SOURCES_TABLE + """;
"""
FTS_TABLE = f"CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(terms, tokenize = '{keyword.FTS_TOKENIZER}')"


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table of a new index and stamp it with SCHEMA_VERSION (inside a transaction)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(FTS_TABLE)
    write_meta(conn, {"keyword_analysis": keyword.ANALYSIS})
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


# -- statements shared by the store's writes and the migrations ----------------------------------

def write_meta(conn: sqlite3.Connection, values: dict[str, Any]) -> None:
    conn.executemany(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(key, str(value)) for key, value in values.items()],
    )


# Values bound per `IN (...)` query: SQLite before 3.32 refuses more than 999 variables.
IN_BATCH = 500


def rows_in(conn: sqlite3.Connection, sql: str, values: Sequence[Any], leading: Sequence[Any] = ()) -> list[tuple]:
    """The rows of `sql` for every value, its `{marks}` filled with placeholders for at most
    IN_BATCH values per query (after the `leading` parameters)."""
    rows: list[tuple] = []
    for start in range(0, len(values), IN_BATCH):
        part = list(values[start : start + IN_BATCH])
        rows.extend(conn.execute(sql.format(marks=",".join("?" * len(part))), [*leading, *part]).fetchall())
    return rows


def read_generation(conn: sqlite3.Connection) -> int:
    """The index's generation: bumped by every commit that changes documents or chunks."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    return int(row[0]) if row else 0


def bump_generation(conn: sqlite3.Connection) -> int:
    generation = read_generation(conn) + 1
    write_meta(conn, {"generation": generation})
    return generation


def delete_chunks(conn: sqlite3.Connection, document_ids: Sequence[int]) -> list[int]:
    """Delete the chunks and FTS rows of documents; returns the ids removed that had a vector
    (a pending chunk was never in FAISS, and an HNSW file would count its id as a tombstone)."""
    removed: list[int] = []
    for document_id in document_ids:
        rows = conn.execute(f"SELECT id, {PENDING} FROM chunks WHERE document_id = ?", (document_id,)).fetchall()
        conn.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(r[0],) for r in rows])
        conn.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
        removed.extend(chunk_id for chunk_id, pending in rows if not pending)
    return removed


# -- migrations ------------------------------------------------------------------------------------

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
    delete_chunks(conn, [row[0] for row in rows if row[0] not in survivors])
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
    bump_generation(conn)


# Each step brings a database from the version before it to its own number (PRAGMA user_version):
# SQL statements, or a function of (connection, index home) for steps that rebuild a table.
MIGRATIONS: dict[int, Any] = {
    # v2: paged formats — a document says what its parts are (pages, cells), a chunk which one it is in.
    2: (
        "ALTER TABLE documents ADD COLUMN part_kind TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE chunks ADD COLUMN part INTEGER",
    ),
    # v3: HNSW cannot remove vectors; ids deleted from SQLite but still in vectors.faiss.
    3: ("CREATE TABLE IF NOT EXISTS faiss_tombstones (id INTEGER PRIMARY KEY)",),
    4: _key_documents_by_path,
    # v5: remembered sources. Older indexes never recorded their folders: the table starts empty.
    5: (SOURCES_TABLE,),
    # v6: two-phase indexing — chunks may wait for their vector (an empty BLOB); find them fast.
    6: (PENDING_INDEX,),
}


def migrate(conn: sqlite3.Connection, home: Path, transaction: Callable[[], Transaction]) -> None:
    """Bring an index written by an older semsearch up to SCHEMA_VERSION, one step per transaction."""
    for version in range(user_version(conn) + 1, SCHEMA_VERSION + 1):
        step = MIGRATIONS[version]
        if callable(step):
            # A table rebuild drops the old table: without this its chunks would cascade away.
            # The pragma is a no-op inside a transaction, so it is set around it.
            conn.execute("PRAGMA foreign_keys=OFF")
        try:
            with transaction():
                if user_version(conn) >= version:  # another process migrated it meanwhile
                    continue
                if callable(step):
                    step(conn, home)
                else:
                    for statement in step:
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={version}")
                write_meta(conn, {"schema_version": version})
        finally:
            conn.execute("PRAGMA foreign_keys=ON")


# -- failures --------------------------------------------------------------------------------------

# SQLITE_CORRUPT and SQLITE_NOTADB (primary codes): the file's pages are damaged, not busy or locked.
_CORRUPT_CODES = frozenset({11, 26})


def is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in _CORRUPT_CODES
    text = str(exc)
    return "malformed" in text or "not a database" in text


def corrupt_error(path: Path, exc: sqlite3.DatabaseError) -> IndexCorruptError:
    return IndexCorruptError(
        f"the index database {path} is damaged ({exc}) — its vectors and text cannot be trusted: delete "
        f"the index directory {path.parent} and index your folders again (`semsearch index FOLDER`)"
    )


def is_disk_full(error: BaseException | None) -> bool:
    """Whether SQLite failed because the device is full (SQLITE_FULL: database or WAL growth)."""
    return isinstance(error, sqlite3.DatabaseError) and (getattr(error, "sqlite_errorcode", 0) & 0xFF) == 13


def newer_schema_error(path: Path, version: int) -> IndexCorruptError:
    """An index database at `path` whose schema `version` is past this semsearch's."""
    return IndexCorruptError(
        f"the index at {path.parent} was written by a newer semsearch (schema {version}); "
        "upgrade semsearch to open it"
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
            if is_corrupt(exc):
                raise corrupt_error(self.connection.db_path, exc) from exc
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


# -- transactions and opening --------------------------------------------------------------------

class Transaction:
    """One write transaction, `with Transaction(conn, lock, index_dir) as conn:` — BEGIN IMMEDIATE
    while holding `lock`, COMMIT when the block succeeds, else ROLLBACK; a full disk raises
    DiskFullError naming `index_dir`, the index was left as it was."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock, index_dir: Path):
        self.conn = conn
        self.lock = lock
        self.index_dir = index_dir

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        conn = self.conn
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
            if is_disk_full(exc):
                raise DiskFullError(self.index_dir) from exc
            if exc_type is None:
                raise exc
        finally:
            self.lock.release()


# -- opening ---------------------------------------------------------------------------------------

def user_version(conn: sqlite3.Connection) -> int:
    """The schema version the database file is at (0 for a new, empty file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def connect(path: Path) -> sqlite3.Connection:
    """Open (or create) the database at `path` for reading and writing, in WAL mode.

    Raises sqlite3.DatabaseError (the caller maps it, knowing what it was doing) or
    IndexCorruptError when the file is damaged.
    """
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30,
                           factory=_GuardedConnection)
    conn.db_path = path
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Open without creating or changing any file: `mode=ro`, else `immutable=1`.

    A WAL database opened with `mode=ro` needs its `-shm` file, or must create it: in a
    read-only directory that fails whenever the last writer closed cleanly (SQLite then
    deletes `-wal` and `-shm`). `immutable=1` reads the database file alone, skipping
    locks and the write-ahead log, so it is only used when the log holds nothing.

    Raises IndexReadOnlyError when that cannot work (an index that needs an upgrade, or an
    unreadable write-ahead log) and IndexCorruptError for a file that cannot be read.
    """
    uri = path.resolve().as_uri()
    try:
        conn = _connect_uri(f"{uri}?mode=ro", path)
    except sqlite3.DatabaseError:
        wal = path.with_name(path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise IndexReadOnlyError(
                f"cannot read {wal.name}, the write-ahead log of the index at {path.parent}: the directory "
                f"is read-only and SQLite needs to create {path.name}-shm beside it to read the log — "
                "open the index once where it is writable (e.g. a copy: `semsearch status -i COPY` folds the "
                f"log into {path.name}) and ship that, or ship {path.name}-shm with it"
            ) from None
        try:
            conn = _connect_uri(f"{uri}?mode=ro&immutable=1", path)
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"cannot read the index database {path}: {exc}") from exc
    version = user_version(conn)
    if version != SCHEMA_VERSION:
        conn.close()
        if version > SCHEMA_VERSION:
            raise newer_schema_error(path, version)
        raise IndexReadOnlyError(
            f"the index at {path.parent} was written by an older semsearch (schema {version}) and must be "
            "upgraded, which needs a writable directory — open it once where it is writable (e.g. "
            "`semsearch status -i COPY` on a copy) and use that"
        )
    return conn


def _connect_uri(uri: str, path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=30,
                           factory=_GuardedConnection)
    conn.db_path = path
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opening is lazy: read once
    except (sqlite3.DatabaseError, IndexCorruptError):
        conn.close()
        raise
    return conn
