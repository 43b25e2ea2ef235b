"""The store's `sources` table: the folders and files an index remembers, and forgetting one.

Part of the store layer with `semsearch.store` and `semsearch.store_schema` (SQL lives in these
modules only); `Store` takes these methods from `SourceRecords`. A source is keyed like the
documents under it (`semsearch.paths.document_key`): relative to the index home when inside it,
so a moved project folder still finds its sources, else absolute.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from semsearch.store_schema import bump_generation, delete_chunks

if TYPE_CHECKING:
    from semsearch.store import WriteResult


@dataclass(frozen=True)
class SourceRow:
    """A sources row: the source's key and the options its files are walked with."""

    key: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    use_ignore_files: bool = True

    @property
    def options(self) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
        return self.include, self.exclude, self.use_ignore_files


class SourceRecords:
    """The `Store` methods that read and write remembered sources (see the module docstring)."""

    def source_rows(self) -> list[SourceRow]:
        """Every remembered source, in the order they were first given."""
        rows = self._query("SELECT path, include, exclude, use_ignore_files FROM sources ORDER BY added_at, path")
        return [SourceRow(key, tuple(json.loads(include)), tuple(json.loads(exclude)), bool(use_ignore))
                for key, include, exclude, use_ignore in rows]

    def put_sources(self, rows: Sequence[SourceRow], drop: Sequence[str] = ()) -> None:
        """Remember `rows` (a key already remembered takes the new options and keeps its place)
        and forget the keys in `drop`, in one transaction; no document changes."""
        now = time.time()
        with self._transaction() as conn:
            conn.executemany("DELETE FROM sources WHERE path = ?", [(key,) for key in drop])
            conn.executemany(
                "INSERT INTO sources (path, include, exclude, use_ignore_files, added_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(path) DO UPDATE SET include = excluded.include, exclude = excluded.exclude, "
                "use_ignore_files = excluded.use_ignore_files",
                [(row.key, json.dumps(list(row.include), ensure_ascii=False),
                  json.dumps(list(row.exclude), ensure_ascii=False), int(row.use_ignore_files), now)
                 for row in rows],
            )

    def forget_source(self, key: str, document_ids: Sequence[int]) -> WriteResult:
        """Forget the source `key` and delete `document_ids` (its documents no other source
        covers) with their chunks, vectors and keyword rows, in one transaction."""
        import numpy as np

        from semsearch.store import WriteResult

        with self._transaction() as conn:
            conn.execute("DELETE FROM sources WHERE path = ?", (key,))
            removed = delete_chunks(conn, document_ids)
            conn.executemany("DELETE FROM documents WHERE id = ?", [(i,) for i in document_ids])
            generation = bump_generation(conn)
        return WriteResult(added_ids=np.zeros(0, np.int64), added_vectors=np.zeros((0, 0), np.float32),
                           removed_ids=np.asarray(removed, dtype=np.int64), generation=generation)
