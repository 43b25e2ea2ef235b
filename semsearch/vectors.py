"""The FAISS index: a derived accelerator over the vectors in SQLite, keyed by chunk id.

`IndexIDMap2(IndexFlatIP)` gives exact inner-product (= cosine on unit vectors) search with
`add_with_ids`/`remove_ids` (DESIGN §7). The file is written atomically (temp file in the same
directory, fsync, `os.replace`) and its generation and size are recorded in SQLite's meta by the
caller, so a stale, missing or truncated file is detected on open and rebuilt from SQLite.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

import faiss
import numpy as np

FAISS_NAME = "vectors.faiss"


class VectorIndex:
    """Exact inner-product search over unit vectors, with ids; thread-safe for concurrent search."""

    def __init__(self, dimensions: int, index: faiss.Index | None = None):
        self.dimensions = dimensions
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimensions))
        self._write_lock = threading.Lock()

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @classmethod
    def from_batches(cls, dimensions: int, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> VectorIndex:
        """Build an index from (ids, vectors) batches, e.g. `Store.iter_vectors()`."""
        index = cls(dimensions)
        for ids, vectors in batches:
            index._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        return index

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under ids, replacing any existing entry with the same id.

        IndexIDMap2 accepts duplicate ids silently, so we remove before adding (invariant 2).
        """
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        with self._write_lock:
            self._index.remove_ids(ids)
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove(self, ids: np.ndarray) -> None:
        if len(ids) == 0:
            return
        with self._write_lock:
            self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64))

    def search(self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) for one query vector; only `allowed_ids` when given.

        The filter is applied inside FAISS with an IDSelector, so k results come back whenever at
        least k allowed vectors exist (no post-filtering of a global top-k).
        """
        if self.ntotal == 0 or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        k = min(k, self.ntotal)
        if allowed_ids is None:
            scores, ids = self._index.search(q, k)
        else:
            if len(allowed_ids) == 0:
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)
            scores, ids = self._index.search(q, min(k, len(allowed_ids)), params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def save(self, path: Path) -> int:
        """Write atomically to `path`; returns the number of bytes written."""
        path = Path(path)
        fd, tmp_name = tempfile.mkstemp(prefix=".vectors-", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            with self._write_lock:
                faiss.write_index(self._index, tmp_name)
            with open(tmp_name, "rb+") as handle:
                os.fsync(handle.fileno())
            size = os.path.getsize(tmp_name)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_directory(path.parent)
        return size

    @classmethod
    def load(cls, path: Path, dimensions: int) -> VectorIndex | None:
        """The index at `path`, or None if it is missing, unreadable or of other dimensions."""
        try:
            index = faiss.read_index(str(path))
        except (RuntimeError, OSError):
            return None
        if index.d != dimensions:
            return None
        return cls(dimensions, index)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
