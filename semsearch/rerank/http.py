"""The `/v1/rerank` provider: Jina/Cohere-shaped rerank endpoints (llama.cpp `--reranking`, vLLM, TEI).

Request `{"model", "query", "documents": [str], "top_n"}` → `{"results": [{"index",
"relevance_score"}]}` (DESIGN §5). Servers differ in what the score means (a probability, a
logit), which is fine: search only orders by it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import httpx

from semsearch._http import StatusRule, error_message, status_error
from semsearch.errors import (
    RerankerError,
    RerankerModelNotFoundError,
    RerankerTimeoutError,
    RerankerUnavailableError,
)
from semsearch.options import RERANK_API_KEY_ENV as API_KEY_ENV
from semsearch.rerank.base import DEFAULT_TIMEOUT, BaseReranker, post_json
from semsearch.tokens import cut_to_tokens

DEFAULT_MAX_DOCUMENT_TOKENS = 2048


def rerank_endpoint(url: str) -> str:
    """`{base}/v1/rerank` for a server base URL; a URL already ending in /v1 or /rerank is kept."""
    url = url.rstrip("/")
    if url.endswith("/rerank"):
        return url
    if url.endswith("/v1"):
        return url + "/rerank"
    return url + "/v1/rerank"


class HttpReranker(BaseReranker):
    """Scores texts with one POST to a `/v1/rerank` endpoint.

    `url` is the server's base URL (`http://127.0.0.1:8080`, `.../v1`, or the full endpoint);
    `api_key` (default: `$SEMSEARCH_RERANK_API_KEY`) is sent as a bearer token; `model` is sent
    when given (vLLM and hosted APIs need it, llama.cpp and TEI ignore it). Documents are cut to
    `max_document_tokens` by our estimate so that they fit the server's context.
    """

    provider = "http"

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 2,
        backoff: float = 0.25,
        max_document_tokens: int = DEFAULT_MAX_DOCUMENT_TOKENS,
        transport: httpx.BaseTransport | None = None,
    ):
        self.url = rerank_endpoint(url)
        self.model = model
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_document_tokens = max_document_tokens
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        kwargs: dict[str, Any] = {"timeout": timeout, "headers": headers}
        if transport is not None:
            kwargs["transport"] = transport
        self._client = httpx.Client(**kwargs)

    def __repr__(self) -> str:
        return f"HttpReranker({self.url!r}, model={self.model!r})"

    def request(self, query: str, texts: Sequence[str]) -> dict[str, Any]:
        """The `/v1/rerank` body for one query and its candidate texts."""
        body: dict[str, Any] = {}
        if self.model:
            body["model"] = self.model
        body.update({
            "query": query,
            "documents": [cut_to_tokens(text, self.max_document_tokens) for text in texts],
            "top_n": len(texts),
        })
        return body

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """The server's relevance score for each text, in order. Raises RerankerError subclasses."""
        if not texts:
            return []
        try:
            response = post_json(self._client, self.url, self.request(query, texts), retries=self.retries,
                                 backoff=self.backoff)
        except httpx.TimeoutException as exc:
            raise RerankerTimeoutError(
                f"the reranker at {self.url} did not answer within {self.timeout:g} s — raise --rerank-timeout, "
                "lower --rerank-top, or add --rerank-fallback to get results in retrieval order when "
                "reranking is slow"
            ) from exc
        except httpx.TransportError as exc:
            raise RerankerUnavailableError(
                f"cannot reach the reranker at {self.url} — start the server, or fix --rerank-url"
            ) from exc
        if response.status_code != 200:
            raise self._status_error(response)
        return self._scores(response, len(texts))

    def _scores(self, response: httpx.Response, count: int) -> list[float]:
        try:
            data = response.json()
            results = data["results"] if isinstance(data, dict) else data
            scores: list[float | None] = [None] * count
            for result in results:
                value = result["relevance_score"] if "relevance_score" in result else result["score"]
                scores[int(result["index"])] = float(value)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise RerankerError(
                f"the reranker at {self.url} answered in an unexpected shape (expected "
                '{"results": [{"index", "relevance_score"}]})'
            ) from exc
        missing = [i for i, value in enumerate(scores) if value is None]
        if missing:
            raise RerankerError(
                f"the reranker at {self.url} scored {count - len(missing)} of {count} documents"
            )
        return [float(value) for value in scores if value is not None]

    def _status_error(self, response: httpx.Response) -> RerankerError:
        return status_error(response.status_code, error_message(response), [
            StatusRule(lambda status, message: RerankerError(
                f"the reranker at {self.url} refused the request ({status}: {message}) — pass its key with "
                f"--rerank-api-key or {API_KEY_ENV}"), statuses={401, 403}),
            StatusRule(lambda status, message: RerankerModelNotFoundError(
                f"the reranker at {self.url} does not serve model {self.model}: {message} — fix --rerank-model"),
                statuses={404}, phrases=("model",)),
            StatusRule(lambda status, message: RerankerError(
                f"{self.url} is not a rerank endpoint ({status}: {message}) — point --rerank-url at a server "
                "with /v1/rerank (llama.cpp needs --reranking)"), statuses={404, 405, 501}),
            StatusRule(lambda status, message: RerankerUnavailableError(
                f"the reranker at {self.url} failed ({status}: {message})"), statuses=range(500, 600)),
        ], otherwise=lambda status, message: RerankerError(f"the reranker at {self.url} answered {status}: {message}"))

    def close(self) -> None:
        self._client.close()
