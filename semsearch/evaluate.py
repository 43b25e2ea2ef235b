"""Retrieval quality on BEIR-layout data: load a dataset, index it once, run its judged queries, score.

A BEIR dataset directory holds `corpus.jsonl` ({_id, title, text}), `queries.jsonl` ({_id, text})
and `qrels/test.tsv` (query-id, corpus-id, score; with a header). Each corpus document is indexed
as one text (`title`, a blank line, `text`) through `Index.add_texts` with the corpus id as the
text id, so a second run over the same index finds every document unchanged and embeds nothing;
an interrupted indexing run resumes where it stopped. Chunk hits are aggregated to documents by
their best chunk (max), then scored with the standard definitions (graded gains from qrels,
linear as in trec_eval/BEIR; relevance > 0 counts as relevant):

- nDCG@10 = DCG@10 / ideal DCG@10, DCG = Σ gain_i / log2(i + 1) over ranks i = 1..10;
- Recall@k = relevant documents in the top k / relevant documents;
- MRR@10 = 1 / rank of the first relevant document in the top 10 (0 if none).

Query latency is measured per stage as `Index.search_detailed` times it (embed, retrieve, fuse)
and reported as p50/p95.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.errors import ConfigError, IndexMismatchError
from semsearch.extract.decoding import normalize_newlines
from semsearch.types import TextItem

CUTOFFS = (10, 100)
DEFAULT_EVAL_CHUNK_TOKENS = 512
# Slices of documents handed to `Index.add_texts`: each slice is committed (and reported) on its
# own, so an interruption loses at most one slice and progress moves steadily.
INDEX_SLICE = 128


@dataclass(frozen=True)
class CorpusDocument:
    """One BEIR corpus entry."""

    id: str
    title: str
    text: str

    @property
    def indexed_text(self) -> str:
        """The text indexed and embedded for this document: title, a blank line, then the body."""
        return document_text(self.title, self.text)


@dataclass(frozen=True)
class Dataset:
    """A BEIR dataset: documents, the judged queries and their relevance judgements."""

    name: str
    path: Path
    documents: tuple[CorpusDocument, ...]
    queries: dict[str, str]  # query id → text, judged queries only, in file order
    qrels: dict[str, dict[str, int]]  # query id → {document id: relevance}

    def fingerprint(self) -> str:
        """A short hash of the corpus ids and texts (names the default eval index)."""
        digest = hashlib.sha256()
        for doc in self.documents:
            digest.update(doc.id.encode() + b"\0" + doc.indexed_text.encode() + b"\0")
        return digest.hexdigest()[:10]


def document_text(title: str, text: str) -> str:
    """`title` and `text` as one document (newlines normalised, surrounding whitespace removed)."""
    title, text = title.strip(), text.strip()
    joined = f"{title}\n\n{text}" if title and text else title or text
    return normalize_newlines(joined).strip()


def load_dataset(path: str | Path, *, split: str = "test") -> Dataset:
    """Read a BEIR-layout directory. Raises ConfigError naming the missing or malformed file."""
    root = Path(path).expanduser()
    corpus_path, queries_path, qrels_path = root / "corpus.jsonl", root / "queries.jsonl", root / "qrels" / f"{split}.tsv"
    for required in (corpus_path, queries_path, qrels_path):
        if not required.is_file():
            raise ConfigError(
                f"{required} is missing — a BEIR dataset directory holds corpus.jsonl, queries.jsonl "
                f"and qrels/{split}.tsv"
            )
    documents = tuple(
        CorpusDocument(str(row["_id"]), str(row.get("title") or ""), str(row.get("text") or ""))
        for row in _read_jsonl(corpus_path)
    )
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.rstrip("\n").split("\t")
            if number == 1 and not _is_int(fields[-1]):
                continue  # the header
            if not line.strip():
                continue
            if len(fields) < 3 or not _is_int(fields[-1]):
                raise ConfigError(f"{qrels_path}:{number}: expected `query-id<TAB>corpus-id<TAB>score`")
            qrels.setdefault(fields[0], {})[fields[1]] = int(fields[-1])
    queries = {
        str(row["_id"]): str(row["text"]) for row in _read_jsonl(queries_path) if str(row["_id"]) in qrels
    }
    # Queries with no relevant document cannot be scored (nDCG and recall are undefined).
    qrels = {qid: judged for qid, judged in qrels.items() if qid in queries and any(r > 0 for r in judged.values())}
    queries = {qid: text for qid, text in queries.items() if qid in qrels}
    if not documents or not queries:
        raise ConfigError(f"{root} has no documents or no judged queries for the {split} split")
    return Dataset(root.resolve().name, root.resolve(), documents, queries, qrels)


def _read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if "_id" not in row:
                raise ConfigError(f"{path}:{number}: a row without `_id`")
            yield row


def _is_int(value: str) -> bool:
    return bool(re.fullmatch(r"-?\d+", value.strip()))


@dataclass(frozen=True)
class IndexingProgress:
    """Reported after each committed slice of documents."""

    documents_done: int
    documents_total: int
    chunks_embedded: int


def index_dataset(
    index: Any,
    dataset: Dataset,
    *,
    on_progress: Callable[[IndexingProgress], None] | None = None,
) -> int:
    """Add every corpus document to `index` (an open `Index`); returns how many chunks were embedded.

    Documents already stored with the same text are left alone, so this is also how an interrupted
    run resumes and how a second run embeds nothing.
    """
    embedded = 0
    total = len(dataset.documents)
    if on_progress is not None:  # the total is known now; the first slice may take minutes to embed
        on_progress(IndexingProgress(0, total, 0))
    for start in range(0, total, INDEX_SLICE):
        part = dataset.documents[start : start + INDEX_SLICE]
        report = index.add_texts(TextItem(doc.id, doc.indexed_text, title=doc.title) for doc in part)
        embedded += report.chunks_embedded
        if on_progress is not None:
            on_progress(IndexingProgress(start + len(part), total, embedded))
    return embedded


@dataclass(frozen=True)
class Latency:
    """Per-query seconds of one stage: median and 95th percentile."""

    p50: float
    p95: float

    def to_dict(self) -> dict[str, float]:
        return {"p50_ms": round(self.p50 * 1000, 3), "p95_ms": round(self.p95 * 1000, 3)}


@dataclass(frozen=True)
class EvalReport:
    """Mean metrics over the judged queries that were run, and per-stage query latency."""

    dataset: str
    mode: str
    k: int
    queries: int
    documents: int
    chunks: int
    chunks_embedded: int  # while indexing for this run (0 when the index was reused whole)
    metrics: dict[str, float]  # "nDCG@10", "Recall@10", "Recall@100", "MRR@10"
    latency: dict[str, Latency]  # "embed", "retrieve", "fuse", "total"
    index_path: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "mode": self.mode,
            "k": self.k,
            "queries": self.queries,
            "documents": self.documents,
            "chunks": self.chunks,
            "chunks_embedded": self.chunks_embedded,
            "metrics": {name: round(value, 4) for name, value in self.metrics.items()},
            "latency": {stage: value.to_dict() for stage, value in self.latency.items()},
            "index": self.index_path,
            "seconds": round(self.seconds, 2),
        }


def ndcg_at(ranked: Sequence[str], relevance: dict[str, int], k: int = 10) -> float:
    """nDCG@k with linear graded gains (trec_eval/BEIR); 0 when nothing is relevant."""
    dcg = sum(max(relevance.get(doc, 0), 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((r for r in relevance.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], relevance: dict[str, int], k: int) -> float:
    """Share of the relevant documents (relevance > 0) found in the top k."""
    relevant = {doc for doc, r in relevance.items() if r > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranked: Sequence[str], relevance: dict[str, int], k: int = 10) -> float:
    """1 / rank of the first relevant document within the top k, else 0."""
    for i, doc in enumerate(ranked[:k], start=1):
        if relevance.get(doc, 0) > 0:
            return 1.0 / i
    return 0.0


def score_query(ranked: Sequence[str], relevance: dict[str, int], k: int = 10) -> dict[str, float]:
    """The four reported metrics for one query's ranked document ids."""
    return {
        f"nDCG@{k}": ndcg_at(ranked, relevance, k),
        f"Recall@{k}": recall_at(ranked, relevance, k),
        "Recall@100": recall_at(ranked, relevance, 100),
        f"MRR@{k}": mrr_at(ranked, relevance, k),
    }


def documents_by_best_chunk(hits: Iterable[Any], depth: int) -> list[str]:
    """Document ids (a hit's `path`: the corpus id) ranked by their best chunk, at most `depth`:
    the documents `semsearch search` shows, grouped by `semsearch.grouping.group_by_document`."""
    from semsearch.grouping import group_by_document

    return [document.path for document in group_by_document(hits, limit=depth)]


def evaluate(
    index: Any,
    dataset: Dataset,
    *,
    mode: str = "vector",
    k: int = 10,
    max_queries: int | None = None,
    chunks_embedded: int = 0,
    on_query: Callable[[int, int], None] | None = None,
    rerank: Any = False,
    rerank_top: int = 40,
) -> EvalReport:
    """Run the dataset's judged queries against an indexed `index` and score them.

    Documents are ranked to depth max(k, 100) (Recall@100 needs 100); `k` is the cut-off of
    nDCG, Recall@k and MRR (10 unless asked). `max_queries` runs the first N judged queries.
    With `rerank` (as for `Index.search_detailed`), the best `rerank_top` chunks are reranked
    and the rest of the retrieved list follows them in retrieval order, so Recall@100 still
    sees the whole depth; the rerank stage's latency is reported per query.
    Raises ConfigError for a bad mode, k or max_queries.
    """
    if max_queries is not None and max_queries < 1:
        raise ConfigError(f"--max-queries must be at least 1, not {max_queries}")
    if k < 1:
        raise ConfigError(f"k must be at least 1, not {k}")
    started = time.perf_counter()
    depth = max(k, max(CUTOFFS))
    status = index.status()
    # Chunks per document vary; ask for enough chunks that `depth` distinct documents come back.
    chunk_limit = depth * max(2, math.ceil(2 * status.chunks / max(1, status.documents)))
    query_ids = list(dataset.queries)[:max_queries]
    totals: dict[str, float] = {}
    times: dict[str, list[float]] = {"embed": [], "retrieve": [], "fuse": [], "total": []}
    if rerank:
        times["rerank"] = []
    for done, query_id in enumerate(query_ids, start=1):
        result = index.search_detailed(dataset.queries[query_id], mode=mode, k=chunk_limit)
        hits = list(result.hits)
        if rerank:
            head = index.search_detailed(dataset.queries[query_id], mode=mode, k=rerank_top, rerank=rerank,
                                         rerank_top=rerank_top)
            taken = {hit.chunk_id for hit in head.hits}
            hits = list(head.hits) + [hit for hit in hits if hit.chunk_id not in taken]
            times["rerank"].append(head.timings.rerank)
        ranked = documents_by_best_chunk(hits, depth)
        for name, value in score_query(ranked, dataset.qrels[query_id], k).items():
            totals[name] = totals.get(name, 0.0) + value
        for stage in ("embed", "retrieve", "fuse", "total"):
            times[stage].append(getattr(result.timings, stage))
        if on_query is not None:
            on_query(done, len(query_ids))
    # Keyword search embeds nothing; "fuse" is fusion (hybrid) plus joining chunks with their rows.
    latency = {
        name: Latency(float(np.percentile(values, 50)), float(np.percentile(values, 95)))
        for name, values in times.items()
        if values and not (name == "embed" and mode == "keyword")
    }
    return EvalReport(
        dataset=dataset.name, mode=mode, k=k, queries=len(query_ids), documents=status.documents,
        chunks=status.chunks, chunks_embedded=chunks_embedded,
        metrics={name: value / len(query_ids) for name, value in totals.items()},
        latency=latency, index_path=status.path, seconds=time.perf_counter() - started,
    )


def default_index_dir(dataset: Dataset, model: str, chunk_tokens: int) -> Path:
    """The eval index for a dataset, model and chunk budget under the user's cache directory.

    `$SEMSEARCH_CACHE`, else `$XDG_CACHE_HOME/semsearch`, else `~/.cache/semsearch`; then
    `eval/<dataset>-<corpus hash>/<model>-c<chunk tokens>`, so a changed corpus or another model
    or chunking never reuses a stale index.
    """
    base = os.environ.get("SEMSEARCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "semsearch"
    )
    model_slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-")
    return Path(base) / "eval" / f"{dataset.name}-{dataset.fingerprint()}" / f"{model_slug}-c{chunk_tokens}"


def evaluate_dataset(
    dataset_dir: str | Path,
    *,
    index_dir: str | Path | None = None,
    model: str | None = None,
    mode: str = "vector",
    k: int = 10,
    max_queries: int | None = None,
    chunk_tokens: int | None = None,
    ollama_host: str | Sequence[str] | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
    embedder: Any = None,
    on_index_progress: Callable[[IndexingProgress], None] | None = None,
    on_query: Callable[[int, int], None] | None = None,
    rerank: Any = False,
    rerank_top: int = 40,
) -> EvalReport:
    """Index a BEIR dataset (or reuse its index) and score its judged queries in `mode`.

    `index_dir` defaults to `default_index_dir(...)`; an existing index there is reused, and
    documents already in it are not embedded again. `model` defaults to the model an existing
    index was built with, else qwen3-embedding:0.6b; `chunk_tokens` to 512 for a new index.
    `ollama_host`, `base_url` and `timeout` are as for `Index.open`; `rerank`/`rerank_top` as
    for `evaluate`.
    Raises ConfigError for a bad dataset or options, IndexMismatchError for an index built
    with another model or chunk budget, EmbedderError when the embedder fails.
    """
    from semsearch.embed import DEFAULT_MODEL
    from semsearch.index import Index
    from semsearch.search import MODES

    if mode not in MODES:
        raise ConfigError(f"unknown search mode {mode!r}: choose one of {', '.join(MODES)}")
    dataset = load_dataset(dataset_dir)
    if index_dir is None:
        index_dir = default_index_dir(dataset, model or DEFAULT_MODEL, chunk_tokens or DEFAULT_EVAL_CHUNK_TOKENS)
    with Index.open(index_dir, model=model if embedder is None else None, embedder=embedder,
                    ollama_host=ollama_host, base_url=base_url, timeout=timeout,
                    chunk_tokens=chunk_tokens or DEFAULT_EVAL_CHUNK_TOKENS) as index:
        status = index.status()
        if index.is_initialized and chunk_tokens is not None and status.chunk_tokens != chunk_tokens:
            raise IndexMismatchError(
                f"the index at {index_dir} was chunked at {status.chunk_tokens} tokens, not {chunk_tokens} — "
                "drop --chunk-tokens to reuse it, or use another --index"
            )
        embedded = index_dataset(index, dataset, on_progress=on_index_progress)
        return evaluate(index, dataset, mode=mode, k=k, max_queries=max_queries, chunks_embedded=embedded,
                        on_query=on_query, rerank=rerank, rerank_top=rerank_top)
