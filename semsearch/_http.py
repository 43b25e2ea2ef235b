"""The HTTP layer every provider shares: Ollama host resolution, retry with backoff, error bodies, status tables.

Embedders and rerankers talk to different servers (Ollama, OpenAI-compatible `/v1/embeddings`,
`/v1/rerank`) but fail in the same ways. Each provider states what differs as data — a
RetryPolicy, a table of StatusRules carrying its own messages — and the loops that apply them
live here once.

The retry loop is written by hand rather than taken from tenacity: it is one short function, it
must return the last error answer (not raise) so that the provider can name the status, and a new
runtime dependency would buy nothing else. httpx's own transport retries cover only failed connects.

JsonClient sends the Ollama embedder's requests. A `semsearch search` process embeds one query
and exits, so what it imports is most of what it costs: httpx (with the httpcore, h11, rich and
pygments modules it loads) and the SSL context it builds for every client took about 0.1 s of
each search, the standard library's http.client about 0.01 s. So JsonClient speaks plain
http.client, and goes through httpx only where httpx adds something: a given transport (tests
pass httpx.MockTransport) or a proxy configured in the environment. This module itself imports
neither httpx nor anything heavy.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from semsearch.errors import SemsearchError

if TYPE_CHECKING:
    import http.client

    import httpx

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
# A server's Retry-After is honoured up to this many seconds: a longer wait looks like a hang.
RETRY_AFTER_CAP = 30.0

T = TypeVar("T")


# -- hosts ---------------------------------------------------------------------------------------


def resolve_host(host: str | None) -> str:
    """The full base URL for an Ollama host given as flag, `OLLAMA_HOST`, or the default.

    Read the way the `ollama` client reads OLLAMA_HOST (a test holds the two to the same answers),
    without importing it: that package's pydantic models cost a search a third of a second.
    `1.2.3.4` → `http://1.2.3.4:11434`, `https://example.com` → `https://example.com:443`,
    `example.com:8080/path/` → `http://example.com:8080/path`.
    """
    text = host or os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST
    scheme, _, rest = text.partition("://")
    port = {"http": 80, "https": 443}.get(scheme, 11434) if rest else 11434
    if not rest:
        scheme, rest = "http", text
    split = urlsplit(f"{scheme}://{rest}")
    name = split.hostname or "127.0.0.1"
    if ":" in name:  # an IPv6 address, which urlsplit hands back without its brackets
        name = f"[{name}]"
    path = split.path.strip("/")
    return f"{scheme}://{name}:{split.port or port}" + (f"/{path}" if path else "")


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
    # An httpx error can only come from a process that imported httpx; one that did not is spared the import.
    httpx = sys.modules.get("httpx")
    if isinstance(exc, TimeoutError) or (httpx is not None and isinstance(exc, httpx.TimeoutException)):
        return policy.retry_timeouts
    # The ollama client turns a refused connection into the builtin ConnectionError, as JsonClient does.
    return isinstance(exc, ConnectionError) or (httpx is not None and isinstance(exc, httpx.TransportError))


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


def error_message(response: httpx.Response | Answer) -> str:
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


# -- JSON over HTTP ------------------------------------------------------------------------------


class ConnectionBroken(ConnectionError):
    """The server took the request but the connection broke before its answer was complete."""


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, with the parts of httpx.Response that providers read (so `error_message`
    and `send_with_retries` take either)."""

    status_code: int
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # names lowercased
    reason_phrase: str = ""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not."""
        return json.loads(self.content)


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def _proxy_configured() -> bool:
    return any(os.environ.get(name) or os.environ.get(name.upper()) for name in _PROXY_VARIABLES)


class JsonClient:
    """JSON requests to one server at `base_url`, over http.client or, where it adds something, httpx.

    httpx is used when `transport` is given (tests pass httpx.MockTransport; the bytes and headers
    it sees are built here once, for both ways) or when the environment names a proxy (httpx
    honours HTTP(S)_PROXY and NO_PROXY). Kept-alive connections are reused, one request at a time
    each, so one client serves several threads. `timeout` bounds the connect and each read, as
    httpx's does.

    `request` returns every answer, error statuses included, and raises TimeoutError when the
    server does not answer in time, ConnectionBroken when the connection breaks during the answer,
    and ConnectionError when the server cannot be reached.
    """

    def __init__(self, base_url: str, *, timeout: float, headers: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None):
        split = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._https = split.scheme == "https"
        self._address = (split.hostname or "127.0.0.1", split.port or (443 if self._https else 80))
        self._prefix = split.path.rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._ssl_context: Any = None
        self._httpx: httpx.Client | None = None
        if transport is not None or _proxy_configured():
            import httpx

            self._httpx = httpx.Client(transport=transport, timeout=timeout, follow_redirects=True)

    def request(self, method: str, path: str, body: Any = None) -> Answer:
        """Send `body` as JSON (nothing when None) to `path` under the base URL; the answer, whatever its status."""
        content = b"" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {**self._headers, "Content-Length": str(len(content))}
        if self._httpx is not None:
            return self._send_httpx(method, self.base_url + path, content, headers)
        return self._send(method, self._prefix + path, content, headers)

    def _send_httpx(self, method: str, url: str, content: bytes, headers: dict[str, str]) -> Answer:
        client = self._httpx
        assert client is not None
        response = without_httpx_errors(lambda: client.request(method, url, content=content, headers=headers))
        return Answer(response.status_code, response.content,
                      {name.lower(): value for name, value in response.headers.items()}, response.reason_phrase)

    def _send(self, method: str, path: str, content: bytes, headers: dict[str, str]) -> Answer:
        import http.client

        while True:
            connection, reused = self._connection()
            answered = False
            try:
                if connection.sock is None:
                    self._connect(connection)
                connection.request(method, path, body=content, headers=headers)
                response = connection.getresponse()
                answered = True
                data = response.read()
            except TimeoutError:
                connection.close()
                raise
            except (http.client.HTTPException, OSError) as exc:  # reset, closed, cut short, garbled
                connection.close()
                if reused and not answered:
                    continue  # a kept-alive connection the server had closed: once more on a new one
                if type(exc) is ConnectionError:  # from _connect: the server cannot be reached
                    raise
                raise ConnectionBroken(str(exc) or type(exc).__name__) from exc
            if response.will_close:
                connection.close()
            else:
                with self._lock:
                    self._idle.append(connection)
            return Answer(response.status, data, {name.lower(): value for name, value in response.getheaders()},
                          response.reason)

    def _connect(self, connection: http.client.HTTPConnection) -> None:
        try:
            connection.connect()
        except TimeoutError:
            raise
        except OSError as exc:  # refused, unknown host, no route
            raise ConnectionError(f"cannot connect to {self.base_url}: {exc}") from exc

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """A kept-alive connection and True, or a new one (not yet connected) and False."""
        import http.client

        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        if not self._https:
            return http.client.HTTPConnection(*self._address, timeout=self.timeout), False
        if self._ssl_context is None:
            self._ssl_context = _verifying_context()
        return http.client.HTTPSConnection(*self._address, timeout=self.timeout, context=self._ssl_context), False

    def close(self) -> None:
        """Close kept-alive connections; safe to call twice."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        if self._httpx is not None:
            self._httpx.close()


def without_httpx_errors(send: Callable[[], T]) -> T:
    """`send()`, with httpx's failures raised as JsonClient's: TimeoutError, ConnectionBroken, ConnectionError."""
    import httpx

    try:
        return send()
    except httpx.TimeoutException as exc:
        raise TimeoutError(str(exc)) from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise ConnectionBroken(str(exc)) from exc
    except httpx.TransportError as exc:
        raise ConnectionError(str(exc)) from exc


def _verifying_context() -> Any:
    """An SSL context checking certificates against the same roots as httpx (certifi's, when installed)."""
    import ssl

    try:
        import certifi
    except ImportError:  # pragma: no cover - httpx depends on certifi
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())
