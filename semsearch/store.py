"""The SQLite store: every query and write of semsearch's documents, chunks and vectors.

SQLite is the source of truth (DESIGN §2): documents, chunks, their vectors (float32 BLOBs,
already normalised) and the FTS5 keyword table. Chunk ids are AUTOINCREMENT so an id is never
reused, and each chunk id is also its FAISS id. Every write happens in one transaction that also
bumps `meta.generation`, which the FAISS file is stamped with.

A file is one document however it was reached, stored under its real path relative to the
index home (the directory holding the index directory) when inside it, else absolute; rows
read back carry the absolute path again (`semsearch.paths.document_key`).

The schema, its migrations, opening the database file and mapping a damaged file or a full
disk to errors live beside this module in `semsearch.store_schema`, the rest of the store layer
(with the filter queries in `semsearch.store_filters`).
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
from semsearch.errors import DiskFullError, IndexCorruptError
from semsearch.options import DB_NAME
from semsearch.paths import absolute_path, document_key, keys_prefix
from semsearch.store_schema import (FTS_TABLE, PENDING, SCHEMA_VERSION, Transaction, bump_generation, connect,
                                    connect_read_only, corrupt_error, create_schema, delete_chunks, is_corrupt,
                                    is_disk_full, migrate, newer_schema_error, read_generation, rows_in, user_version,
                                    write_meta)
from semsearch.store_filters import FilterQueries
from semsearch.store_sources import SourceRecords
from semsearch.store_pending import (PendingChunk, PendingChunks, fill_pending,  # noqa: F401  (PendingChunk: re-exported)
                                     without_refilled)
from semsearch.types import Chunk

# numpy loads in the methods that handle vectors: `status` and opening an index never need it.
if TYPE_CHECKING:
    import numpy as np



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
    """A document ready to be written: its identity, stat, and its chunks with their vectors, if known."""

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
    # One row per chunk: float32, normalised; None for a chunk whose vector is not known yet
    # (committed pending, filled in later by `fill_vectors`). An (len(chunks), dims) array does.
    vectors: Sequence[np.ndarray | None]
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
    filled: int = 0  # pending chunks of earlier writes given their vector (some may be removed again)


class Store(SourceRecords, PendingChunks, FilterQueries):
    """One SQLite database in WAL mode, safe to share between threads (calls are serialised)."""

    def __init__(self, path: Path, *, read_only: bool = False):
        """Open (or create) the database at `path`; `read_only` opens it without writing anything,
        for an index directory this process cannot write (raises IndexReadOnlyError if that
        cannot work: an index that needs an upgrade, or an unreadable write-ahead log)."""
        self.path = Path(path)
        # File paths are stored relative to this (the directory holding the index directory).
        self.home = Path(os.path.realpath(self.path.parent.parent))
        self.read_only = read_only
        self._lock = threading.RLock()
        self._term_counts: dict[Any, int] = {}  # chunks per FTS5 term, for skip_common
        self._analysis_current = False
        if read_only:
            self._conn = connect_read_only(self.path)
            return
        try:
            self._conn = connect(self.path)
            if self._user_version() == 0:
                with self._transaction() as conn:
                    create_schema(conn)
            elif self._user_version() < SCHEMA_VERSION:
                migrate(self.conn, self.home, self._transaction)
        except IndexCorruptError:
            raise
        except sqlite3.DatabaseError as exc:
            if is_disk_full(exc):
                raise DiskFullError(self.path.parent) from exc
            if is_corrupt(exc):
                raise corrupt_error(self.path, exc) from exc
            raise IndexCorruptError(f"cannot read the index database {self.path}: {exc}") from exc
        version = self._user_version()
        if version > SCHEMA_VERSION:
            raise newer_schema_error(self.path, version)

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn

    def _user_version(self) -> int:
        return user_version(self.conn)

    def _transaction(self) -> Transaction:
        return Transaction(self.conn, self._lock, self.path.parent)

    def _query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple]:
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    def _query_in(self, sql: str, values: Sequence[Any], leading: Sequence[Any] = ()) -> list[tuple]:
        """`rows_in` on this store's connection."""
        with self._lock:
            return rows_in(self.conn, sql, values, leading)

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    # -- meta ----------------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return dict(self._query("SELECT key, value FROM meta"))

    def set_meta(self, values: dict[str, Any]) -> None:
        with self._transaction() as conn:
            self._write_meta(conn, values)

    _write_meta = staticmethod(write_meta)

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
        with self._lock:
            return read_generation(self.conn)

    _bump_generation = staticmethod(bump_generation)

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

    def write_documents(self, documents: Sequence[NewDocument],
                        fill: dict[str, np.ndarray] | None = None) -> WriteResult:
        """Insert or replace documents and their chunks in one transaction; chunks without a
        vector are stored pending (searchable by keyword, absent from the WriteResult).

        `fill` gives vectors, by text hash, to chunks earlier writes left pending, in the same
        transaction (as `fill_vectors` would in its own), before the documents are written.
        """
        import numpy as np

        removed: list[int] = []
        document_ids: list[int] = []
        rows: list[tuple] = []
        documents = list({(doc.kind, doc.path): doc for doc in documents}.values())  # a path twice: its last
        with self._transaction() as conn:
            filled, filled_vectors = fill_pending(conn, fill) if fill else ([], [])
            added_ids, added_vectors = list(filled), list(filled_vectors)
            now = time.time()
            stored = {(kind, path): document_id for kind in {doc.kind for doc in documents}
                      for document_id, path in self._query_in("SELECT id, path FROM documents WHERE kind = ? AND path "
                                                              "IN ({marks})", [d.path for d in documents], [kind])}
            for doc in documents:
                document_id = stored.get((doc.kind, doc.path))
                if document_id is not None:
                    removed.extend(self._delete_chunks(conn, [document_id]))
                    conn.execute(
                        "UPDATE documents SET kind = ?, size = ?, mtime_ns = ?, sha256 = ?, title = ?, "
                        "extractor = ?, metadata = ?, indexed_at = ?, part_kind = ? WHERE id = ?",
                        (doc.kind, doc.size, doc.mtime_ns, doc.sha256, doc.title, doc.extractor,
                         json.dumps(doc.metadata, ensure_ascii=False), now, doc.part_kind, document_id),
                    )
                else:
                    document_id = int(conn.execute(
                        "INSERT INTO documents (path, kind, size, mtime_ns, sha256, title, extractor, metadata, "
                        "indexed_at, part_kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (doc.path, doc.kind, doc.size, doc.mtime_ns, doc.sha256, doc.title, doc.extractor,
                         json.dumps(doc.metadata, ensure_ascii=False), now, doc.part_kind)).lastrowid)
                document_ids.append(document_id)
                rows.extend(
                    (document_id, chunk.ordinal, chunk.text, chunk.char_start, chunk.char_end, chunk.line_start,
                     chunk.line_end, json.dumps(list(chunk.heading_path), ensure_ascii=False), text_hash,
                     b"" if vector is None else np.ascontiguousarray(vector, dtype="<f4").tobytes(), chunk.part)
                    for chunk, text_hash, vector in zip(doc.chunks, doc.text_hashes, doc.vectors))
            # Every document's chunks in one statement, and their ids read back in one: per document,
            # the statements cost more than the rows they wrote.
            conn.executemany(
                "INSERT INTO chunks (document_id, ordinal, text, char_start, char_end, line_start, "
                "line_end, heading_path, text_sha256, vector, part) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            # The documents' old chunks were deleted above, so their rows are exactly the new ones, in
            # the order inserted (ids only grow).
            chunk_ids = sorted(row[0] for row in self._query_in("SELECT id FROM chunks WHERE document_id IN ({marks})",
                                                                document_ids))
            chunks = [(chunk, vector) for doc in documents for chunk, vector in zip(doc.chunks, doc.vectors)]
            conn.executemany("INSERT INTO chunks_fts (rowid, terms) VALUES (?, ?)", [
                (chunk_id, _keyword_terms(chunk.heading_path, chunk.text))
                for chunk_id, (chunk, _) in zip(chunk_ids, chunks)])
            for chunk_id, (_, vector) in zip(chunk_ids, chunks):
                if vector is not None:
                    added_ids.append(chunk_id)
                    added_vectors.append(vector)
            generation = self._bump_generation(conn)
        added_ids, added_vectors, removed = without_refilled(filled, added_ids, added_vectors, removed)
        return WriteResult(
            added_ids=np.asarray(added_ids, dtype=np.int64),
            added_vectors=np.asarray(added_vectors, np.float32) if added_vectors else np.zeros((0, 0), np.float32),
            removed_ids=np.asarray(removed, dtype=np.int64),
            generation=generation,
            filled=len(filled),
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

    _delete_chunks = staticmethod(delete_chunks)

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

        rows = self._query_in(f"SELECT text_sha256, vector FROM chunks WHERE text_sha256 IN ({{marks}}) "
                              f"AND NOT {PENDING} GROUP BY text_sha256", list(dict.fromkeys(text_hashes)))
        return {text_hash: np.frombuffer(blob, dtype="<f4") for text_hash, blob in rows}

    def iter_vectors(self, batch: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (chunk ids, vectors) in id order, in batches, for rebuilding FAISS (pending chunks have none)."""
        import numpy as np

        last = -1
        while True:
            rows = self._query(f"SELECT id, vector FROM chunks WHERE id > ? AND NOT {PENDING} ORDER BY id LIMIT ?",
                               (last, batch))
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
        """Whether the FTS table holds terms from this version's keyword analysis (once it does,
        it stays so: nothing writes an older analysis, so the answer is kept and the meta table
        is not read again on every keyword search)."""
        from semsearch.config import IndexState

        if not self._analysis_current:
            self._analysis_current = IndexState.from_meta(self.meta()).keyword_analysis == keyword.ANALYSIS
        return self._analysis_current

    def reanalyze_keywords(self) -> int:
        """Rebuild the FTS table from the stored chunk texts with the current analysis; returns rows.

        For indexes written by a version that analysed text differently. No vectors change.
        """
        with self._transaction() as conn:
            conn.execute("DROP TABLE IF EXISTS chunks_fts")
            conn.execute(FTS_TABLE)
            rows = conn.execute("SELECT id, heading_path, text FROM chunks").fetchall()
            conn.executemany(
                "INSERT INTO chunks_fts (rowid, terms) VALUES (?, ?)",
                ((cid, _keyword_terms(json.loads(headings), text)) for cid, headings, text in rows),
            )
            self._write_meta(conn, {"keyword_analysis": keyword.ANALYSIS})
        return len(rows)

    def keyword_search(self, query: str, limit: int, allowed_ids: np.ndarray | None = None, *,
                       skip_common: bool = False) -> list[tuple[int, float]]:
        """(chunk id, score) by FTS5 bm25 over the CJK-aware terms; higher score is better.

        `skip_common` leaves out the terms found in at least half of the chunks: FTS5 gives those
        an IDF of ~0 (clamped to 1e-6), so they barely move bm25, yet ranking them means scoring
        most of the index (no rows when only they remain).
        """
        with self._lock:
            return _keyword_rows(self.conn, query, limit, allowed_ids, skip_common, self._term_counts)

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> dict[int, tuple[str, np.ndarray]]:
        """(text, stored vector) of chunks by id (missing and pending ids are absent)."""
        import numpy as np

        rows = self._query_in(f"SELECT id, text, vector FROM chunks WHERE id IN ({{marks}}) AND NOT {PENDING}",
                              [int(i) for i in chunk_ids])
        return {cid: (text, np.frombuffer(blob, dtype="<f4").astype(np.float32)) for cid, text, blob in rows}

    def vector_sample(self, limit: int) -> list[bytes]:
        """About `limit` stored vectors spread evenly over the chunk ids, by id lookups (a scan is far slower)."""
        step = max(1, (highest := self._query("SELECT max(id) FROM chunks")[0][0] or 0) // max(1, limit))
        ids = list(range(step, highest + 1, step))[:limit]
        return [blob for (blob,) in self._query_in(f"SELECT vector FROM chunks WHERE NOT {PENDING} "
                                                   "AND id IN ({marks})", ids)]

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


def _keyword_rows(conn: sqlite3.Connection, query: str, limit: int, allowed_ids: np.ndarray | None,
                  skip_common: bool, term_counts: dict[Any, int]) -> list[tuple[int, float]]:
    """`Store.keyword_search` on `conn`, best first, restricted to `allowed_ids` if given (through
    a temporary table of that connection); the caller holds the connection's lock."""
    if skip_common:
        query = " ".join(_uncommon_terms(conn, query, term_counts))
    expression = keyword.match_expression(query)
    if expression is None:
        return []
    if allowed_ids is None:
        rows = conn.execute(
            "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
            "ORDER BY bm25(chunks_fts) LIMIT ?",
            (expression, limit),
        ).fetchall()
    else:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS allowed_ids (id INTEGER PRIMARY KEY)")
        conn.execute("DELETE FROM allowed_ids")
        conn.executemany("INSERT INTO allowed_ids (id) VALUES (?)", ((int(i),) for i in allowed_ids))
        rows = conn.execute(
            "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
            "AND rowid IN (SELECT id FROM allowed_ids) ORDER BY bm25(chunks_fts) LIMIT ?",
            (expression, limit),
        ).fetchall()
    # bm25() is smaller-is-better; flip it so every retrieval score is larger-is-better.
    return [(int(rowid), -float(score)) for rowid, score in rows]


def _uncommon_terms(conn: sqlite3.Connection, query: str, counts: dict[Any, int]) -> list[str]:
    """The query's terms (`keyword.terms`) less those in at least half of the indexed chunks, the
    point where FTS5's IDF, log((N - n + 0.5) / (n + 0.5)), stops being positive. Indexes under
    `SKIP_COMMON_MIN_CHUNKS` keep every term: ranking one costs little there, and in a small
    folder a word in half the notes still orders them by how often they use it.

    `counts` caches the chunk count and each term's chunk count (counting a common term walks its
    whole posting list) until the database changes: `PRAGMA data_version` moves when another
    connection commits, the generation when this one writes; neither reads a table.
    """
    terms = list(dict.fromkeys(keyword.terms(query, for_query=True)))
    if not terms:
        return []
    state = (conn.execute("PRAGMA data_version").fetchone()[0], read_generation(conn))
    if counts.get(_COUNTS_STATE) != state or len(counts) > 10_000:
        counts.clear()
        counts[_COUNTS_STATE] = state  # type: ignore[assignment]
        counts[_CHUNKS] = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    total = counts[_CHUNKS]
    if total < SKIP_COMMON_MIN_CHUNKS:
        return terms
    known = {term: counts[term] for term in terms if term in counts}
    unknown = [term for term in terms if term not in known]
    if unknown:
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_fts_terms USING fts5vocab(main, chunks_fts, row)")
        found = dict(conn.execute(
            f"SELECT term, doc FROM temp.chunks_fts_terms WHERE term IN ({','.join('?' * len(unknown))})",
            unknown).fetchall())
        fresh = {term: int(found.get(term, 0)) for term in unknown}
        counts.update(fresh)
        known.update(fresh)
    return [term for term in terms if 2 * known[term] < total]


# Below this many chunks hybrid keeps common terms in its keyword query (`_uncommon_terms`).
SKIP_COMMON_MIN_CHUNKS = 10_000
# The keys of `_uncommon_terms`'s cache state and chunk count (objects: never a term).
_COUNTS_STATE, _CHUNKS = object(), object()

