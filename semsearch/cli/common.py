"""What the `semsearch` commands share: finding and opening the index, the option decorators
that several commands declare, and the reranker a query command asks for."""

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

from semsearch.errors import IndexNotFoundError, SemsearchError
from semsearch.options import (
    DB_NAME,
    DEFAULT_INDEX_DIR,
    DEFAULT_RERANK_MODEL,
    DEFAULT_RERANK_TIMEOUT,
    DEFAULT_RERANK_TOP,
    DEFAULT_SEARCH_MODE,
)
from semsearch.options import DEFAULT_RERANK_CONCURRENCY as DEFAULT_CONCURRENCY
from semsearch.options import RERANK_API_KEY_ENV as API_KEY_ENV
from semsearch.options import SEARCH_MODES as MODES

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


def walk_options(fn):
    """--include, --exclude and --no-ignore: which files of a folder `index` and `watch` take."""
    fn = click.option("--no-ignore", is_flag=True,
                      help="Index what .gitignore and .semsearchignore files leave out (hidden files and "
                           "folders, .git among them, stay out).")(fn)
    fn = click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching GLOB (repeatable).")(fn)
    return click.option("--include", multiple=True, metavar="GLOB",
                        help="Only index files matching GLOB (repeatable).")(fn)


def check_walk_options(paths: tuple, include: tuple, exclude: tuple, no_ignore: bool, without_paths: str) -> None:
    """The walk options go with the paths they apply to: a usage error without paths."""
    if not paths and (include or exclude or no_ignore):
        raise click.UsageError("--include, --exclude and --no-ignore go with the paths they apply to: with no "
                               f"path {without_paths} (give the path to change them)")


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
                   "base_url", "ollama_host", "timeout", "keep_alive", "ef_search", "nprobe", "store")
FILTER_OPTIONS = ("since", "after", "before", "types")  # the built-in fields' shorthands for --where
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
        click.option("--mode", type=click.Choice(MODES), default=DEFAULT_SEARCH_MODE, show_default=True,
                     help="Hybrid (both lists, each weighed per query by how well it matched), vector "
                          "(meaning, across languages) or keyword (FTS5 bm25, exact words)."),
        click.option("--min-score", type=float, default=None, metavar="SCORE",
                     help="Only hits scoring at least SCORE on the mode's scale: vector cosine (-1..1, "
                          "e.g. 0.8), keyword bm25 (0 and up), hybrid fused (0..1), the rerank score "
                          "(0..1) with --rerank."),
        click.option("--path", "paths", multiple=True, metavar="GLOB", callback=_path_globs,
                     help="Only files whose path matches GLOB, as printed (relative to the current directory), "
                          "relative to the index's home (the folder holding .semsearch) or absolute; `*` also "
                          "matches `/` (e.g. 'docs/*', '*.md'); repeat for more (any may match)."),
        click.option("--where", "where", multiple=True, metavar="EXPR",
                     help="Only documents passing EXPR, on metadata (e.g. Markdown front matter) or the "
                          "built-in fields size, mtime, suffix: KEY=VALUE (a list contains it), KEY!=VALUE, "
                          "KEY<VALUE (or <=, >, >=; numbers, ISO dates, else text), has:KEY, -has:KEY; e.g. "
                          "year>=2020, draft!=true, size>10k. Repeat: all must hold (`=` on one key: any may)."),
        click.option("--since", metavar="AGE",
                     help="Only files modified within AGE (30m, 2h, 7d, 2w); same as --where mtime>=AGE."),
        click.option("--after", metavar="DATE",
                     help="Only files modified on or after DATE (2026-01-01, 2026-01-01T09:30; local time)."),
        click.option("--before", metavar="DATE", help="Only files modified before DATE."),
        click.option("-t", "--type", "types", multiple=True, metavar="TYPE",
                     help="Only files of TYPE, as ripgrep names them (md, txt, html, pdf, docx, py, js, ts, "
                          "rust, go, ...) or a suffix (toml); repeat for more (any may match)."),
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


class interruptible:
    """While indexing: the first Ctrl-C stops the run cleanly (KeyboardInterrupt, committed work
    kept); a second one ends the process at once, without a traceback."""

    def __enter__(self) -> None:
        self._previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._first)

    def __exit__(self, *exc_info) -> None:
        # After a first Ctrl-C, a second one still ends the process at once while the summary is
        # printed: restoring Python's handler here would let it raise where nothing catches it.
        if signal.getsignal(signal.SIGINT) is not interruptible._again:
            signal.signal(signal.SIGINT, self._previous)

    @staticmethod
    def _first(signum, frame) -> None:
        signal.signal(signal.SIGINT, interruptible._again)
        raise KeyboardInterrupt

    @staticmethod
    def _again(signum, frame) -> None:
        # The live display hides the cursor; nothing else will show it again after os._exit.
        show_cursor = b"\x1b[?25h" if sys.stderr.isatty() else b""
        os.write(2, show_cursor + b"\nInterrupted again: stopping now. Committed work is kept; run the same "
                    b"command again to continue.\n")
        os._exit(130)
