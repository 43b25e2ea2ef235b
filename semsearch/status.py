"""`index_status`: what `semsearch status` reports of an index directory, read without the embedder.

Reads SQLite's meta through `semsearch.config` (the recorded settings and the FAISS stamp), stats
each indexed file once (nothing is read) and sums the directory's files; FAISS is never loaded.
A Milvus store is asked for its count and the generation in its collection's properties.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from semsearch.config import IndexSettings, IndexState
from semsearch.embed import Preset
from semsearch.faiss_file import VectorFile
from semsearch.paths import CHANGED, MISSING, disk_state
from semsearch.store import SCHEMA_VERSION, Store
from semsearch.stores import VectorStore
from semsearch.types import IndexStatus


def index_status(directory: Path, store: Store, vector_file: VectorFile,
                 search_store: VectorStore | None = None) -> IndexStatus:
    """What the index at `directory` holds, whether its store (FAISS, or Milvus) agrees with
    SQLite, and how many indexed files changed or vanished since."""
    states = Counter(disk_state(f.path, f.size, f.mtime_ns) for f in store.file_stats())
    meta = store.meta()
    recorded = IndexSettings.from_meta(meta) or IndexSettings(preset=Preset("none"), index_type="flat")
    state = IndexState.from_meta(meta, SCHEMA_VERSION)
    preset = recorded.preset or Preset("none")
    documents, chunks = store.counts()
    pending = store.count_pending()
    with_vectors = chunks - pending  # what vectors.faiss holds
    provider, model = recorded.identity() if recorded.model else ("", "")
    agreement = search_store.status() if search_store is not None else None
    return IndexStatus(
        path=str(directory.resolve()),
        provider=provider,
        model=model,
        dimensions=recorded.dimensions or 0,
        query_instruction=preset.query_instruction,
        document_prefix=preset.format_document(""),
        chunk_tokens=recorded.chunk_tokens or 0,
        chunk_overlap=recorded.chunk_overlap or 0,
        documents=documents,
        chunks=chunks,
        index_type=recorded.index_type or "flat",
        faiss_type=state.faiss_type or vector_file.wanted_type(meta, with_vectors),
        tombstones=store.count_faiss_tombstones(),
        bytes_on_disk=bytes_on_disk(directory),
        generation=state.generation,
        faiss_generation=state.faiss_generation,
        faiss_vectors=state.faiss_vectors,
        in_sync=agreement.in_sync if agreement is not None else vector_file.in_sync(meta, with_vectors),
        schema_version=state.schema_version,
        base_url=recorded.base_url or "",
        files_changed=states[CHANGED],
        files_missing=states[MISSING],
        code_chunker=recorded.code_chunker,
        pending_chunks=pending,
        store=agreement,
    )


def bytes_on_disk(directory: Path) -> int:
    """The size of the files directly in `directory` (the database, its WAL, vectors.faiss, the lock)."""
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
