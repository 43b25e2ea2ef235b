"""`semsearch mcp`: a Model Context Protocol server on stdio exposing an index's search and context as tools.

Built on the official `mcp` SDK (2.x, `MCPServer`). Stdout carries the protocol, so nothing
else may print there; messages go to stderr. Tool calls run through the async API, so one slow
embedding call never stalls the protocol loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from semsearch.context import DEFAULT_NEIGHBOURS
from semsearch.index import Index
from semsearch.optional import require

require("mcp.server.mcpserver", "mcp", package="mcp>=2")

from mcp.server.mcpserver import MCPServer  # noqa: E402

MAX_K = 100
MAX_CONTEXT_TOKENS = 32_000
Mode = Literal["vector", "keyword", "hybrid"]

INSTRUCTIONS = (
    "Searches the user's own indexed documents (notes, code, papers; Chinese and English) by meaning. "
    "Use `context` to get evidence for answering a question: numbered passages with citations "
    "([1] path:line-line) that fit a token budget; cite them by number. Use `search` to list the best "
    "matching passages with paths, line ranges and scores."
)


def build_server(index: Index) -> MCPServer:
    """An MCP server whose tools answer from `index`."""
    server = MCPServer(name="semsearch", instructions=INSTRUCTIONS)

    @server.tool(description="The best passages for a query, best first: text, path, line range, score, heading.")
    async def search(query: str, k: int = 5, mode: Mode = "vector", paths: list[str] | None = None,
                     rerank: bool = False) -> dict[str, Any]:
        hits = await index.asearch(query, k=max(1, min(k, MAX_K)), mode=mode, paths=paths or (), rerank=rerank)
        return {"hits": [hit.to_dict() for hit in hits]}

    @server.tool(description="A prompt-ready block of numbered, cited passages for a question, within max_tokens "
                             "estimated tokens; adjacent passages are merged. Cite passages by their [n].")
    async def context(query: str, max_tokens: int = 2000, k: int = 10, mode: Mode = "vector",
                      paths: list[str] | None = None, rerank: bool = False) -> str:
        result = await index.acontext(query, max_tokens=max(1, min(max_tokens, MAX_CONTEXT_TOKENS)),
                                      k=max(1, min(k, MAX_K)), mode=mode, neighbours=DEFAULT_NEIGHBOURS,
                                      paths=paths or (), rerank=rerank)
        return result.text or "No passages found."

    return server


def run_stdio(index_path: Path, *, ollama_host: str | Sequence[str] | None = None, base_url: str | None = None,
              timeout: float | None = None, keep_alive: str | float | None = None) -> None:
    """Serve the index at `index_path` over stdin/stdout until the client closes the stream."""
    # The SDK logs at INFO to stderr; one line per embedding request would drown the client's log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    index = Index.open(index_path, create=False, ollama_host=ollama_host, base_url=base_url, timeout=timeout,
                       keep_alive=keep_alive)
    try:
        build_server(index).run("stdio")
    finally:
        index.close()
