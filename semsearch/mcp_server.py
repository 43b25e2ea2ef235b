"""`semsearch mcp`: a Model Context Protocol server on stdio exposing an index's search, context, documents and status as tools.

Built on the official `mcp` SDK (2.x, `MCPServer`). Stdout carries the protocol, so nothing
else may print there; messages go to stderr. Tool calls run through the async API, so one slow
embedding call never stalls the protocol loop. A library error reaches the client as an error
result (`isError`) carrying its own one-line message, so an agent can act on it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from semsearch.chunking import estimate_tokens
from semsearch.context import DEFAULT_NEIGHBOURS
from semsearch.errors import SemsearchError
from semsearch.index import Index
from semsearch.relevance import DEFAULT_MIN_RELATIVE
from semsearch.optional import require
from semsearch.options import DEFAULT_SEARCH_MODE

require("mcp.server.mcpserver", "mcp", package="mcp>=2")

from mcp.server.mcpserver import MCPServer  # noqa: E402
from mcp.server.mcpserver.exceptions import ToolError  # noqa: E402
from pydantic import Field  # noqa: E402

MAX_K = 100
MAX_CONTEXT_TOKENS = 32_000
MAX_GET_CHARS = 40_000  # a longer document comes back cut at a line, with the citation of the rest
MAX_MULTI_GET = 50
Mode = Literal["vector", "keyword", "hybrid"]

INSTRUCTIONS = (
    "Searches the user's own indexed documents (notes, code, papers; Chinese and English) by meaning. "
    "Use `context` to get evidence for answering a question: numbered passages with citations "
    "([1] path:line-line) that fit a token budget; cite them by number. Use `search` to list the best "
    "matching passages with paths, line ranges and scores. Use `get` to read a document or the lines "
    "around a citation (`path:12-30`), `multi_get` for several citations at once, and `status` for what "
    "the index holds."
)
WHERE_HELP = (
    "Filters that must all hold, over the documents' metadata (e.g. Markdown front matter) and the "
    "built-in fields size (bytes, 10k), mtime (modification time: an ISO date, or an age such as 7d) and "
    "suffix (.md): KEY=VALUE (a list value contains it), KEY!=VALUE, KEY<VALUE (or <=, >, >=; numbers and "
    "ISO dates compare as such), has:KEY, -has:KEY — e.g. [\"year>=2020\", \"draft!=true\", \"mtime>=7d\"]."
)

Where = Annotated[list[str] | None, Field(description=WHERE_HELP)]


@contextmanager
def _tool_errors() -> Iterator[None]:
    """A library error becomes an error result carrying its message (the SDK hides other exceptions)."""
    try:
        yield
    except SemsearchError as exc:
        raise ToolError(str(exc)) from exc


def _rerank(rerank: bool, rerank_model: str | None) -> bool | str:
    return rerank_model.strip() if rerank_model and rerank_model.strip() else rerank


def build_server(index: Index) -> MCPServer:
    """An MCP server whose tools answer from `index`."""
    server = MCPServer(name="semsearch", instructions=INSTRUCTIONS)

    @server.tool(description="The best passages for a query, best first: text, path, line range, score, heading, "
                             "and document_rank (several passages of one document share it). min_score drops "
                             "passages scoring below it on the mode's scale (vector cosine, keyword bm25, "
                             "hybrid 0..1). rerank=true reorders them with the default Qwen3 reranker; "
                             "rerank_model names another Ollama reranker model (and implies rerank). where "
                             "keeps only documents passing filters on metadata, modification time, size or "
                             "suffix, e.g. [\"year>=2020\", \"mtime>=7d\"] (syntax in its parameter).")
    async def search(query: str, k: int = 5, mode: Mode = DEFAULT_SEARCH_MODE, paths: list[str] | None = None,
                     where: Where = None, rerank: bool = False, rerank_model: str | None = None,
                     min_score: float | None = None) -> dict[str, Any]:
        with _tool_errors():
            hits = await index.asearch(query, k=max(1, min(k, MAX_K)), mode=mode, paths=paths or (),
                                       where=where or None, rerank=_rerank(rerank, rerank_model),
                                       min_score=min_score)
        return {"hits": [hit.to_dict() for hit in hits]}

    @server.tool(description="A prompt-ready block of numbered, cited passages for a question, within max_tokens "
                             "estimated tokens; adjacent passages are merged. Cite passages by their [n]. "
                             "Passages scoring far below the best one are left out (min_relative, 0..1, "
                             f"default {DEFAULT_MIN_RELATIVE}; 0 packs every hit). rerank / rerank_model / "
                             "where / min_score as for search.")
    async def context(query: str, max_tokens: int = 2000, k: int = 10, mode: Mode = DEFAULT_SEARCH_MODE,
                      paths: list[str] | None = None, where: Where = None, rerank: bool = False,
                      rerank_model: str | None = None, min_score: float | None = None,
                      min_relative: float = DEFAULT_MIN_RELATIVE) -> str:
        budget = max(1, min(max_tokens, MAX_CONTEXT_TOKENS))
        with _tool_errors():
            result = await index.acontext(query, max_tokens=budget, k=max(1, min(k, MAX_K)), mode=mode,
                                          neighbours=DEFAULT_NEIGHBOURS, paths=paths or (), where=where or None,
                                          rerank=_rerank(rerank, rerank_model), min_score=min_score,
                                          min_relative=min_relative)
            if result.text:
                return result.text
            best = await index.asearch(query, k=1, mode=mode, paths=paths or (), where=where or None,
                                       min_score=min_score)
        if best:
            header = f"[1] {best[0].citation}" + (f" — {best[0].heading}" if best[0].heading else "")
            raise ToolError(
                f"max_tokens={budget} is too small for any passage: the best one's citation line alone takes "
                f"about {estimate_tokens(header)} tokens — ask again with max_tokens of at least "
                f"{estimate_tokens(header) + 50}"
            )
        return "No passages found."

    @server.tool(description="The indexed text of one document, or of a line range of it: by path as search "
                             "shows it, by citation (`path:12-30`, `file.pdf#page=3:1-20`), or by a text's id. "
                             "line_start / line_end override the citation's lines. Returns the text with its "
                             "citation; a long document is cut at a line and `next` cites the rest.")
    async def get(path: str, line_start: int | None = None, line_end: int | None = None) -> dict[str, Any]:
        with _tool_errors():
            return _document(index.get(path, line_start=line_start, line_end=line_end), index)

    @server.tool(description="Several documents or line ranges at once, by citations (`path:12-30`) or paths; "
                             "each comes back with its text and citation, or with the error for that one.")
    async def multi_get(citations: list[str]) -> dict[str, Any]:
        if len(citations) > MAX_MULTI_GET:
            raise ToolError(f"multi_get takes at most {MAX_MULTI_GET} citations at once, not {len(citations)}")
        results: list[dict[str, Any]] = []
        for citation in citations:
            try:
                results.append(_document(index.get(citation), index))
            except SemsearchError as exc:
                results.append({"request": citation, "error": str(exc)})
        return {"documents": results}

    @server.tool(description="What the index holds: model, dimensions, documents, chunks, index type, whether "
                             "its vector file agrees with its database, and whether it is read-only.")
    async def status() -> dict[str, Any]:
        with _tool_errors():
            return {**index.status().to_dict(), "read_only": index.read_only}

    return server


def _document(document, index: Index) -> dict[str, Any]:
    """A DocumentText as a tool result, cut at a line when longer than MAX_GET_CHARS."""
    data = document.to_dict()
    if len(document.text) > MAX_GET_CHARS and document.is_file and document.part is None \
            and document.citation != document.path:
        kept = document.text[:MAX_GET_CHARS].rsplit("\n", 1)[0]
        end = document.line_start + kept.count("\n")
        shorter = index.get(document.path, line_start=document.line_start, line_end=end)
        data = shorter.to_dict()
        data["next"] = f"{document.path}:{end + 1}-{document.line_end}"
    return data


def run_stdio(index_path: Path, *, ollama_host: str | Sequence[str] | None = None, base_url: str | None = None,
              timeout: float | None = None, keep_alive: str | float | None = None, watch: bool = False) -> None:
    """Serve the index at `index_path` over stdin/stdout until the client closes the stream; with
    `watch`, keep it current with the folders it remembers meanwhile."""
    # The SDK logs at INFO to stderr; one line per embedding request would drown the client's log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    index = Index.open(index_path, create=watch, ollama_host=ollama_host, base_url=base_url, timeout=timeout,
                       keep_alive=keep_alive)
    watcher = None
    if watch:
        from semsearch.watch import BackgroundWatch

        watcher = BackgroundWatch(index, report=lambda line: print(line, file=sys.stderr, flush=True)).start()
    try:
        build_server(index).run("stdio")
    finally:
        if watcher is not None:
            watcher.stop()
        index.close()
