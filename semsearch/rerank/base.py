"""The Reranker protocol, the shared plumbing of its providers, and reordering hits by rerank score."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

import httpx

from semsearch._http import RetryPolicy, send_with_retries
from semsearch.errors import RerankerError
# Re-exported under the names the providers and callers know.
from semsearch.options import DEFAULT_RERANK_CONCURRENCY as DEFAULT_CONCURRENCY  # noqa: F401
from semsearch.options import DEFAULT_RERANK_TIMEOUT as DEFAULT_TIMEOUT  # noqa: F401
from semsearch.options import DEFAULT_RERANK_TOP  # noqa: F401
from semsearch.types import Hit, embed_text

_RETRY_STATUSES = frozenset({500, 502, 503, 504})


@runtime_checkable
class Reranker(Protocol):
    """Anything that scores texts against a query: higher means more relevant.

    `score` returns one float per text, in the order of `texts`; only the order of the scores
    matters to search (Qwen3-Reranker gives probabilities, some /v1/rerank servers logits).
    """

    def score(self, query: str, texts: Sequence[str]) -> list[float]: ...


class BaseReranker:
    """Context-manager and `close()` plumbing shared by the providers."""

    def score(self, query: str, texts: Sequence[str]) -> list[float]:  # pragma: no cover - providers override
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def rerank_hits(reranker: Reranker, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
    """The `k` hits the reranker scores highest, renumbered, with `score` = `rerank_score`.

    The reranker sees each passage as the embedder did, heading path first. `retrieval_score`
    keeps the score retrieval gave; ties keep retrieval order. Raises
    RerankerError (or a subclass) when the reranker fails or answers the wrong number of scores.
    """
    if not hits:
        return []
    scores = [float(s) for s in reranker.score(query, [embed_text(hit) for hit in hits])]
    if len(scores) != len(hits):
        raise RerankerError(f"the reranker returned {len(scores)} scores for {len(hits)} passages")
    order = sorted(range(len(hits)), key=lambda i: -scores[i] if not math.isnan(scores[i]) else math.inf)
    return [
        replace(hits[i], rank=rank, score=scores[i], rerank_score=scores[i],
                retrieval_score=hits[i].retrieval_score if hits[i].retrieval_score is not None else hits[i].score)
        for rank, i in enumerate(order[:k], start=1)
    ]


def post_json(client: httpx.Client, url: str, body: dict[str, Any], *, retries: int, backoff: float,
              headers: dict[str, str] | None = None) -> httpx.Response:
    """POST `body`, retrying 5xx answers and failed connections with jittered exponential backoff.

    A timeout is not retried: a search is interactive, and a server too slow for one request is
    not helped by a second. Returns the last response (possibly an error status); raises
    httpx.TimeoutException, or httpx.TransportError when every attempt failed to connect.
    """
    policy = RetryPolicy(retries, backoff, _RETRY_STATUSES, retry_timeouts=False)
    return send_with_retries(lambda: client.post(url, json=body, headers=headers), policy)
