"""The FAISS index: a derived accelerator over the vectors in SQLite, keyed by chunk id.

Index types (chosen at creation or by `rebuild`, recorded in meta; DESIGN §7):

- `flat`: exact inner product (= cosine on unit vectors), `IndexIDMap(IndexFlatIP)`.
- `hnsw`, `hnsw-sq8`: an HNSW graph over full or 8-bit scalar-quantised vectors. HNSW cannot
  remove vectors, so deletions become tombstones filtered out with an `IDSelector`; the owner
  rebuilds from SQLite once they pass `TOMBSTONE_LIMIT`.
- `ivf`, `ivf-sq8`: inverted lists trained (k-means) on the stored vectors; supports removal.
- `auto`: flat while `count × dimensions` stays under `AUTO_FLAT_MAX_ELEMENTS`, else `hnsw`
  (the threshold and the defaults below come from benchmarks/bench_query.py).

Filtered search keeps the library's promise for every type: when at least k vectors are allowed,
k come back — an approximate search that returns fewer falls back to an exact scan of the
allowed vectors. Flat and HNSW files are opened memory-mapped (`IO_FLAG_MMAP_IFC`), so a one-off
search does not read the whole file; a writer reopens them in memory. Files are written
atomically (temp file in the same directory, fsync, `os.replace`); the caller stamps SQLite's
meta with the generation, size and count they reflect, so stale files are rebuilt, never trusted.
"""

from __future__ import annotations

import errno
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import faiss
import numpy as np

from semsearch.errors import ConfigError, DiskFullError
# Re-exported: the thresholds and knobs live with the other choices, light enough for `status`.
from semsearch.options import AUTO_ANN_TYPE, AUTO_FLAT_MAX_ELEMENTS, TOMBSTONE_LIMIT, TOMBSTONE_MIN  # noqa: F401
from semsearch.options import FAISS_NAME, INDEX_TYPES, RebuildPolicy, SearchTuning, resolve_index_type  # noqa: F401


HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
# At 1M × 384 (bench_query.py), efSearch 64 reached recall@10 0.944 and 128 reached 0.99 at
# ~0.4 ms: 128 is the default. nprobe 32 of √n lists reached ≥ 0.95 at 100k and 1M.
DEFAULT_EF_SEARCH = 128
DEFAULT_NPROBE = 32
_TRAIN_SAMPLE_PER_LIST = 50
# A save writes `.vectors-XXXX.tmp` next to the index and renames it; a killed writer leaves one.
TEMP_PREFIX, TEMP_SUFFIX = ".vectors-", ".tmp"

Batches = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]


def ivf_lists(count: int) -> int:
    """Inverted lists for `count` vectors: about √n (k-means stays affordable on two cores), and
    at least 39 training points per list."""
    return max(1, min(int(math.sqrt(max(count, 1))), count // 39))


class VectorIndex:
    """Top-k inner-product search over unit vectors, with ids; thread-safe for concurrent search."""

    def __init__(self, dimensions: int, kind: str = "flat", index: faiss.Index | None = None,
                 tombstones: Iterable[int] = (), policy: RebuildPolicy = RebuildPolicy()):
        self.dimensions = dimensions
        self.kind = kind
        self.policy = policy
        self._index = index if index is not None else _empty(kind, dimensions)
        self._tombstones: set[int] = set(int(i) for i in tombstones)
        self._write_lock = threading.Lock()
        self._positions: np.ndarray | None = None  # HNSW: argsort of the id map, for exact fallback
        self._tombstone_filter: tuple | None = None  # (IDSelectorNot, the IDSelectorBatch it refers to)
        self.mapped = False

    @property
    def ntotal(self) -> int:
        """Live vectors (tombstones excluded)."""
        return int(self._index.ntotal) - len(self._tombstones)

    @property
    def tombstones(self) -> frozenset[int]:
        return frozenset(self._tombstones)

    @property
    def needs_rebuild(self) -> bool:
        """Too many tombstones (HNSW), or inverted lists far from the size's ideal (IVF)."""
        if self._tombstones:
            return len(self._tombstones) > max(self.policy.tombstone_min,
                                               self.policy.tombstone_limit * self._index.ntotal)
        if self.kind.startswith("ivf"):
            return self._ivf().nlist * 4 < ivf_lists(self.ntotal)
        return False

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def build(cls, kind: str, dimensions: int, batches: Batches, count: int,
              policy: RebuildPolicy = RebuildPolicy()) -> VectorIndex:
        """Build an index of a concrete `kind` from `batches()` ((ids, vectors) pairs, e.g.
        `Store.iter_vectors`); quantisers and IVF centroids are trained on a sample of them."""
        if kind in ("flat", "hnsw"):
            index = cls(dimensions, kind, policy=policy)
        else:
            lists = ivf_lists(count) if kind.startswith("ivf") else 1
            sample = _sample(batches, max(lists * _TRAIN_SAMPLE_PER_LIST, 20_000), count)
            index = cls(dimensions, kind, _empty(kind, dimensions, lists), policy=policy)
            if len(sample):
                index._index.train(sample)
        for ids, vectors in batches():
            index._add(ids, vectors)
        return index

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under ids, replacing any existing entry with the same id.

        IDMap and IVF accept duplicate ids silently, so we remove before adding (invariant 2).
        HNSW cannot remove; it needs no removal either, as chunk ids are never reused (AUTOINCREMENT)
        and a replaced chunk's old id is tombstoned by `remove`.
        """
        if len(ids) == 0:
            return
        self._check_writable()
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        with self._write_lock:
            if not self._is_hnsw:
                self._index.remove_ids(ids)
            self._add(ids, vectors)

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if not self._index.is_trained:  # an IVF index created before any vector existed
            self._index.train(vectors)
        self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
        self._positions = None

    def remove(self, ids: np.ndarray) -> None:
        if len(ids) == 0:
            return
        self._check_writable()
        with self._write_lock:
            if self._is_hnsw:
                self._tombstones.update(int(i) for i in ids)
                self._tombstone_filter = None
            else:
                self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64))

    # -- searching -----------------------------------------------------------------------------

    def search(self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None,
               tuning: SearchTuning = SearchTuning()) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) for one query vector; only `allowed_ids` when given.

        The filter is applied inside FAISS with an IDSelector, so k results come back whenever at
        least k allowed vectors exist (no post-filtering of a global top-k).
        """
        if self.ntotal <= 0 or k <= 0:
            return _no_hits()
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if allowed_ids is not None:
            if len(allowed_ids) == 0:
                return _no_hits()
            allowed_ids = np.ascontiguousarray(allowed_ids, dtype=np.int64)
            if self._tombstones:
                allowed_ids = allowed_ids[~np.isin(allowed_ids, np.fromiter(self._tombstones, np.int64))]
                if len(allowed_ids) == 0:
                    return _no_hits()
            wanted = min(k, len(allowed_ids))
            selector = faiss.IDSelectorBatch(allowed_ids)
        else:
            wanted = min(k, self.ntotal)
            selector = self._live_filter()
        params = self._params(wanted, selector, tuning)
        scores, ids = self._index.search(q, wanted, params=params)
        keep = ids[0] >= 0
        scores, ids = scores[0][keep], ids[0][keep]
        if allowed_ids is not None and len(ids) < wanted and self.kind != "flat":
            return self._exact_among(q, allowed_ids, wanted)
        return scores, ids

    def _live_filter(self):
        """The IDSelector that hides tombstones (None without any), built once per change."""
        if not self._tombstones:
            return None
        if self._tombstone_filter is None:
            hidden = faiss.IDSelectorBatch(np.fromiter(self._tombstones, np.int64, len(self._tombstones)))
            self._tombstone_filter = (faiss.IDSelectorNot(hidden), hidden)
        return self._tombstone_filter[0]

    def _params(self, k: int, selector, tuning: SearchTuning):
        if self._is_hnsw:
            return faiss.SearchParametersHNSW(sel=selector, efSearch=max(tuning.ef_search or DEFAULT_EF_SEARCH, k))
        if self.kind.startswith("ivf"):
            nprobe = min(tuning.nprobe or DEFAULT_NPROBE, self._ivf().nlist)
            return faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
        return faiss.SearchParameters(sel=selector) if selector is not None else None

    def _exact_among(self, q: np.ndarray, allowed_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over the allowed vectors, for filters too selective for the graph/lists."""
        if self.kind.startswith("ivf"):
            params = faiss.SearchParametersIVF(sel=faiss.IDSelectorBatch(allowed_ids), nprobe=self._ivf().nlist)
            scores, ids = self._index.search(q, k, params=params)
            keep = ids[0] >= 0
            return scores[0][keep], ids[0][keep]
        id_map = faiss.vector_to_array(self._index.id_map)
        if self._positions is None:
            self._positions = np.argsort(id_map, kind="stable")
        sorted_ids = id_map[self._positions]
        where = np.searchsorted(sorted_ids, allowed_ids).clip(max=len(sorted_ids) - 1)
        found = sorted_ids[where] == allowed_ids
        ids, internal = allowed_ids[found], self._positions[where[found]]
        if len(ids) == 0:
            return _no_hits()
        vectors = faiss.downcast_index(self._index.index).storage.reconstruct_batch(internal)
        scores = vectors @ q[0]
        top = np.argsort(-scores, kind="stable")[:k]
        return scores[top].astype(np.float32), ids[top]

    # -- files ---------------------------------------------------------------------------------

    def save(self, path: Path) -> int:
        """Write atomically to `path`; returns the number of bytes written.

        Raises DiskFullError when the device runs out of space (the previous file stays).
        """
        import tempfile  # with shutil, bz2 and lzma behind it: only a writer pays for them

        path = Path(path)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=path.parent)
        except OSError as exc:
            _raise_if_disk_full(exc, path.parent)
            raise
        try:
            # Through a Python file rather than faiss's own: FAISS reports a failed final flush
            # (ENOSPC at fclose) only on stderr and returns as if the file were whole.
            with open(fd, "wb") as handle:
                with self._write_lock:
                    faiss.write_index(self._index, faiss.PyCallbackIOWriter(handle.write))
                handle.flush()
                os.fsync(handle.fileno())
            size = os.path.getsize(tmp_name)
            os.replace(tmp_name, path)
        except BaseException as exc:
            Path(tmp_name).unlink(missing_ok=True)
            _raise_if_disk_full(exc, path.parent)
            raise
        _fsync_directory(path.parent)
        return size

    @classmethod
    def load(cls, path: Path, dimensions: int, kind: str = "flat", tombstones: Iterable[int] = (),
             *, mmap: bool = False, policy: RebuildPolicy = RebuildPolicy()) -> VectorIndex | None:
        """The index at `path`, or None if it is missing, unreadable, or of other dimensions or type.

        `mmap` maps flat and HNSW codes instead of reading them (read-only: do not add to it).
        """
        mapped = mmap and not kind.startswith("ivf")
        try:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mapped else 0)
        except (RuntimeError, OSError):
            return None
        if index.d != dimensions or _kind_of(index) != kind.removesuffix("-sq8"):
            return None
        loaded = cls(dimensions, kind, index, tombstones, policy)
        loaded.mapped = mapped
        return loaded

    # -- internals -----------------------------------------------------------------------------

    def _check_writable(self) -> None:
        # FAISS aborts the whole process when a memory-mapped index is resized.
        if self.mapped:
            raise RuntimeError("this vector index is memory-mapped (read-only); load it with mmap=False to write")

    @property
    def _is_hnsw(self) -> bool:
        return self.kind.startswith("hnsw")

    def _ivf(self):
        return faiss.extract_index_ivf(self._index)


def _empty(kind: str, dimensions: int, lists: int = 1) -> faiss.Index:
    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "flat":
        return faiss.IndexIDMap(faiss.IndexFlatIP(dimensions))
    if kind in ("hnsw", "hnsw-sq8"):
        graph = (faiss.IndexHNSWFlat(dimensions, HNSW_M, ip) if kind == "hnsw"
                 else faiss.IndexHNSWSQ(dimensions, faiss.ScalarQuantizer.QT_8bit, HNSW_M, ip))
        graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return faiss.IndexIDMap(graph)
    if kind in ("ivf", "ivf-sq8"):
        quantizer = faiss.IndexFlatIP(dimensions)
        index = (faiss.IndexIVFFlat(quantizer, dimensions, lists, ip) if kind == "ivf"
                 else faiss.IndexIVFScalarQuantizer(quantizer, dimensions, lists, faiss.ScalarQuantizer.QT_8bit, ip))
        index.own_fields = True
        quantizer.this.disown()
        return index
    raise ConfigError(f"unknown index type {kind!r}: choose one of {', '.join(INDEX_TYPES)}")


def _kind_of(index: faiss.Index) -> str:
    """flat / hnsw / ivf for a loaded index (sq8 variants share their family's structure)."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    if isinstance(inner, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(inner, faiss.IndexIVF):
        return "ivf"
    return "flat"


def _sample(batches: Batches, size: int, count: int) -> np.ndarray:
    """An evenly spread sample of about `size` stored vectors, for training."""
    step = max(1, count // size) if count else 1
    parts = [vectors[::step] for _, vectors in batches()]
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32) if parts else np.zeros((0, 0), np.float32)


def _no_hits() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, np.float32), np.zeros(0, np.int64)


def remove_stale_temp_files(directory: Path) -> int:
    """Delete temp files a killed writer left behind mid-save; call only while holding the write lock."""
    removed = 0
    for stale in Path(directory).glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        try:
            stale.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def _raise_if_disk_full(error: BaseException, directory: Path) -> None:
    """ENOSPC becomes the DiskFullError users understand; anything else is left to the caller."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        raise DiskFullError(directory) from error


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
