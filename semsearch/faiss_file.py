"""`VectorFile`: the derived vectors.faiss of one index directory — checked, loaded, rebuilt, saved, kept fit.

The file holds a vector for every chunk that has one; a chunk committed before its vector
(pending, DESIGN §2 invariant 0) is never in it, and enters it when its vector is filled in
(another committed transaction that `apply` follows). SQLite's meta stamps what the file
reflects: the generation, its size in bytes, its vector count and a fingerprint of its
contents, plus the index type it was built as. A file whose stamp does
not match (stale, missing, truncated, another index's) is rebuilt from the vectors in SQLite —
never trusted, never re-embedded. A rebuilt file is saved atomically when no writer holds the
lock; in a read-only directory the rebuilt index lives in memory only.

Writers load the file into memory, follow each SQLite transaction (`apply`), and on finishing
rebuild when HNSW tombstones pile up, IVF lists no longer fit the size or `auto` has outgrown
exact search, then save and stamp.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from semsearch.config import IndexSettings, IndexState, is_recorded
from semsearch.errors import DiskFullError
from semsearch.options import FAISS_NAME
from semsearch.store import Store, WriteResult
from semsearch.options import RebuildPolicy, resolve_index_type

# FAISS (and numpy) load when vectors are first needed: `status` and `--help` never need them.
if TYPE_CHECKING:
    import filelock

    from semsearch.vectors import VectorIndex
    from semsearch.write_lock import WriteLock

# Blocks sampled by `fingerprint`: enough that two FAISS files of the same size and count (another
# index's, or this one's from before a rebuild) differ in some block, few enough to cost nothing on open.
_FINGERPRINT_BLOCKS = 64
_FINGERPRINT_BLOCK = 4096
_FINGERPRINT_TAIL = 65536


class VectorFile:
    """The FAISS file of the index directory `directory`, kept in step with `store`.

    `write_lock` is the index's writer lock (a WriteLock or the file lock itself): a reader that
    rebuilt a stale file saves it only when it can take the lock without waiting. `policy` says when `auto` leaves exact search and
    when HNSW tombstones force a rebuild. Loading is safe from several threads at once.
    """

    def __init__(self, directory: Path, store: Store, write_lock: WriteLock | filelock.FileLock,
                 policy: RebuildPolicy = RebuildPolicy()):
        self.directory = directory
        self.policy = policy
        self.path = directory / FAISS_NAME
        self._store = store
        self._write_lock = write_lock
        self._vectors: VectorIndex | None = None
        self._generation = -1
        self._lock = threading.Lock()
        self.repaired: str | None = None  # set when loading found the file stale and rebuilt it

    # -- checking ------------------------------------------------------------------------------

    def stamp_ok(self, meta: Mapping[str, str], chunks: int) -> bool:
        """Whether the file on disk is the one meta's stamp describes, holding `chunks` vectors."""
        state = IndexState.from_meta(meta)
        try:
            size = self.path.stat().st_size
        except OSError:
            return False
        return (
            state.faiss_stamped and state.faiss_generation == state.generation
            and state.faiss_bytes == size
            and state.faiss_vectors == chunks
            # Indexes stamped before fingerprints existed get one on their next write.
            and state.faiss_fingerprint in ("", fingerprint(self.path))
        )

    def in_sync(self, meta: Mapping[str, str], chunks: int) -> bool:
        """Whether the file agrees with SQLite (an index that never held a vector needs no file)."""
        return self.stamp_ok(meta, chunks) or (chunks == 0 and not IndexState.from_meta(meta).faiss_stamped)

    def wanted_type(self, meta: Mapping[str, str], chunks: int, index_type: str | None = None) -> str:
        """The FAISS type `index_type` (default: the recorded one) resolves to at `chunks` vectors."""
        settings = IndexSettings.from_meta(meta) or IndexSettings()
        return resolve_index_type(index_type or settings.index_type or "flat", chunks, settings.dimensions or 1,
                                  self.policy)

    # -- loading -------------------------------------------------------------------------------

    def vectors(self, *, writable: bool = False) -> VectorIndex:
        """The FAISS index, checked against SQLite and rebuilt from it if stale.

        Readers get flat and HNSW files memory-mapped; `writable` loads them into memory.
        """
        from semsearch.vectors import VectorIndex

        with self._lock:
            generation = self._store.generation()
            current = self._vectors
            if current is not None and self._generation == generation and not (writable and current.mapped):
                return current
            meta = self._store.meta()
            dims = (IndexSettings.from_meta(meta) or IndexSettings()).dimensions or 0
            chunks = self._store.count_vectors()
            kind = IndexState.from_meta(meta).faiss_type or self.wanted_type(meta, chunks)
            loaded = None
            if dims and self.stamp_ok(meta, chunks):
                loaded = VectorIndex.load(self.path, dims, kind, self._store.faiss_tombstones(), mmap=not writable,
                                          policy=self.policy)
            if loaded is None or loaded.ntotal != chunks:
                loaded = self._build(meta, chunks) if dims else VectorIndex(1)
                self.repaired = (
                    f"vectors.faiss was missing or stale; rebuilt it from SQLite ({loaded.ntotal} vectors)"
                    if dims else None
                )
                if self.repaired and self._store.read_only:
                    self.repaired = (
                        f"vectors.faiss was missing or stale; rebuilt it in memory from SQLite ({loaded.ntotal} "
                        "vectors) — the index directory is read-only, so every open repeats this until "
                        "`semsearch rebuild` runs where it is writable"
                    )
                self._vectors, self._generation = loaded, generation
                self._try_save()
            else:
                self._vectors, self._generation = loaded, generation
            return self._vectors

    def _build(self, meta: Mapping[str, str], chunks: int, index_type: str | None = None) -> VectorIndex:
        """A new FAISS index of the wanted type (or `index_type`) from the vectors in SQLite (no embedder calls)."""
        from semsearch.vectors import VectorIndex

        dimensions = (IndexSettings.from_meta(meta) or IndexSettings()).dimensions
        assert dimensions is not None
        return VectorIndex.build(self.wanted_type(meta, chunks, index_type), dimensions, self._store.iter_vectors,
                                 chunks, self.policy)

    # -- writing (the caller holds the write lock) ---------------------------------------------

    @contextmanager
    def updating(self) -> Iterator[None]:
        """Load the file for writing; on leaving, rebuild it if maintenance calls for it, then save.

        Temp files a killed writer left mid-save are removed first.
        """
        from semsearch.vectors import remove_stale_temp_files

        remove_stale_temp_files(self.directory)
        self.vectors(writable=True)
        try:
            yield
        finally:
            self.save(force=self._maintain())

    def apply(self, result: WriteResult) -> None:
        """Follow one committed SQLite transaction: drop its removed vectors, add its new ones."""
        vectors = self._vectors
        assert vectors is not None
        vectors.remove(result.removed_ids)
        vectors.add(result.added_ids, result.added_vectors)
        self._generation = result.generation

    def rebuild(self, index_type: str | None = None) -> int:
        """Rebuild from SQLite as `index_type` (default: the recorded one) and save; returns the vector count."""
        meta = self._store.meta()
        with self._lock:
            self._vectors = self._build(meta, self._store.count_vectors(), index_type)
            self._generation = self._store.generation()
        self.save(force=True)
        return self._vectors.ntotal

    def save(self, *, force: bool = False) -> None:
        """Write the loaded index atomically and stamp it in meta, unless the file already holds it.

        Raises DiskFullError when the device is full (the previous file and stamp stay).
        """
        meta = self._store.meta()
        if self._vectors is None or not is_recorded(meta):
            return
        state = IndexState.from_meta(meta)
        if (not force and state.faiss_generation == self._generation
                and state.faiss_type == self._vectors.kind and self.stamp_ok(meta, self._vectors.ntotal)):
            return  # the file already holds this generation (e.g. re-indexing found nothing to do)
        size = self._vectors.save(self.path)
        self._store.stamp_faiss({
            "faiss_generation": self._generation,
            "faiss_bytes": size,
            "faiss_fingerprint": fingerprint(self.path),
            "faiss_vectors": self._vectors.ntotal,
            "faiss_type": self._vectors.kind,
        }, self._vectors.tombstones)

    def _try_save(self) -> None:
        """Save a rebuilt file if no writer holds the lock (a reader never waits)."""
        if self._store.read_only:
            return
        import filelock

        try:
            with self._write_lock.acquire(timeout=0):
                self.save()
        except (filelock.Timeout, DiskFullError):
            pass  # the vectors in memory are right; a later writer saves them

    def _maintain(self) -> bool:
        """Rebuild from SQLite when HNSW tombstones pile up, IVF lists no longer fit the size, or
        `auto` has outgrown exact search; returns whether it did."""
        vectors = self._vectors
        meta = self._store.meta()
        if vectors is None or not is_recorded(meta):
            return False
        chunks = self._store.count_vectors()
        if not (vectors.needs_rebuild or vectors.kind != self.wanted_type(meta, chunks)):
            return False
        with self._lock:
            self._vectors = self._build(meta, chunks)
            self._generation = self._store.generation()
        return True


def fingerprint(path: Path) -> str:
    """A sha256 over evenly spread blocks and the tail of a file (the id map of a FAISS file).

    Generation, size and count cannot tell this index's vectors.faiss from another index's with the
    same dimensions and count; hashing the whole file would read every vector on each open, where a
    memory-mapped search reads only what it needs.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            digest.update(str(size).encode())
            step = max(_FINGERPRINT_BLOCK, size // _FINGERPRINT_BLOCKS)
            for offset in range(0, size, step):
                handle.seek(offset)
                digest.update(handle.read(_FINGERPRINT_BLOCK))
            handle.seek(max(0, size - _FINGERPRINT_TAIL))
            digest.update(handle.read(_FINGERPRINT_TAIL))
    except OSError:
        return "unreadable"
    return digest.hexdigest()[:32]
