"""Chunks committed before their vector (two-phase indexing): finding, counting and filling them in.

Part of the store layer with `semsearch.store` and `semsearch.store_schema`: SQL lives in these
modules only. A pending chunk holds an empty vector BLOB (`store_schema.PENDING`), found through
a partial index on those rows alone; it is in the keyword table from the start and never in
FAISS until `fill_vectors` commits its vector. `Store` inherits `PendingChunks`, which uses its
connection plumbing (`_query`, `_transaction`, `_bump_generation`, `counts`, `home`).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from semsearch.paths import absolute_path
from semsearch.store_schema import PENDING, rows_in
from semsearch.types import Chunk, embed_text

if TYPE_CHECKING:
    import numpy as np

    from semsearch.store import StoredDocument, WriteResult


@dataclass(frozen=True)
class PendingChunk:
    """A chunk committed without its vector: what to send to the embedder, and its cache key."""

    chunk_id: int
    text_hash: str
    text: str  # the text the embedder is given (`semsearch.types.embed_text`)
    document: StoredDocument  # its `path` absolute for a file, the caller's id for a text
    kind: str  # the document's: "file" | "text"


class PendingChunks:
    """The pending-chunk queries of `semsearch.store.Store`."""

    def pending_chunks(self, after_id: int, limit: int) -> list[PendingChunk]:
        """Up to `limit` chunks still waiting for their vector, with ids above `after_id`, in id order."""
        from semsearch.store import StoredDocument

        rows = self._query(f"SELECT c.id, c.text_sha256, c.heading_path, c.text, d.id, d.path, d.size, d.mtime_ns, "
                           f"d.sha256, d.kind FROM chunks c JOIN documents d ON d.id = c.document_id "
                           f"WHERE {PENDING} AND c.id > ? ORDER BY c.id LIMIT ?", (after_id, limit))
        documents: dict[int, StoredDocument] = {}  # a document's chunks are read together: one row each
        found = []
        for r in rows:
            document = documents.get(r[4])
            if document is None:
                document = documents[r[4]] = StoredDocument(
                    r[4], absolute_path(r[5], self.home) if r[9] == "file" else r[5], *r[6:9])
            found.append(PendingChunk(r[0], r[1], embed_text(Chunk(0, r[3], 0, 0, 0, 0, tuple(json.loads(r[2])))),
                                      document, r[9]))
        return found

    def fill_vectors(self, vectors_by_hash: dict[str, np.ndarray]) -> WriteResult:
        """Give every pending chunk whose text hash is a key its vector, in one transaction."""
        import numpy as np

        from semsearch.store import WriteResult

        with self._transaction() as conn:
            ids, vectors = fill_pending(conn, vectors_by_hash)
            generation = self._bump_generation(conn)
        return WriteResult(added_ids=np.asarray(ids, dtype=np.int64),
                           added_vectors=np.stack(vectors) if vectors else np.zeros((0, 0), np.float32),
                           removed_ids=np.zeros(0, np.int64), generation=generation, filled=len(ids))

    def count_pending(self) -> int:
        """Chunks committed without their vector yet (searchable by keyword only)."""
        return int(self._query(f"SELECT count(*) FROM chunks WHERE {PENDING}")[0][0])

    def count_vectors(self) -> int:
        """Chunks with a vector: what vectors.faiss holds."""
        return self.counts()[1] - self.count_pending()


def fill_pending(conn: sqlite3.Connection, vectors_by_hash: dict[str, np.ndarray]) -> tuple[list[int], list[np.ndarray]]:
    """Inside the caller's transaction, give every pending chunk whose text hash is a key its
    vector; returns the ids filled and their vectors (float32), in the same order."""
    import numpy as np

    vectors = {text_hash: np.ascontiguousarray(vector, dtype="<f4") for text_hash, vector in vectors_by_hash.items()}
    hashes = list(vectors)
    # One lookup per IN_BATCH hashes and one UPDATE statement for all rows: a statement per
    # text hash cost as much as the rest of the vector phase with a fast embedder.
    found = rows_in(conn, f"SELECT id, text_sha256 FROM chunks WHERE text_sha256 IN ({{marks}}) AND {PENDING}", hashes)
    blobs = {text_hash: vector.tobytes() for text_hash, vector in vectors.items()}
    conn.executemany("UPDATE chunks SET vector = ? WHERE id = ?", [(blobs[h], i) for i, h in found])
    return [i for i, _ in found], [vectors[h].astype(np.float32, copy=False) for _, h in found]


def without_refilled(filled: list[int], added_ids: list[int], added_vectors: list, removed: list[int]):
    """(added ids, their vectors, removed ids) of one transaction less the chunks it both filled
    (`fill_pending`) and deleted with their document's old chunks: those never reached FAISS."""
    gone = set(filled).intersection(removed) if filled and removed else set()
    if not gone:
        return added_ids, added_vectors, removed
    kept = [i for i, chunk_id in enumerate(added_ids) if chunk_id not in gone]
    return ([added_ids[i] for i in kept], [added_vectors[i] for i in kept],
            [chunk_id for chunk_id in removed if chunk_id not in gone])
