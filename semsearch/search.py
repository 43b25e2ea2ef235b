"""Query → candidates (vector, keyword or both) → fusion → rerank? → Hits.

Vector candidates come from FAISS with the query embedded using the index's recorded preset;
keyword candidates from FTS5 bm25 over CJK-aware terms; hybrid fuses both lists, weighing each
per query by how much of it the keyword list matched (semsearch.fusion). Filters restrict
candidates inside retrieval (FAISS IDSelector, SQL WHERE), never after a global top-k, so a
filter that matches ≥ k chunks yields k hits. Reranking, when asked for, rescores the top
max(`rerank_top`, k) candidates and keeps the best k.

Scores are larger-is-better in every mode, each on its own scale (`SCORE_KINDS`): vector hits
carry the cosine similarity of query and chunk (-1..1), keyword hits the FTS5 bm25 score
(0 and up, unbounded; near 0 when the query's terms are in most chunks), hybrid hits the
fused score on 0..1 (1 = first in both lists; see semsearch.fusion), reranked hits the
reranker's relevance (0..1 for Qwen3-Reranker). `min_score` drops hits below a threshold on
that same scale.
Each stage is timed (`SearchResult.timings`) so evaluation can report per-stage latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from semsearch import filters
from semsearch.embed.base import Embedder, normalize
from semsearch.errors import ConfigError, RerankerTimeoutError, RerankerUnavailableError
from semsearch.fusion import Candidate, coverage, fuse, keyword_query
from semsearch.grouping import with_document_ranks
from semsearch.options import DEFAULT_RERANK_TOP, DEFAULT_SEARCH_MODE, SEARCH_MODES
from semsearch.paths import CURRENT, disk_state
from semsearch.store import ChunkRow, Store
from semsearch.types import Hit, SearchResult, StageTimings
from semsearch.vectors import SearchTuning, VectorIndex

if TYPE_CHECKING:
    from semsearch.rerank.base import Reranker

MODES = SEARCH_MODES
RRF_K = 60
# What `Hit.score` measures, by mode (and "rerank" when a reranker decided the order).
SCORE_KINDS = {"vector": "cosine", "keyword": "bm25", "hybrid": "fused"}


def rrf(*ranked_lists: Sequence[Candidate], k: int = RRF_K) -> list[Candidate]:
    """Reciprocal rank fusion: score = Σ 1/(k + rank), rank starting at 1 (the baseline `fuse` replaced)."""
    fused: dict[int, float] = {}
    for ranked in ranked_lists:
        for rank, candidate in enumerate(ranked, start=1):
            fused[candidate.chunk_id] = fused.get(candidate.chunk_id, 0.0) + 1.0 / (k + rank)
    return [Candidate(cid, score) for cid, score in sorted(fused.items(), key=lambda item: -item[1])]


def scale_fused(fused: Sequence[Candidate], lists: int, k: int = RRF_K) -> list[Candidate]:
    """Fused scores divided by the best reachable one (first in every list): 0..1, order kept.

    Raw RRF scores (~0.016 for a first place) mean nothing to a reader or a threshold; scaled,
    1.0 is "first in both lists" whatever the list count or k.
    """
    best = lists / (k + 1)
    return [Candidate(c.chunk_id, c.score / best) for c in fused]


def vector_candidates(
    vectors: VectorIndex, query_vector: np.ndarray, limit: int, allowed_ids: np.ndarray | None,
    tuning: SearchTuning = SearchTuning(),
) -> list[Candidate]:
    scores, ids = vectors.search(query_vector, limit, allowed_ids, tuning)
    return [Candidate(int(i), float(s)) for s, i in zip(scores, ids)]


def keyword_candidates(store: Store, query: str, limit: int, allowed_ids: np.ndarray | None, *,
                       skip_common: bool = False) -> list[Candidate]:
    return [Candidate(cid, score) for cid, score in store.keyword_search(query, limit, allowed_ids,
                                                                         skip_common=skip_common)]


def fuse_lists(store: Store, query: str, vector: Sequence[Candidate], keyword: Sequence[Candidate]) -> list[Candidate]:
    """Hybrid fusion (`semsearch.fusion.fuse`), the query's coverage read from the best keyword hit."""
    best = store.chunks([keyword[0].chunk_id]).get(keyword[0].chunk_id) if keyword else None
    return fuse(vector, keyword, coverage(query, best.text if best is not None else None))


def search(store: Store, vectors: VectorIndex, embedder: Embedder, query: str, **options: Any) -> list[Hit]:
    """The top `k` hits for `query`: `search_detailed(...).hits` (the same keyword options)."""
    return list(search_detailed(store, vectors, embedder, query, **options).hits)


def search_detailed(
    store: Store,
    vectors: VectorIndex | None,
    embedder: Embedder | None,
    query: str,
    *,
    k: int = 10,
    mode: str = DEFAULT_SEARCH_MODE,
    paths: Sequence[str] = (),
    where: filters.Where | None = None,
    candidates: int | None = None,
    reranker: Reranker | None = None,
    rerank_top: int = DEFAULT_RERANK_TOP,
    rerank_fallback: bool = False,
    tuning: SearchTuning = SearchTuning(),
    min_score: float | None = None,
) -> SearchResult:
    """The top `k` hits for `query`, with the seconds each stage took.

    `paths` are globs over file paths, relative to the index home (the directory holding the
    index directory) or absolute (`*` also crosses `/`), or over the ids of added texts;
    `where` filters on document metadata and the built-in fields size, mtime and suffix: a
    {key: value} dict keeps documents whose value equals it or, for a list, contains it
    ({key: [values]}: any of them; keys all match; values compare as text), and expressions
    (one string or a list) add `!=`, `<`, `<=`, `>`, `>=`, `has:KEY` and `-has:KEY`
    (`semsearch.filters`; FilterError when malformed or of the wrong type). With a
    `reranker`, the best max(`rerank_top`, `k`) retrieved candidates are rescored and the `k`
    best by rerank score returned.
    `rerank_fallback` turns a reranker timeout or outage into hits in retrieval order
    (`SearchResult.rerank_fallback` says why) instead of an error. `min_score` keeps only hits
    whose `score` (the scale of the mode, or the rerank score; see the module docstring) is at
    least that; the order is the same with or without it. Raises ConfigError for a bad mode, k
    or rerank_top, and RerankerError subclasses when reranking fails. `vectors` and `embedder`
    may be None for keyword mode, which uses neither.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown search mode {mode!r}: choose one of {', '.join(MODES)}")
    if k < 1:
        raise ConfigError(f"k must be at least 1, not {k}")
    if rerank_top < 1:
        raise ConfigError(f"rerank_top must be at least 1, not {rerank_top}")
    if not query.strip():
        raise ConfigError("the query is empty")
    allowed = store.chunk_ids_where(paths, where) if (paths or where) else None
    wanted = max(k, rerank_top) if reranker is not None else k
    pool = max(candidates or 0, wanted, 50 if mode == "hybrid" else wanted)
    lists: list[list[Candidate]] = []
    started = time.perf_counter()
    query_vector = embedder.embed([query], "query")[0] if mode in ("vector", "hybrid") and embedder else None
    embedded = time.perf_counter()
    # Hybrid asks FTS5 for the content terms only: a stopword matches nearly every chunk, so
    # ranking it costs a scan of the whole index while adding almost nothing to bm25.
    keyword_text = keyword_query(query) if mode == "hybrid" else query
    if query_vector is not None and vectors is not None:
        lists.append(vector_candidates(vectors, query_vector, pool, allowed, tuning))
    if mode in ("keyword", "hybrid"):
        # Hybrid also leaves out terms found in half the chunks or more: FTS5 gives them an idf of
        # ~0, yet ranking one scores most of the index (see Store.keyword_search).
        lists.append(keyword_candidates(store, keyword_text, pool, allowed, skip_common=mode == "hybrid"))
    retrieved = time.perf_counter()
    ranked = fuse_lists(store, query, *lists) if mode == "hybrid" else lists[0]
    hits = to_hits(store, ranked[:wanted], SCORE_KINDS[mode])
    fused = time.perf_counter()
    reranked, fallback = False, None
    if reranker is not None and hits:
        from semsearch.rerank.base import rerank_hits  # a reranker's HTTP client loads only when one is used

        try:
            hits = [replace(hit, score_kind="rerank") for hit in rerank_hits(reranker, query, hits, k)]
            reranked = True
        except (RerankerTimeoutError, RerankerUnavailableError) as exc:
            if not rerank_fallback:
                raise
            fallback = str(exc).partition(" — ")[0]
    finished = time.perf_counter()
    hits = hits[:k]
    if min_score is not None:
        hits = [hit for hit in hits if hit.score >= min_score]
    timings = StageTimings(embed=embedded - started, retrieve=retrieved - embedded, fuse=fused - retrieved,
                           rerank=finished - fused if reranker is not None else 0.0)
    pending = store.count_pending()  # through a partial index: costs nothing once every chunk has its vector
    return SearchResult(hits=with_document_ranks(mark_stale(store, hits)), timings=timings, reranked=reranked,
                        rerank_fallback=fallback, pending_chunks=pending, chunks=store.counts()[1] if pending else 0)


def pending_note(pending: int, chunks: int, mode: str) -> str | None:
    """One line for the user when a vector or hybrid search could not see every chunk (None otherwise)."""
    if not pending or mode == "keyword":
        return None
    waiting = "chunk is" if pending == 1 else "chunks are"
    return (f"{pending:,} of {chunks:,} {waiting} still waiting for embeddings; results cover the rest — "
            "run `semsearch index` again to finish")


def search_by_vector(
    store: Store,
    vectors: VectorIndex,
    query_vector: np.ndarray,
    *,
    k: int = 10,
    paths: Sequence[str] = (),
    where: filters.Where | None = None,
    tuning: SearchTuning = SearchTuning(),
) -> list[Hit]:
    """The top `k` hits for a query vector the caller embedded (vector mode, same filters)."""
    if k < 1:
        raise ConfigError(f"k must be at least 1, not {k}")
    query_vector = normalize(np.asarray(query_vector, dtype=np.float32).reshape(1, -1))[0]
    if query_vector.shape[0] != vectors.dimensions:
        raise ConfigError(
            f"the query vector has {query_vector.shape[0]} dimensions; the index has {vectors.dimensions}"
        )
    allowed = store.chunk_ids_where(paths, where) if (paths or where) else None
    return list(with_document_ranks(mark_stale(store, to_hits(
        store, vector_candidates(vectors, query_vector, k, allowed, tuning), SCORE_KINDS["vector"]))))


def mark_stale(store: Store, hits: Sequence[Hit]) -> tuple[Hit, ...]:
    """The hits with `stale` set where the file changed or vanished since indexing: one stat per
    returned hit's file, so only the hits a caller gets are checked."""
    stale = {f.document_id for f in store.file_stats(h.document_id for h in hits)
             if disk_state(f.path, f.size, f.mtime_ns) != CURRENT}
    return tuple(replace(hit, stale=True) if hit.document_id in stale else hit for hit in hits)


def to_hits(store: Store, ranked: Sequence[Candidate], score_kind: str = "") -> list[Hit]:
    """Join candidates with their chunk rows, keeping order; ids deleted meanwhile are dropped."""
    rows = store.chunks([c.chunk_id for c in ranked])
    hits: list[Hit] = []
    for candidate in ranked:
        row = rows.get(candidate.chunk_id)
        if row is None:
            continue
        hits.append(_hit(row, rank=len(hits) + 1, score=candidate.score, score_kind=score_kind))
    return hits


def _hit(row: ChunkRow, *, rank: int, score: float, score_kind: str = "") -> Hit:
    is_file = row.kind == "file"
    path = row.path
    return Hit(
        rank=rank, score=score, retrieval_score=score, text=row.text, path=path, document_id=row.document_id,
        chunk_id=row.chunk_id,
        line_start=row.line_start, line_end=row.line_end, char_start=row.char_start, char_end=row.char_end,
        heading_path=row.heading_path, metadata=row.metadata, title=row.title, is_file=is_file,
        part_kind=row.part_kind if row.part is not None else "", part=row.part, score_kind=score_kind,
    )


def explain_no_results(store: Store, index_path: Path, writer_busy: Callable[[], bool], *, mode: str = DEFAULT_SEARCH_MODE,
                       paths: Sequence[str] = (), where: filters.Where | None = None,
                       min_score: float | None = None) -> str:
    """Why a search of the index at `index_path` with these filters found nothing (see `Index.explain_no_results`).

    `writer_busy` tells whether another process is writing the index right now.
    """
    documents, chunks = store.counts()
    if "model" not in store.meta() or documents == 0 or chunks == 0:
        if writer_busy():
            return (f"the index at {index_path} is still being built (another semsearch process is writing "
                    "to it) — wait for it to finish, then search again")
        return (f"the index at {index_path} is empty — add documents with `semsearch index FOLDER` "
                "(or `Index.index`/`add_texts`)")
    if where:
        keys = store.metadata_keys()
        for key in filters.required_keys(where):
            if key not in keys:
                known = f"keys in this index: {', '.join(keys)}" if keys else "no document here has metadata"
                return f"no document has the metadata key {key!r} (--where) — {known}"
    if (paths or where) and len(store.chunk_ids_where(paths, where)) == 0:
        which = " and ".join(name for name, given in (("--path", paths), ("--where", where)) if given)
        return f"no indexed document matches {which} — loosen the filter, or check `semsearch status`"
    if min_score is not None:
        return f"no passage scored at least {min_score:g} (--min-score) — lower it, or leave it out"
    if mode == "keyword":
        return "no passage contains the query's words — try other words, or --mode vector to search by meaning"
    if store.count_pending() == chunks:
        return (f"none of the {chunks:,} chunks has its embedding yet — search with --mode keyword meanwhile, "
                "or run `semsearch index` again to embed them")
    return "no passage matched the query — try other words"
