"""The local store: the index's FAISS file (`semsearch.faiss_file.VectorFile`) and SQLite's FTS5 table.

What semsearch has always searched, behind the `semsearch.stores.VectorStore` boundary: vector
search is FAISS's (filters applied inside it with an IDSelector over the ledger's allowed ids),
keyword search is FTS5 bm25 over the ledger's CJK-aware terms, and following a transaction is
`VectorFile.apply` itself (no per-chunk work added on the indexing path). Importing this module
loads neither FAISS nor numpy: `status` uses it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from semsearch.config import IndexState
from semsearch.stores import LOCAL, Retrieved, StoreFilter, StoreStatus

if TYPE_CHECKING:
    import numpy as np

    from semsearch.faiss_file import VectorFile
    from semsearch.options import SearchTuning
    from semsearch.store import Store, WriteResult
    from semsearch.vectors import VectorIndex


class LocalStore:
    """FAISS + FTS5 over one ledger. `vectors()` gives the FAISS index (loaded, checked and repaired
    by `vector_file` when there is one; tests and library callers may hand a VectorIndex directly)."""

    kind = LOCAL
    location = LOCAL

    def __init__(self, ledger: Store, vectors: Callable[[], VectorIndex], vector_file: VectorFile | None = None):
        self._ledger = ledger
        self._vectors = vectors
        self._vector_file = vector_file
        if vector_file is not None:
            self.apply = vector_file.apply  # the bound method itself: nothing added per transaction

    def search(self, query_vector: np.ndarray, k: int, filter: StoreFilter, tuning: SearchTuning) -> Retrieved:
        from semsearch.fusion import Candidate

        scores, ids = self._vectors().search(query_vector, k, filter.allowed_ids, tuning)
        return Retrieved([Candidate(int(i), float(s)) for s, i in zip(scores, ids)])

    def keyword_search(self, query: str, k: int, filter: StoreFilter, *, skip_common: bool = False) -> Retrieved:
        from semsearch.fusion import Candidate

        return Retrieved([Candidate(cid, score) for cid, score in self._ledger.keyword_search(
            query, k, filter.allowed_ids, skip_common=skip_common)])

    def dimensions(self) -> int:
        return self._vectors().dimensions

    def prepare(self, *, create: bool = False) -> None:
        pass  # the FAISS file is checked and repaired when `updating` loads it

    @contextmanager
    def updating(self) -> Iterator[None]:
        assert self._vector_file is not None
        with self._vector_file.updating():
            yield

    def apply(self, result: WriteResult) -> None:  # replaced per instance by VectorFile.apply
        raise RuntimeError("this local store searches a VectorIndex it was handed and cannot follow writes")

    def refill(self, index_type: str | None = None) -> int:
        """Rebuild vectors.faiss from the ledger's vectors (as `index_type` when given); returns the count."""
        assert self._vector_file is not None
        return self._vector_file.rebuild(index_type)

    def status(self) -> StoreStatus:
        """The FAISS file's stamp against the ledger, read from meta (FAISS is not loaded)."""
        assert self._vector_file is not None
        meta = self._ledger.meta()
        state = IndexState.from_meta(meta)
        with_vectors = self._ledger.count_vectors()
        return StoreStatus(kind=LOCAL, location=LOCAL, store_chunks=state.faiss_vectors, ledger_chunks=with_vectors,
                           generation=state.faiss_generation,
                           in_sync=self._vector_file.in_sync(meta, with_vectors))

    def close(self) -> None:
        pass
