"""Searching an index: the search, context and reranker methods of `Index`.

`Index` takes its `search`, `search_documents`, `search_detailed`, `search_vector`,
`explain_no_results`, `reranker`, `context`, `asearch` and `acontext` methods from
`SearchMixin`, which uses the handle's store, embedder, vectors, tuning and worker pool. The
retrieval itself lives in `semsearch.search`; packing a context block in `semsearch.context`.
A call that searches more than once or reuses the query vector (`by_document`, `context`)
embeds its query once, through `RememberingEmbedder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semsearch.context import DEFAULT_MAX_TOKENS, DEFAULT_NEIGHBOURS, Context, assemble, check_budget
from semsearch.errors import ConfigError
from semsearch.filters import Where
from semsearch.grouping import DocumentHit, first_documents, group_by_document
from semsearch.options import DEFAULT_RERANK_TOP, DEFAULT_SEARCH_MODE, SearchTuning
from semsearch.relevance import DEFAULT_MIN_RELATIVE, background_similarity
from semsearch.relevance import check_min_relative, chunk_centroid, keep_relevant
from semsearch.types import Hit, SearchResult, StageTimings

if TYPE_CHECKING:
    import numpy as np

    from semsearch.embed.base import Embedder, EmbedderInfo
    from semsearch.rerank.base import Reranker
    from semsearch.types import EmbedKind


class SearchMixin:
    """The search methods of `Index` (see the module docstring)."""

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = DEFAULT_SEARCH_MODE,
        paths: Sequence[str] = (),
        where: Where | None = None,
        rerank: bool | str | Reranker = False,
        rerank_top: int = DEFAULT_RERANK_TOP,
        rerank_fallback: bool = False,
        ef_search: int | None = None,
        nprobe: int | None = None,
        min_score: float | None = None,
        by_document: bool = False,
    ) -> list[Hit]:
        """The `k` best passages for `query` (see `search_detailed` for the options)."""
        return list(self.search_detailed(query, k=k, mode=mode, paths=paths, where=where, rerank=rerank,
                                         rerank_top=rerank_top, rerank_fallback=rerank_fallback,
                                         ef_search=ef_search, nprobe=nprobe, min_score=min_score,
                                         by_document=by_document).hits)

    def search_documents(self, query: str, *, k: int = 10, **options: Any) -> list[DocumentHit]:
        """The `k` best documents for `query`, one result each: its best hit and its other hits
        among those retrieved (`DocumentHit`), ranked by the best hit. Options as for `search`."""
        return group_by_document(self.search_detailed(query, k=k, by_document=True, **options).hits)

    def search_detailed(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = DEFAULT_SEARCH_MODE,
        paths: Sequence[str] = (),
        where: Where | None = None,
        rerank: bool | str | Reranker = False,
        rerank_top: int = DEFAULT_RERANK_TOP,
        rerank_fallback: bool = False,
        ef_search: int | None = None,
        nprobe: int | None = None,
        min_score: float | None = None,
        by_document: bool = False,
    ) -> SearchResult:
        """The `k` best passages for `query` with per-stage timings (`SearchResult`).

        `rerank`: False (default), True for Qwen3-Reranker-0.6B on this index's Ollama host, an
        Ollama model name, or any `Reranker` (e.g. `semsearch.rerank.HttpReranker(url)`). The top
        `rerank_top` candidates are reranked; hits then carry `rerank_score` and `score` equals it.
        With `rerank_fallback`, a reranker timeout or outage yields retrieval order instead of an
        error (`SearchResult.rerank_fallback` says why). `ef_search` (HNSW) and `nprobe` (IVF)
        trade speed for recall; the defaults meet recall@10 ≥ 0.95 in benchmarks/bench_query.py.
        `min_score` keeps hits scoring at least that on the mode's scale: vector cosine (-1..1),
        keyword bm25 (0 and up), hybrid fused (0..1), or the rerank score when reranked
        (`Hit.score_kind` names it). `where` takes a {key: value} dict (equality) or filter
        expressions — `["year>=2020", "draft!=true", "has:author", "mtime>=7d", "size>10k",
        "suffix=.md"]` (see `semsearch.filters`). See `semsearch.search.search_detailed`.
        Every hit carries `document_rank`, its document's rank among the hits' documents. With
        `by_document`, `k` counts documents: the hits are those of the `k` best documents (more
        chunks are retrieved until `k` documents are found, when that many pass the filters), so
        several hits may share a document (`semsearch.grouping`).
        """
        return self._search_detailed(None, query, k=k, mode=mode, paths=paths, where=where,
                                     rerank=rerank, rerank_top=rerank_top, rerank_fallback=rerank_fallback,
                                     ef_search=ef_search, nprobe=nprobe, min_score=min_score,
                                     by_document=by_document)

    def _search_detailed(self, embedder: Embedder | None, query: str, *, k: int, mode: str,
                         rerank: bool | str | Reranker = False, ef_search: int | None = None,
                         nprobe: int | None = None, by_document: bool = False, **options: Any) -> SearchResult:
        """`search_detailed` with the query embedded by `embedder` (None: the index's own)."""
        if not self.is_initialized:
            return SearchResult(hits=(), timings=StageTimings())
        if mode != "vector":
            self._check_keyword_analysis()
        from semsearch.search import search_detailed as run_search

        keyword = mode == "keyword"  # needs neither FAISS nor the embedder: answers at once while a writer runs
        vectors = self._search_store()  # FAISS loads on its first vector search, never in keyword mode
        reranker, tuning = self.reranker(rerank), self._tuning(ef_search, nprobe)
        embedding = None if keyword else embedder if embedder is not None else self.embedder()
        if by_document and embedding is not None and not isinstance(embedding, RememberingEmbedder):
            embedding = RememberingEmbedder(embedding)  # the query is embedded once, however many tries

        def run(count: int) -> SearchResult:
            return run_search(self._store, vectors, embedding, query, k=count, mode=mode, reranker=reranker,
                              tuning=tuning, **options)

        if by_document:
            if k < 1:
                raise ConfigError(f"k must be at least 1, not {k}")
            return first_documents(run, k)
        return run(k)

    def explain_no_results(
        self,
        *,
        mode: str = DEFAULT_SEARCH_MODE,
        paths: Sequence[str] = (),
        where: Where | None = None,
        min_score: float | None = None,
    ) -> str:
        """Why a search with these filters found nothing, and what to do: one sentence for the user.

        Checks, in order: an empty index (and whether another process is still building it), a
        `where` key no document has (naming the keys that exist), filters that match no chunk,
        a `min_score` nothing reached, a keyword search whose words no passage contains, and a
        vector or hybrid search of an index none of whose chunks has its embedding yet;
        otherwise says no passage matched the query.
        """
        from semsearch.search import explain_no_results

        return explain_no_results(self._store, self.path, self._write_lock.busy, mode=mode, paths=paths,
                                  where=where, min_score=min_score)

    def search_vector(
        self,
        vector: Sequence[float] | Any,
        *,
        k: int = 10,
        paths: Sequence[str] = (),
        where: Where | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
    ) -> list[Hit]:
        """The `k` passages nearest to an already embedded query `vector` (normalised here), with
        the filters of `search`; for callers that embed queries themselves."""
        if not self.is_initialized:
            return []
        from semsearch.search import search_by_vector

        return search_by_vector(self._store, self._search_store(), vector, k=k, paths=paths, where=where,
                                tuning=self._tuning(ef_search, nprobe))

    def _tuning(self, ef_search: int | None, nprobe: int | None) -> SearchTuning:
        return SearchTuning(ef_search=ef_search or self.tuning.ef_search, nprobe=nprobe or self.tuning.nprobe)

    def reranker(self, rerank: bool | str | Reranker | None = True) -> Reranker | None:
        """The reranker a `rerank=` option names: None for False, one made (and kept) for True or a model name."""
        if rerank is None or rerank is False:
            return None
        if not isinstance(rerank, (bool, str)):
            return rerank
        from semsearch.rerank.cache import RerankerCache  # loaded only when a search reranks

        with self._rerankers_lock:
            if self._rerankers is None:
                self._rerankers = RerankerCache(self._settings.host)
        return self._rerankers.get(None if rerank is True else rerank)

    def context(
        self,
        query: str,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        k: int = 10,
        mode: str = DEFAULT_SEARCH_MODE,
        neighbours: int = DEFAULT_NEIGHBOURS,
        relative_to: str | Path | None = None,
        min_relative: float = DEFAULT_MIN_RELATIVE,
        **search_options: Any,
    ) -> Context:
        """A prompt-ready block of the best passages for `query` within `max_tokens` (see `semsearch.context`).

        The `k` hits of `search(query, k=k, mode=mode, **search_options)` (so `paths`, `where` and
        `rerank=`, `min_score` apply) are packed best first, adjacent chunks merged and up to `neighbours`
        chunks on each side of a hit added while they fit; the block is never over `max_tokens`
        estimated tokens. A hit whose score falls far below the best one's is left out: packed only
        if its relative score (`semsearch.relevance`: 1 = the best hit's, 0 = no evidence, e.g.
        vector mode's background similarity) is at least `min_relative` (default 0.5; 0 packs every
        hit); `Context.below_threshold` counts those left out. Citations show file paths relative
        to `relative_to` when given and the file is inside it.
        """
        check_budget(max_tokens, neighbours)
        check_min_relative(min_relative)
        embedder = RememberingEmbedder(self.embedder()) if self.is_initialized else None
        hits = list(self._search_detailed(embedder, query, k=k, mode=mode, **search_options).hits)
        zero = 0.0
        if hits and hits[0].score_kind == "cosine" and embedder is not None:
            query_vector = embedder.query_vector(query)
            if query_vector is not None:
                zero = background_similarity(self._chunk_centroid(), query_vector)
        kept, left_out = keep_relevant(hits, min_relative, zero)
        context = assemble(query, kept, self._store, max_tokens=max_tokens, neighbours=neighbours,
                           relative_to=relative_to)
        return replace(context, min_relative=min_relative, below_threshold=left_out)

    def _chunk_centroid(self) -> Any:
        """`relevance.chunk_centroid`, sampled again only after a write changed the index."""
        generation = self._store.generation()
        cached = self._centroid
        if cached is None or cached[0] != generation:
            cached = self._centroid = (generation, chunk_centroid(self._store))
        return cached[1]

    async def asearch(self, query: str, **options: Any) -> list[Hit]:
        """`search` for asyncio code: runs in a bounded worker pool, so the event loop never waits on Ollama."""
        return await self._async_pool.run(self.async_workers, self.search, query, **options)

    async def acontext(self, query: str, **options: Any) -> Context:
        """`context` for asyncio code: runs in a bounded worker pool, so the event loop never waits on Ollama."""
        return await self._async_pool.run(self.async_workers, self.context, query, **options)


class RememberingEmbedder:
    """An embedder that embeds each query once: searching again for more hits (`first_documents`)
    or the background similarity of `context` reuse the vector instead of calling the server."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.vectors: dict[tuple[tuple[str, ...], str], np.ndarray] = {}

    def info(self) -> EmbedderInfo:
        return self.embedder.info()

    def embed(self, texts: Sequence[str], kind: EmbedKind) -> np.ndarray:
        key = (tuple(texts), kind)
        if key not in self.vectors:
            self.vectors[key] = self.embedder.embed(texts, kind)
        return self.vectors[key]

    def query_vector(self, query: str) -> np.ndarray | None:
        """The vector `query` was embedded as, or None when it was not embedded (keyword mode)."""
        vectors = self.vectors.get(((query,), "query"))
        return None if vectors is None else vectors[0]
