"""The HTTP layer every provider shares: Ollama host resolution, retry with backoff, error bodies, status tables.

Embedders and rerankers talk to different servers (Ollama, OpenAI-compatible `/v1/embeddings`,
`/v1/rerank`) but fail in the same ways. Each provider states what differs as data — a
RetryPolicy, a table of StatusRules carrying its own messages — and the loops that apply them
live here once.

The retry loop is written by hand rather than taken from tenacity: it is one short function, it
must return the last error answer (not raise) so that the provider can name the status, and a new
runtime dependency would buy nothing else. httpx's own transport retries cover only failed connects.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from semsearch.errors import SemsearchError

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
# A server's Retry-After is honoured up to this many seconds: a longer wait looks like a hang.
RETRY_AFTER_CAP = 30.0

T = TypeVar("T")


# -- hosts ---------------------------------------------------------------------------------------


def resolve_host(host: str | None) -> str:
    """The full base URL for an Ollama host given as flag, `OLLAMA_HOST`, or the default."""
    # The client's own OLLAMA_HOST parsing, so we agree with it; imported here because the ollama
    # package (pydantic models) costs a noticeable part of the CLI's start-up.
    from ollama._client import _parse_host

    return _parse_host(host or os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST)


def resolve_hosts(hosts: str | Sequence[str] | None) -> list[str]:
    """Full base URLs for one host, a comma list, or several (flag values or `OLLAMA_HOST`), deduplicated."""
    raw = [hosts] if isinstance(hosts, str) else list(hosts or [])
    if not any(item and item.strip() for item in raw):
        raw = [os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST]
    found = [resolve_host(part.strip()) for item in raw for part in (item or "").split(",") if part.strip()]
    return list(dict.fromkeys(found)) or [resolve_host(None)]


# -- retries -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How a provider retries: `retries` attempts after the first, waits of `backoff` seconds doubling each time.

    `statuses` are the answers worth asking again (overload, a proxy's hiccup); the server's
    Retry-After is honoured on `retry_after_statuses` only. With `retry_timeouts` False a timeout
    reaches the caller at once: a search is interactive, and a server too slow for one request is
    not helped by a second.
    """

    retries: int
    backoff: float
    statuses: frozenset[int]
    retry_after_statuses: frozenset[int] = frozenset()
    retry_timeouts: bool = True


def retry_delay(attempt: int, backoff: float, retry_after: str | None = None) -> float:
    """Seconds to wait before retry number `attempt` + 1: the server's Retry-After (in seconds,
    at most RETRY_AFTER_CAP) when it sent one, else `backoff * 2**attempt` jittered by ×0.5 to ×1.5
    so that clients failed together do not come back together."""
    try:
        wait = float(retry_after) if retry_after else None
    except ValueError:  # an HTTP date: rare from these servers, back off as usual
        wait = None
    if wait is not None and wait >= 0:
        return min(wait, RETRY_AFTER_CAP)
    return backoff * (2**attempt) * (0.5 + random.random())


def _retry_after_header(answer: Any) -> str | None:
    headers = getattr(answer, "headers", None)
    return headers.get("retry-after") if headers is not None else None


def _worth_retrying(exc: Exception, policy: RetryPolicy) -> bool:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):  # an error answer raised by a client library (ollama.ResponseError)
        return status in policy.statuses
    if isinstance(exc, httpx.TimeoutException):
        return policy.retry_timeouts
    # The ollama client turns a refused connection into the builtin ConnectionError.
    return isinstance(exc, (httpx.TransportError, ConnectionError))


def send_with_retries(
    send: Callable[[], T],
    policy: RetryPolicy,
    *,
    retry_after: Callable[[Any], str | None] = _retry_after_header,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`send()`, again after a jittered wait while it fails in a way `policy` deems passing.

    An answer with a `status_code` in `policy.statuses` — returned (httpx.Response) or raised (an
    exception carrying `status_code`, as ollama.ResponseError does) — is retried, as is a failed
    connection (httpx.TransportError, the builtin ConnectionError; timeouts as the policy says).
    Returns the last answer even when its status is an error and re-raises the last exception:
    turning either into a SemsearchError is the provider's part. `retry_after(answer)` reads the
    server's Retry-After (default: the answer's `retry-after` header).
    """
    for attempt in range(policy.retries + 1):
        last = attempt == policy.retries
        try:
            answer: Any = send()
        except Exception as exc:
            if last or not _worth_retrying(exc, policy):
                raise
            answer = exc
        else:
            if last or getattr(answer, "status_code", None) not in policy.statuses:
                return answer
        status = getattr(answer, "status_code", None)
        sleep(retry_delay(attempt, policy.backoff, retry_after(answer) if status in policy.retry_after_statuses else None))
    raise AssertionError("unreachable")  # pragma: no cover


# -- error answers -------------------------------------------------------------------------------


def error_message(response: httpx.Response) -> str:
    """The server's error message from an error answer's body.

    Ollama and most servers send `{"error": "..."}`, OpenAI `{"error": {"message": ...}}`,
    FastAPI-based ones `{"detail": ...}`, some `{"message": ...}`; anything else is shown as its
    text (at most 300 characters), an empty body as the status's reason phrase.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error") or body.get("message") or body.get("detail")
        if isinstance(error, dict):
            error = error.get("message") or error
        if error:
            return str(error)
    return response.text.strip()[:300] or response.reason_phrase


@dataclass(frozen=True)
class StatusRule:
    """One row of a provider's status table: the error `make(status, message)` for the answers it covers.

    A row covers an answer whose status is in `statuses` (any status when None) and whose
    lowercased message holds one of `phrases` (any message when empty) and none of `unless`.
    """

    make: Callable[[int, str], SemsearchError]
    statuses: Collection[int] | None = None
    phrases: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()

    def covers(self, status: int, lowered: str) -> bool:
        return ((self.statuses is None or status in self.statuses)
                and (not self.phrases or any(phrase in lowered for phrase in self.phrases))
                and not any(phrase in lowered for phrase in self.unless))


def status_error(status: int, message: str, table: Sequence[StatusRule],
                 otherwise: Callable[[int, str], SemsearchError]) -> SemsearchError:
    """The error the first row of `table` covering (`status`, `message`) makes, else `otherwise(status, message)`."""
    lowered = message.lower()
    for rule in table:
        if rule.covers(status, lowered):
            return rule.make(status, message)
    return otherwise(status, message)
