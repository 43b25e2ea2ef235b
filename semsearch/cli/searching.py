"""`semsearch search` and `semsearch context`: hits printed or packed, and nothing found as exit 1."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from semsearch import filters
from semsearch.cli.common import (
    COLOR_CHOICES,
    FILTER_OPTIONS,
    MARKDOWN_SUFFIXES,
    NO_RESULTS_EXIT,
    RERANK_OPTIONS,
    SETTING_OPTIONS,
    _echo_json,
    _query_text,
    _querying,
    display_path,
    gather,
    index_option,
    query_options,
)
from semsearch.errors import FilterError
from semsearch.relevance import DEFAULT_MIN_RELATIVE
from semsearch.types import Hit, cite

if TYPE_CHECKING:
    from semsearch.grouping import LineRange


@click.command("search", short_help="Print the passages that best answer QUERY.")
@gather("shorthands", FILTER_OPTIONS)
@gather("reranking", RERANK_OPTIONS)
@gather("settings", SETTING_OPTIONS)
@click.argument("query", callback=_query_text)
@index_option
@click.option("-k", "--top", "k", type=click.IntRange(min=1, max=1000), default=10, show_default=True,
              help="Number of results: documents, or chunk hits with --chunks or --json.")
@query_options
@click.option("--color", type=click.Choice(COLOR_CHOICES), default="auto", show_default=True,
              help="Colour and bold in the output: auto = only on a terminal and when NO_COLOR is unset.")
@click.option("--chunks", "raw_chunks", is_flag=True,
              help="Print every matching chunk on its own (-k counts chunks), not one result per document.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON array of the -k best chunk hits, each with its document_rank and the "
                   "index's pending_chunks (see above).")
def search_command(query, index_dir, k, mode, min_score, paths, where, color, raw_chunks, as_json, settings,
                   reranking, shorthands) -> None:
    """Search the index for QUERY and print the best passages, one result per document.

    Each result shows its rank, score, `path:line` of its best sentences, heading, and those
    sentences with the query's words highlighted; a document that matches in several places
    is shown once, at its best chunk, with the lines of its other matching chunks on one line
    ("also lines 40-52, 88-97"). -k counts documents; --chunks prints chunk hits instead (-k
    counts chunks), as --json does. Scores are larger-is-better, on the mode's scale: vector =
    cosine similarity (-1..1), keyword = bm25 (0 and up), hybrid = fused score (0..1); with
    --rerank, the reranker's score (0..1). --min-score drops hits below a score on that scale.

    While `index` is still embedding (or an embedder outage stopped it), keyword search already
    finds every indexed file; vector and hybrid search use the chunks embedded so far, and a
    line on stderr says how many are still waiting (`pending_chunks` in --json).

    Exit status: 0 with results, 1 when nothing is found (the reason on stderr; --json prints
    []) or on an error, 2 for bad usage (e.g. an empty QUERY or a malformed --where).

    \b
    Examples:
      semsearch search "invention of paper in China" -k 3
      semsearch search "红烧肉怎么炒糖色" --mode hybrid --min-score 0.5 --json
      semsearch search "release notes" --where 'year>=2020' --since 7d -t md
    """
    expressions = where_expressions(where, **shorthands)
    grouped = not (raw_chunks or as_json)
    with _querying(index_dir, settings, reranking) as (index, reranker), _filter_usage():
        result = index.search_detailed(query, k=k, mode=mode, paths=paths, where=expressions or None,
                                       rerank=reranker or False, rerank_top=reranking["rerank_top"],
                                       rerank_fallback=reranking["rerank_fallback"], min_score=min_score,
                                       by_document=grouped)
        reason = _reported(index, bool(result.hits), mode=mode, paths=paths, where=expressions,
                           min_score=min_score)
    if result.rerank_fallback:
        click.echo(f"reranking skipped, results are in retrieval order: {result.rerank_fallback}", err=True)
    _note_pending(result.pending_chunks, result.chunks, mode)
    hits = result.hits
    if as_json:
        _echo_json([{**_hit_json(hit), "pending_chunks": result.pending_chunks} for hit in hits])
    elif grouped:
        from semsearch.grouping import group_by_document

        use_color = _use_color(color)
        for document in group_by_document(hits):
            _print_hit(document.best, query, color=use_color, rank=document.document_rank)
            if document.others:
                click.echo("    " + click.style(_also(document.other_ranges()), dim=True), color=use_color)
    else:
        use_color = _use_color(color)
        for hit in hits:
            _print_hit(hit, query, color=use_color)
    if reason is not None:
        _exit_no_results(reason)


MAX_OTHER_RANGES = 6


def _also(ranges: list[LineRange]) -> str:
    """`also lines 40-52, 88-97` (`page 3 lines 1-20` in paged documents): where else a document
    matched, at most MAX_OTHER_RANGES ranges then a count of the rest."""
    shown, rest = ranges[:MAX_OTHER_RANGES], len(ranges) - MAX_OTHER_RANGES
    if all(not r.part_kind for r in shown):
        text = "lines " + ", ".join(str(r).removeprefix("lines ") for r in shown)
    else:
        text = ", ".join(str(r) for r in shown)
    return f"also {text}" + (f" and {rest} more" if rest > 0 else "")


def _use_color(choice: str) -> bool | None:
    """click's `color=`: forced on or off, or None to colour only a terminal (https://no-color.org)."""
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return None


def _reported(index, found: bool, *, mode, paths, where, min_score) -> str | None:
    """After a query: print the note of a FAISS repair on opening, and say why nothing was found
    (None when something was)."""
    if index.repaired:
        click.echo(index.repaired, err=True)
    if found:
        return None
    return index.explain_no_results(mode=mode, paths=paths, where=where or None, min_score=min_score)


def _note_pending(pending: int, chunks: int, mode: str) -> None:
    """Say on stderr that vector/hybrid results cover only the chunks embedded so far."""
    from semsearch.search import pending_note

    note = pending_note(pending, chunks, mode)
    if note is not None:
        click.echo(note, err=True)


def _exit_no_results(reason: str) -> None:
    """Nothing found: the reason on stderr and exit status 1, as grep does."""
    click.echo(f"No results: {reason}", err=True)
    sys.exit(NO_RESULTS_EXIT)


class BadFilter(click.ClickException):
    """A filter that is malformed or compares a key with the wrong type: bad usage, so exit 2,
    in one line (click's UsageError would add the usage and a help hint)."""

    exit_code = 2


def where_expressions(where: tuple[str, ...], *, since: str | None = None, after: str | None = None,
                      before: str | None = None, types: tuple[str, ...] = ()) -> list[str]:
    """The --where expressions plus those --since/--after/--before/--type stand for; a malformed
    one is bad usage (BadFilter, exit 2)."""
    expressions = list(where)
    for option, prefix, value in (("--since", "mtime>=", since), ("--after", "mtime>=", after),
                                  ("--before", "mtime<", before)):
        if value is not None:
            try:
                filters.conditions([prefix + value])
            except FilterError:
                example = "an age such as 30m, 2h, 7d or 2w" if option == "--since" \
                    else "an ISO date or date-time such as 2026-01-01 or 2026-01-01T09:30"
                raise BadFilter(f"Invalid value for '{option}': {value!r} is not {example}") from None
            expressions.append(prefix + value)
    for name in types:
        expressions.extend(f"suffix={suffix}" for suffix in filters.FILE_TYPES.get(name.lower().lstrip("."), (name,)))
    with _filter_usage():
        filters.conditions(expressions)
    return expressions


@contextmanager
def _filter_usage() -> Iterator[None]:
    """A FilterError (from parsing, or from the index: a value of a type the key never holds) as bad usage."""
    try:
        yield
    except FilterError as exc:
        raise BadFilter(f"Invalid value for '--where': {exc}") from None


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


def _print_hit(hit: Hit, query: str, *, color: bool | None = None, rank: int | None = None) -> None:
    """Rank (the hit's, or `rank`), score(s), the citation of the snippet's own line, heading; then
    the best-matching sentence(s) without Markdown markup, query terms in bold (unless colour is off)."""
    from semsearch.snippets import display, snippet

    best = snippet(hit.text, query, line_start=hit.line_start)
    location = cite(display_path(hit.path), best.line, best.line, hit.part_kind, hit.part) if hit.is_file \
        else hit.path
    if hit.rerank_score is not None:
        scores = f"rerank {format_score(hit.rerank_score)}  retrieval {format_score(hit.retrieval_score)}"
    else:
        scores = format_score(hit.score)
    header = f"{rank or hit.rank:>2}. {scores}  {click.style(location, fg='cyan')}"
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



@click.command("context", short_help="Print a prompt-ready block of cited passages.")
@gather("shorthands", FILTER_OPTIONS)
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
@click.option("--min-relative", type=click.FloatRange(0, 1), default=DEFAULT_MIN_RELATIVE, show_default=True,
              metavar="R", help="Pack only hits whose relative score is at least R: 1 = the best hit's score, "
                                "0 = no evidence (0 packs every hit).")
@query_options
@click.option("--json", "as_json", is_flag=True, help="Print the block and its sources as JSON.")
def context_command(query, index_dir, max_tokens, k, mode, min_score, neighbours, min_relative, paths, where,
                    as_json, settings, reranking, shorthands) -> None:
    """Print a prompt-ready block of cited passages for QUERY within --max-tokens.

    Hits that score far below the best one are left out rather than packed to fill the budget:
    a hit is packed only if (score - zero) / (best - zero) >= --min-relative, where zero is the
    score of no evidence: 0 for keyword, hybrid and rerank scores, and in vector mode the
    query's average cosine with the indexed chunks. --json says how many were left out
    (below_threshold). File citations are relative to the current directory when the file is
    inside it. Chunks still waiting for embeddings are counted on stderr and in --json
    (`pending_chunks`), as for `search`. Exit status: 0 with passages, 1 when nothing is found
    (the reason on stderr) or on an error, 2 for bad usage (e.g. an empty QUERY or a malformed
    --where).

    \b
    Examples:
      semsearch context "用双筒望远镜能看到哪些星星" --max-tokens 250 -k 3
      semsearch context "how do I reset my password" --mode hybrid --json
      semsearch context "what changed in the API" --since 2w --where has:author
    """
    expressions = where_expressions(where, **shorthands)
    with _querying(index_dir, settings, reranking) as (index, reranker), _filter_usage():
        context = index.context(query, max_tokens=max_tokens, k=k, mode=mode, neighbours=neighbours,
                                relative_to=Path.cwd(), paths=paths, where=expressions or None,
                                rerank=reranker or False, rerank_top=reranking["rerank_top"],
                                rerank_fallback=reranking["rerank_fallback"], min_score=min_score,
                                min_relative=min_relative)
        reason = _reported(index, bool(context.sources), mode=mode, paths=paths, where=expressions,
                           min_score=min_score)
    _note_pending(context.pending_chunks, context.chunks, mode)
    if as_json:
        _echo_json(context.to_dict())
    elif context.sources:
        click.echo(context.text)
    if reason is not None:
        _exit_no_results(reason)
