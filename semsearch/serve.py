"""`semsearch serve`: an index as a JSON HTTP API (search, context, status, texts) on FastAPI + uvicorn.

Endpoints: `GET /status`, `POST /search`, `POST /context`, `POST /texts` (add or replace texts by
id), `POST /texts/delete`; the OpenAPI schema is at `/openapi.json`, its browsable form at `/docs`.

Safety: it listens on 127.0.0.1 unless told otherwise. With a token, every request (the schema
too) needs `Authorization: Bearer TOKEN`, else 401. A request body over `max_body` bytes gets
413 before anything parses it; `k`, `max_tokens` and list sizes are bounded by the request
models, whose types are strict (no coercion) and whose strings must be valid Unicode (422).
Library errors become JSON `{"detail": message}` with a fitting status. Every status sent is
in the OpenAPI schema (tests/test_serve_schema.py holds the server to it).

Concurrency: handlers are plain functions that FastAPI runs in worker threads. Reads share one
Index (searching from several threads is safe). Writes go, one at a time, through a second Index
on the same directory: it takes the index's file lock and changes its own FAISS copy, so no
search ever scans vectors while they change; the reading Index sees the new generation in
SQLite (WAL: readers never wait for the writer) and reloads its vectors. With `watch`, a third
Index follows the files (`semsearch.watch.BackgroundWatch`) the same way, one batch at a time.
"""

from __future__ import annotations

import hmac
import json
import math
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from semsearch import __version__
from semsearch.context import DEFAULT_MAX_TOKENS, DEFAULT_NEIGHBOURS
from semsearch.errors import (
    ConfigError,
    EmbedderError,
    EmbedderTimeoutError,
    EmbedderUnavailableError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    InvalidInputError,
    RerankerError,
    RerankerModelNotFoundError,
    RerankerTimeoutError,
    RerankerUnsupportedError,
    SemsearchError,
    StoreError,
)
from semsearch.index import Index
from semsearch.optional import require
from semsearch.options import DEFAULT_SEARCH_MODE
from semsearch.rerank import make_reranker
from semsearch.rerank.base import Reranker
from semsearch.relevance import DEFAULT_MIN_RELATIVE
from semsearch.rerank.ollama import DEFAULT_RERANK_MODEL
from semsearch.types import TextItem, check_json_value

require("fastapi", "serve")
require("uvicorn", "serve")

from fastapi import FastAPI, HTTPException, Request  # noqa: E402
from fastapi.encoders import jsonable_encoder  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator  # noqa: E402
from pydantic import WithJsonSchema  # noqa: E402

MAX_K = 100
MAX_CONTEXT_TOKENS = 32_000
MAX_QUERY_CHARS = 4_000
MAX_TEXTS_PER_REQUEST = 1_000
MAX_NAMED_RERANKERS = 4
# A writer from another process may hold the lock; so may this server's reader for the moment
# it saves a rebuilt FAISS file. Wait this long for it before answering 409.
WRITE_LOCK_WAIT_SECONDS = 10.0
# An over-limit body is read and discarded up to this size so the client receives the 413 instead
# of a connection reset mid-upload; anything larger is cut off.
DRAIN_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """How to open the index and how to guard the API."""

    index_path: Path
    token: str | None = None
    max_body: int = 4 * 1024 * 1024
    model: str | None = None
    dimensions: int | None = None
    ollama_host: str | Sequence[str] | None = None
    base_url: str | None = None
    timeout: float | None = None
    keep_alive: str | float | None = None
    watch: bool = False  # keep the index current with the folders it remembers (see `Index.watch`)


# -- request models (their constraints are the API's bounds, and its OpenAPI schema) -------------
#
# Strict: a JSON value of the wrong type is refused (422), never coerced ("k": "5", "rerank": 0),
# and NaN/Infinity, which Python's JSON parser lets through, are refused as numbers. Every string
# must be valid Unicode: JSON can spell a lone surrogate ("\ud800"), which no UTF-8 layer below
# (SQLite, the embedder's HTTP client) can encode.

def _valid_unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds a lone surrogate (invalid Unicode); send valid UTF-8 text") from None
    return value


def _integral(value: Any) -> Any:
    # JSON has one number type: 5.0 is the integer 5 to JSON Schema (and so to the published
    # schema), so it is accepted as one; "5", true, 5.5 and NaN still are not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("the query is empty (only whitespace)")
    return value


Text = Annotated[str, AfterValidator(_valid_unicode)]
Count = Annotated[int, BeforeValidator(_integral)]
Query = Annotated[Text, AfterValidator(_not_blank)]
Scalar = Text | int | float | bool
# The shape of a filter expression (semsearch.filters), published in the schema so that clients
# and generated requests know it; the server parses it itself and answers 400 with the reason.
EXPRESSION_PATTERN = (r"^\s*(?:-?has:.*\S.*|[^=!<>]*[^=!<>\s][^=!<>]*"
                      r"(?:(?:<=|>=|<|>)\s*[^=<>\s].*|!?=\s*(?:[^=<>\s].*)?))$")
Expression = Annotated[Text, StringConstraints(max_length=1_000), WithJsonSchema(
    {"type": "string", "maxLength": 1_000, "pattern": EXPRESSION_PATTERN})]
Expressions = Annotated[list[Expression], Field(max_length=100)]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200,
                                             pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid")


class SearchRequest(_Strict):
    query: Query = Field(min_length=1, max_length=MAX_QUERY_CHARS, json_schema_extra={"pattern": r"\S"},
                         description="What to look for (not only whitespace).")
    k: Count = Field(10, ge=1, le=MAX_K, description="Number of hits.")
    mode: Literal["vector", "keyword", "hybrid"] = Field(
        DEFAULT_SEARCH_MODE, description="Retrieval mode: hybrid (both lists, each weighed per query), vector "
                                         "(meaning, across languages) or keyword (exact words, bm25).")
    paths: list[Text] = Field(default_factory=list, max_length=100,
                              description="Only documents whose path matches one of these globs.")
    where: dict[Text, Scalar | list[Scalar]] | Expressions | None = Field(
        None,
        description="Filter, either an object of metadata values to equal (each key must equal the value, or "
                    "one of a list of values; a document whose value is a list matches when it contains it) or "
                    "a list of expressions that must all hold: KEY=VALUE, KEY!=VALUE, KEY<VALUE (or <=, >, >=; "
                    "numbers and ISO dates compare as such, else text), has:KEY, -has:KEY, over metadata keys "
                    "and the built-in fields size (bytes, 10k), mtime (an ISO date or an age such as 7d) and "
                    "suffix (.md); e.g. [\"year>=2020\", \"draft!=true\", \"mtime>=7d\"]. A malformed "
                    "expression, or a value of a type the key never holds, gets 400.",
        json_schema_extra={"examples": [{"team": "docs"}, ["year>=2020", "has:author", "mtime>=7d"]]})
    rerank: bool | ModelName = Field(
        False, description="Rerank the best candidates: `true` with the default Qwen3-Reranker "
                           f"({DEFAULT_RERANK_MODEL}) on the index's Ollama host, or the name of another "
                           "Ollama reranker model (one Ollama lacks gets 404).")
    min_score: float | None = Field(
        None, description="Only hits scoring at least this on the mode's scale: vector cosine (-1..1), "
                          "keyword bm25 (0 and up), hybrid fused (0..1), the rerank score (0..1) when reranked.")


class ContextRequest(SearchRequest):
    max_tokens: Count = Field(DEFAULT_MAX_TOKENS, ge=1, le=MAX_CONTEXT_TOKENS,
                              description="Budget for the whole block, citation lines included.")
    neighbours: Count = Field(DEFAULT_NEIGHBOURS, ge=0, le=10,
                              description="Chunks on each side of a hit to add while they fit.")
    min_relative: float = Field(
        DEFAULT_MIN_RELATIVE, ge=0, le=1,
        description="Pack only hits whose relative score is at least this: 1 = the best hit's score, 0 = no "
                    "evidence (vector mode: the query's average cosine with the index). 0 packs every hit; "
                    "`below_threshold` in the answer counts those left out.")


class TextIn(_Strict):
    id: Text = Field(min_length=1, max_length=1_000, description="Your id; adding it again replaces the text.")
    text: Text = Field(description="The text to index.")
    title: Text = ""
    metadata: dict[Text, Any] = Field(default_factory=dict,
                                      description="Returned with hits; filterable by `where`. Plain JSON: "
                                                  "no NaN or Infinity.")

    @field_validator("metadata")
    @classmethod
    def _json_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            check_json_value(value, "metadata")
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None
        return value


class AddTextsRequest(_Strict):
    texts: list[TextIn] = Field(min_length=1, max_length=MAX_TEXTS_PER_REQUEST,
                                description="An id given twice keeps its last text.")


class DeleteTextsRequest(_Strict):
    ids: list[Text] = Field(min_length=1, max_length=MAX_TEXTS_PER_REQUEST)


class ErrorDetail(BaseModel):
    detail: str = Field(description="What went wrong and what to do about it.")


_ERRORS = {
    400: "A body that is not UTF-8 text, a reranker model that cannot rerank, a malformed `where` expression "
         "(or one comparing a key with a value of another type), or options the index cannot use.",
    401: "Missing or wrong bearer token (only when the server has a token).",
    404: "The reranker model named in `rerank` is not on the Ollama server.",
    409: "The index is busy with another writer, or was built with another embedding model.",
    413: "The request body is over the server's --max-body limit.",
    502: "The embedding or reranking server failed or lacks the model.",
    504: "The embedding or reranking server did not answer in time.",
}


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorDetail, "description": _ERRORS[status]} for status in statuses}


# -- the application ---------------------------------------------------------------------------

class _Indexes:
    """The shared reading Index and the lazily opened, serialised writing one."""

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self.reader = Index.open(settings.index_path, model=settings.model, dimensions=settings.dimensions,
                                 **self._common())
        self._writer: Index | None = None
        self._write_lock = threading.Lock()
        self._rerankers: dict[str, Reranker] = {}
        self._rerankers_lock = threading.Lock()
        self._watch = None

    def start_watching(self) -> None:
        """With `settings.watch`, follow the files on a thread of its own (see `BackgroundWatch`)."""
        if self.settings.watch and self._watch is None:
            from semsearch.watch import BackgroundWatch

            self._watch = BackgroundWatch(self.reader, report=lambda line: print(line, file=sys.stderr,
                                                                               flush=True)).start()

    def _common(self) -> dict[str, Any]:
        s = self.settings
        return {"ollama_host": s.ollama_host, "base_url": s.base_url, "timeout": s.timeout,
                "keep_alive": s.keep_alive}

    def write(self, fn: Callable[[Index], Any]) -> Any:
        with self._write_lock:
            if self._writer is None:
                self._writer = Index.open(self.settings.index_path, model=self.settings.model,
                                          dimensions=self.settings.dimensions, **self._common())
            deadline = time.monotonic() + WRITE_LOCK_WAIT_SECONDS
            while True:
                try:
                    return fn(self._writer)
                except IndexLockedError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.05)

    def reranker(self, rerank: bool | str) -> bool | Reranker:
        """What `rerank` asks for: False, True (the index's default reranker), or a reranker for a named model.

        Named ones are kept in a small LRU: clients choose the names, so an unbounded cache
        would grow with every name a client sends.
        """
        if isinstance(rerank, bool):
            return rerank
        with self._rerankers_lock:
            reranker = self._rerankers.pop(rerank, None)
            if reranker is None:
                reranker = make_reranker(rerank, host=self.settings.ollama_host)
            self._rerankers[rerank] = reranker
            while len(self._rerankers) > MAX_NAMED_RERANKERS:
                self._rerankers.pop(next(iter(self._rerankers)))
            return reranker

    def close(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
        self.reader.close()


def _status_for(error: SemsearchError) -> int:
    if isinstance(error, ConfigError):
        return 400
    if isinstance(error, IndexNotFoundError):
        return 404
    if isinstance(error, (IndexLockedError, IndexMismatchError)):
        return 409
    if isinstance(error, (EmbedderTimeoutError, RerankerTimeoutError)):
        return 504
    if isinstance(error, (EmbedderUnavailableError, EmbedderError, RerankerError, StoreError)):
        return 502
    return 500


@contextmanager
def _named_reranker(request: SearchRequest) -> Iterator[None]:
    """A reranker model the client named is the client's choice: one Ollama lacks is 404, one that
    cannot rerank is 400. With `rerank: true` the server's own default failed: 502, an upstream fault."""
    try:
        yield
    except (RerankerModelNotFoundError, RerankerUnsupportedError) as exc:
        if isinstance(request.rerank, str):
            status = 404 if isinstance(exc, RerankerModelNotFoundError) else 400
            raise HTTPException(status, detail=_json_safe(str(exc))) from exc
        raise


def create_app(settings: ServeSettings) -> GuardMiddleware:
    """The ASGI application for `settings` (opens the index; closed when the app shuts down)."""
    indexes = _Indexes(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        indexes.start_watching()
        yield
        indexes.close()

    app = FastAPI(
        title="semsearch",
        version=__version__,
        description="Semantic search over a local semsearch index: ranked, citable passages and "
                    "prompt-ready context for RAG applications.",
        lifespan=lifespan,
    )
    app.state.indexes = indexes

    @app.exception_handler(SemsearchError)
    async def semsearch_error(request: Request, exc: SemsearchError) -> JSONResponse:
        return JSONResponse({"detail": _json_safe(str(exc))}, status_code=_status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the offending input, and JSONResponse cannot render NaN or
        # a lone surrogate: the answer to a bad request would become a 500 (and a closed connection).
        return JSONResponse({"detail": _json_safe(jsonable_encoder(exc.errors()))}, status_code=422)

    searching = _responses(400, 401, 404, 409, 413, 502, 504)

    @app.get("/status", summary="What the index holds", responses=_responses(401, 413))
    def status() -> dict[str, Any]:
        return indexes.reader.status().to_dict()

    @app.post("/search", summary="The best passages for a query", responses=searching)
    def search(request: SearchRequest) -> dict[str, Any]:
        with _named_reranker(request):
            result = indexes.reader.search_detailed(request.query, k=request.k, mode=request.mode,
                                                    paths=request.paths, where=request.where,
                                                    rerank=indexes.reranker(request.rerank),
                                                    min_score=request.min_score)
        return {"query": request.query, "hits": [hit.to_dict() for hit in result.hits],
                "pending_chunks": result.pending_chunks}

    @app.post("/context", summary="A prompt-ready block of cited passages within a token budget",
              responses=searching)
    def context(request: ContextRequest) -> dict[str, Any]:
        with _named_reranker(request):
            result = indexes.reader.context(request.query, max_tokens=request.max_tokens, k=request.k,
                                            mode=request.mode, neighbours=request.neighbours, paths=request.paths,
                                            where=request.where, rerank=indexes.reranker(request.rerank),
                                            min_score=request.min_score, min_relative=request.min_relative)
        return result.to_dict()

    @app.post("/texts", summary="Add or replace texts by id", responses=_responses(400, 401, 409, 413, 502, 504))
    def add_texts(request: AddTextsRequest) -> dict[str, Any]:
        items = [TextItem(id=t.id, text=t.text, metadata=t.metadata, title=t.title) for t in request.texts]
        return indexes.write(lambda index: index.add_texts(items)).to_dict()

    @app.post("/texts/delete", summary="Delete texts by id", responses=_responses(400, 401, 409, 413, 502, 504))
    def delete_texts(request: DeleteTextsRequest) -> dict[str, Any]:
        return {"deleted": indexes.write(lambda index: index.delete_texts(request.ids))}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "The server's --token (SEMSEARCH_TOKEN), when it has one."}}
            if settings.token is not None:
                schema["security"] = [{"bearer": []}]
        return app.openapi_schema

    app.openapi = openapi

    return GuardMiddleware(app, token=settings.token, max_body=settings.max_body)


class GuardMiddleware:
    """Bearer-token check and request-body bound, in front of everything (the schema included).

    The body is read here, up to `max_body` bytes, before the application sees the request; a
    larger one is answered 413 without being parsed.
    """

    def __init__(self, app: Any, *, token: str | None, max_body: int):
        self.app = app
        self.token = token
        self.max_body = max_body

    def __getattr__(self, name: str) -> Any:  # `state`, `openapi()`, ... of the wrapped app
        return getattr(self.app, name)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        if self.token is not None and not self._authorized(headers.get("authorization", "")):
            await _send_json(send, 401, {"detail": "missing or wrong bearer token — send "
                                                   "`Authorization: Bearer <token>`"},
                             [(b"www-authenticate", b"Bearer")])
            return
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await self._too_large(receive, send, int(declared) if declared.isdigit() else None)
            return
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body:
                await self._too_large(receive, send, None, already=size)
                return
            parts.append(body)
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(parts), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _authorized(self, header: str) -> bool:
        scheme, _, credentials = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self.token.encode())

    async def _too_large(self, receive: Callable, send: Callable, declared: int | None, already: int = 0) -> None:
        # Read what the client is still sending (bounded), so it gets to read our answer.
        drained = already
        if declared is None or declared <= DRAIN_LIMIT:
            while drained <= DRAIN_LIMIT:
                message = await receive()
                if message["type"] != "http.request":
                    break
                drained += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
        await _send_json(send, 413, {"detail": f"request body over the {self.max_body}-byte limit "
                                               "(raise it with serve --max-body)"},
                         [(b"connection", b"close")])


def _json_safe(value: Any) -> Any:
    """`value` with lone surrogates escaped and NaN/Infinity spelt as strings, so JSON can carry it."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_json_safe(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


async def _send_json(send: Callable, status: int, payload: dict, extra_headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. Raises ConfigError if it cannot bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc} — choose another --port") from exc
    sock.listen(128)
    return sock


def run_server(settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8765,
               announce: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted; `announce` is told the URL once the socket listens."""
    import uvicorn

    app = create_app(settings)
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    if announce is not None:
        announce(f"http://{shown}:{bound_port}")
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
