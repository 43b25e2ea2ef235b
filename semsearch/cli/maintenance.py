"""`semsearch status`, `semsearch rebuild` and `semsearch eval`."""

from __future__ import annotations

from pathlib import Path

import click

from semsearch.cli.common import (
    MODES,
    RERANK_OPTIONS,
    SETTING_OPTIONS,
    _echo_json,
    _make_reranker,
    find_index,
    gather,
    host_option,
    index_option,
    open_index,
    rerank_options,
    timeout_option,
)
from semsearch.cli.progress import _CountBar
from semsearch.options import DEFAULT_SEARCH_MODE, INDEX_TYPES


@click.command("status", short_help="Show what the index holds and whether it is in sync.")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_command(index_dir, as_json) -> None:
    """Show what the index holds, whether its FAISS file agrees with SQLite, and how many indexed
    files changed or vanished since indexing (a stat per file, nothing read).

    Chunks still waiting for embeddings (an `index` run in progress, or stopped by an embedder
    outage) are counted on the Chunks line and as `pending_chunks` in --json.

    \b
    Examples:
      semsearch status
      semsearch status -i ~/notes/.semsearch --json
    """
    with open_index(find_index(index_dir, for_writing=False), create=False) as index:
        status = index.status()
    if as_json:
        _echo_json(status.to_dict())
        return
    rows = [
        ("Index", status.path),
        ("Model", f"{status.model} ({status.provider}, {status.dimensions} dimensions)" if status.model else "(none yet)"),
        *([("Server", status.base_url)] if status.base_url else []),
        ("Query instruction", repr(status.query_instruction)),
        ("Document prefix", repr(status.document_prefix)),
        ("Chunking", f"{status.chunk_tokens} tokens, {status.chunk_overlap} overlap"
                     + (f"; source code by {status.code_chunker}" if status.code_chunker else "")),
        ("Documents", str(status.documents)),
        ("Chunks", _chunks_line(status)),
        ("Index type", _index_type_line(status)),
        ("On disk", _human_bytes(status.bytes_on_disk)),
        *([("Generation", f"{status.generation} (FAISS file at {status.faiss_generation}, {status.faiss_vectors} vectors)"),
           ("Vectors", "FAISS file matches SQLite" if status.in_sync
            else "FAISS file behind SQLite — the next search or `semsearch rebuild` repairs it")]
          if status.store is None or status.store.kind == "local" else [("Generation", str(status.generation))]),
        ("Store", _store_line(status.store)),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':<19}{value}")
    click.echo(_files_line(status))


def _store_line(store) -> str:
    if store is None or store.kind == "local":
        return "local (FAISS file and SQLite)"
    if store.problem:
        return f"{store.location} — {store.problem}"
    line = f"{store.location} — {store.store_chunks} chunks"
    if store.in_sync:
        return line + ", agrees with the ledger"
    return (line + f", the ledger has {store.ledger_chunks} with vectors (store at generation {store.generation}) — "
            "`semsearch index` re-sends what is missing, `semsearch rebuild` re-fills the store")


def _chunks_line(status) -> str:
    if not status.pending_chunks:
        return str(status.chunks)
    return (f"{status.chunks}, {status.pending_chunks} waiting for embeddings (found by keyword search only) — "
            "`semsearch index` embeds them")


def _files_line(status) -> str:
    line = f"Files changed since indexing: {status.files_changed}, missing: {status.files_missing}"
    if status.files_changed or status.files_missing:
        line += " — run `semsearch index` on their folders to bring the index up to date"
    return line


def _index_type_line(status) -> str:
    line = status.index_type if status.index_type == status.faiss_type else f"{status.index_type} ({status.faiss_type})"
    if status.tombstones:
        line += f", {status.tombstones} deleted vectors hidden until the next rebuild"
    return line


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


@click.command("rebuild", short_help="Re-fill the store from SQLite (no embedding calls).")
@index_option
@click.option("--index-type", type=click.Choice(INDEX_TYPES), default=None,
              help="Convert to this index type, recorded for later writes once the store is filled "
                   "[default: keep].")
@click.option("--store", metavar="URL", default=None,
              help="Fill this store instead (local, milvus://HOST:PORT/COLLECTION or milvus:PATH.db) and "
                   "switch the index to it [default: the store the index records].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def rebuild_command(index_dir, index_type, store, as_json) -> None:
    """Re-fill the index's store from the vectors kept in SQLite (no embedding calls): rebuild
    vectors.faiss for the local store, re-send every vector to a Milvus collection.

    With --store, fill that store and switch the index to it, e.g. to move an index to Milvus.

    \b
    Examples:
      semsearch rebuild
      semsearch rebuild --index-type hnsw
      semsearch rebuild --store milvus://127.0.0.1:19530/docs
    """
    with open_index(find_index(index_dir, for_writing=False), create=False) as index:
        count = index.rebuild(index_type=index_type, store=store)
        status = index.status()
    location = status.store.location if status.store is not None else "local"
    if as_json:
        _echo_json({"vectors": count, "index_type": status.faiss_type, "store": location})
    elif location == "local":
        click.echo(f"Rebuilt vectors.faiss ({status.faiss_type}) from SQLite: {count} vectors.")
    else:
        click.echo(f"Re-filled {location} from SQLite: {count} vectors.")


@click.command("eval", short_help="Measure retrieval quality on a BEIR-layout dataset.")
@gather("reranking", RERANK_OPTIONS)
@gather("settings", SETTING_OPTIONS)
@click.argument("dataset_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("-i", "--index", "index_dir", metavar="DIR",
              help="Index directory for the dataset [default: a per-dataset, per-model directory under "
                   "$SEMSEARCH_CACHE/eval, else ~/.cache/semsearch/eval]; an existing index is reused.")
@click.option("-m", "--model", default=None,
              help="Embedding model [default: the index's model, else qwen3-embedding:0.6b].")
@click.option("--mode", type=click.Choice(MODES), default=DEFAULT_SEARCH_MODE, show_default=True,
              help="Hybrid, vector or keyword retrieval.")
@click.option("-k", "k", type=click.IntRange(min=1, max=1000), default=10, show_default=True,
              help="Cut-off of nDCG, Recall and MRR (Recall@100 is always reported).")
@click.option("--max-queries", type=click.IntRange(min=1), default=None, help="Run only the first N judged queries.")
@click.option("--chunk-tokens", type=click.IntRange(min=16), default=None,
              help="Chunk budget for a new eval index [default: 512].")
@host_option
@timeout_option
@rerank_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def eval_command(dataset_dir, index_dir, mode, k, max_queries, as_json, settings, reranking) -> None:
    """Measure retrieval quality on a BEIR-layout dataset (corpus.jsonl, queries.jsonl, qrels/test.tsv).

    \b
    Examples:
      semsearch eval tests/data/beir-mini --mode hybrid
      semsearch eval ~/beir/scifact --max-queries 50 --rerank --json
    """
    from semsearch.evaluate import evaluate_dataset

    reranker = _make_reranker(settings["ollama_host"], reranking)
    try:
        with _CountBar(("documents indexed", "document"), ("queries run", "query")) as bars:
            report = evaluate_dataset(
                dataset_dir, index_dir=index_dir, mode=mode, k=k, max_queries=max_queries,
                **{**settings, "ollama_host": settings["ollama_host"] or None},
                on_index_progress=lambda p: bars.update(0, p.documents_done, p.documents_total),
                on_query=lambda done, total: bars.update(1, done, total), rerank=reranker or False,
                rerank_top=reranking["rerank_top"],
            )
    finally:
        if reranker is not None:
            reranker.close()
    if as_json:
        _echo_json(report.to_dict())
        return
    click.echo(f"{report.dataset}: {report.queries} queries, {report.documents} documents, {report.chunks} chunks; "
               f"mode {report.mode}")
    click.echo(f"Index: {report.index_path} ({report.chunks_embedded} chunks embedded by this run)")
    for name, value in report.metrics.items():
        click.echo(f"  {name:<11}{value:.4f}")
    click.echo(f"Latency per query, ms:  {'p50':>8} {'p95':>8}")
    for stage, latency in report.latency.items():
        click.echo(f"  {stage:<22}{latency.p50 * 1000:>8.1f} {latency.p95 * 1000:>8.1f}")
