"""Rerankers: the protocol, the Ollama (Qwen3-Reranker over /api/generate) and /v1/rerank providers."""

from __future__ import annotations

from collections.abc import Sequence

from semsearch.rerank.base import (
    DEFAULT_CONCURRENCY,
    DEFAULT_RERANK_TOP,
    DEFAULT_TIMEOUT,
    BaseReranker,
    Reranker,
    rerank_hits,
)
from semsearch.rerank.http import HttpReranker
from semsearch.rerank.ollama import DEFAULT_RERANK_MODEL, OllamaReranker, yes_probability

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_RERANK_MODEL",
    "DEFAULT_RERANK_TOP",
    "DEFAULT_TIMEOUT",
    "BaseReranker",
    "HttpReranker",
    "OllamaReranker",
    "Reranker",
    "make_reranker",
    "rerank_hits",
    "yes_probability",
]


def make_reranker(
    model: str | None = None,
    *,
    url: str | None = None,
    api_key: str | None = None,
    host: str | Sequence[str] | None = None,
    timeout: float | None = None,
    concurrency: int | None = None,
) -> BaseReranker:
    """A reranker: `/v1/rerank` at `url` when given, else `model` (default Qwen3-Reranker-0.6B) on Ollama.

    `host` is the Ollama server, or several (the first reranks; default `$OLLAMA_HOST`, else
    127.0.0.1:11434); `api_key` is for the /v1/rerank server; `timeout` is seconds per request;
    `concurrency` bounds Ollama requests in flight. Use it as a context manager, or call `close()`.
    """
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    if url:
        return HttpReranker(url, model=model, api_key=api_key, timeout=timeout)
    return OllamaReranker(model or DEFAULT_RERANK_MODEL, host=host, timeout=timeout,
                          concurrency=DEFAULT_CONCURRENCY if concurrency is None else concurrency)
