"""The Ollama embedding provider: batched `/api/embed`, retries, model facts from `/api/show`, pulls.

Facts this relies on are in DESIGN §4: `/api/embed` takes a list and returns normalised vectors;
`truncate: false` turns a silent cut into a 400; the default `num_ctx` is small, so we size it to
the chunk budget; the client's default timeout is none, so we always set one.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import ollama
from ollama._client import _parse_host  # the client's own OLLAMA_HOST parsing, so we agree with it

from semsearch.embed.base import BaseEmbedder, EmbedderInfo
from semsearch.embed.presets import DEFAULT_MODEL, Preset, preset_for_model
from semsearch.errors import (
    EmbedderError,
    EmbedderTimeoutError,
    EmbedderUnavailableError,
    InputTooLongError,
    ModelCapabilityError,
    ModelNotFoundError,
)
from semsearch.types import EmbedKind

DEFAULT_HOST = "http://127.0.0.1:11434"
_RETRY_STATUSES = frozenset({500, 502, 503, 504})


def resolve_host(host: str | None) -> str:
    """The full base URL for a host given as flag, `OLLAMA_HOST`, or the default."""
    raw = host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST
    return _parse_host(raw)


class OllamaEmbedder(BaseEmbedder):
    """Embeds through one Ollama server.

    `transport` is passed to httpx (tests use `httpx.MockTransport`). `num_ctx` should be about
    twice the chunk token budget (our token count is an estimate), capped at the model's context.
    """

    provider = "ollama"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        host: str | None = None,
        preset: Preset | None = None,
        num_ctx: int | None = None,
        dimensions: int | None = None,
        keep_alive: str | float | None = None,
        batch_size: int = 16,
        timeout: float = 120.0,
        retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        known_info: EmbedderInfo | None = None,
    ):
        self.model = model.removeprefix("ollama:")
        self.host = resolve_host(host)
        self.preset = preset or preset_for_model(self.model)
        self.num_ctx = num_ctx
        self.dimensions = dimensions
        self.keep_alive = keep_alive
        self.batch_size = max(1, batch_size)
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        kwargs: dict[str, Any] = {"timeout": timeout}
        if transport is not None:
            kwargs["transport"] = transport
        self._client = ollama.Client(host=self.host, **kwargs)
        # An existing index already knows the model's facts: skip the /api/show round trip.
        self._info: EmbedderInfo | None = known_info

    # -- model facts ---------------------------------------------------------------------------

    def info(self) -> EmbedderInfo:
        """Model dimensions and context length, asked of `/api/show` once."""
        if self._info is None:
            shown = self._call(lambda: self._client.show(self.model))
            model_info = dict(shown.modelinfo or {})
            capabilities = list(getattr(shown, "capabilities", None) or [])
            if capabilities and "embedding" not in capabilities:
                raise ModelCapabilityError(
                    f"model {self.model} does not support embeddings — choose an embedding model, "
                    f"for example `{DEFAULT_MODEL}`"
                )
            native = _model_info_value(model_info, "embedding_length")
            context = _model_info_value(model_info, "context_length") or 2048
            if native is None:
                raise EmbedderError(f"Ollama did not report the embedding size of {self.model}")
            if self.dimensions is not None and not 1 <= self.dimensions <= native:
                raise EmbedderError(
                    f"--dimensions {self.dimensions} is not possible for {self.model}: "
                    f"choose a value from 32 to {native}"
                )
            self._info = EmbedderInfo(
                provider=self.provider,
                model=self.model,
                dimensions=self.dimensions or native,
                context_length=context,
                preset=self.preset,
            )
        return self._info

    def context_length(self) -> int:
        return self.info().context_length

    # -- embedding -----------------------------------------------------------------------------

    def _embed_formatted(self, texts: list[str], kind: EmbedKind) -> np.ndarray:
        dims = self.info().dimensions
        parts = [self._embed_batch(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        vectors = np.concatenate(parts, axis=0) if parts else np.zeros((0, dims), dtype=np.float32)
        if vectors.shape != (len(texts), dims):
            raise EmbedderError(
                f"Ollama returned vectors of shape {vectors.shape} for {len(texts)} texts of "
                f"{dims} dimensions from {self.model}"
            )
        return vectors

    def _embed_batch(self, batch: list[str]) -> np.ndarray:
        try:
            response = self._call(lambda: self._client.embed(**self._embed_request(batch)))
        except InputTooLongError:
            if len(batch) == 1:
                raise
            # Find which text overflowed so the caller can split exactly that one.
            for position, text in enumerate(batch):
                try:
                    self._call(lambda: self._client.embed(**self._embed_request([text])))
                except InputTooLongError as exc:
                    raise InputTooLongError(str(exc), index=position) from exc
            raise
        return np.asarray(response.embeddings, dtype=np.float32)

    def _embed_request(self, batch: list[str]) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "input": batch, "truncate": False}
        if self.num_ctx:
            request["options"] = {"num_ctx": self.num_ctx}
        if self.dimensions:
            request["dimensions"] = self.dimensions
        if self.keep_alive is not None:
            request["keep_alive"] = self.keep_alive
        return request

    # -- pulling -------------------------------------------------------------------------------

    def is_available(self) -> bool:
        """Whether the model is present on the server (raises if the server is unreachable)."""
        try:
            self._call(lambda: self._client.show(self.model), retries=0)
        except ModelNotFoundError:
            return False
        return True

    def pull(self, progress: Callable[[str, int | None, int | None], None] | None = None) -> None:
        """Pull the model, reporting (status, completed, total) to `progress` as Ollama streams it."""

        def run() -> None:
            stream: Iterator[Any] = self._client.pull(self.model, stream=True)
            for update in stream:
                if progress is not None:
                    progress(update.status or "", update.completed, update.total)

        self._call(run, retries=0, pulling=True)
        self._info = None

    # -- errors --------------------------------------------------------------------------------

    def _call(self, fn: Callable[[], Any], *, retries: int | None = None, pulling: bool = False) -> Any:
        """Run one client call with retry on transient failures, mapping errors to ours."""
        attempts = (self.retries if retries is None else retries) + 1
        for attempt in range(attempts):
            try:
                return fn()
            except ollama.ResponseError as exc:
                if exc.status_code in _RETRY_STATUSES and attempt + 1 < attempts:
                    self._sleep(attempt)
                    continue
                raise self._map_response_error(exc, pulling) from exc
            except (ConnectionError, httpx.TransportError) as exc:
                if attempt + 1 < attempts:
                    self._sleep(attempt)
                    continue
                if isinstance(exc, httpx.TimeoutException):
                    raise EmbedderTimeoutError(
                        f"Ollama at {self.host} did not answer within {self.timeout:g} s — it may be "
                        "loading the model or overloaded; try again or raise --timeout"
                    ) from exc
                raise EmbedderUnavailableError(
                    f"cannot reach Ollama at {self.host} — start it with `ollama serve`, "
                    "or point --ollama-host / OLLAMA_HOST at a running server"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt: int) -> None:
        time.sleep(self.backoff * (2**attempt) * (0.5 + random.random()))

    def _map_response_error(self, exc: ollama.ResponseError, pulling: bool) -> EmbedderError:
        message = str(exc.error)
        lowered = message.lower()
        if pulling:
            return ModelNotFoundError(f"cannot pull {self.model} from Ollama at {self.host}: {message}")
        if exc.status_code == 404 or "not found" in lowered:
            return ModelNotFoundError(
                f"model {self.model} is not pulled on Ollama at {self.host} — run "
                f"`ollama pull {self.model}` (or add --pull)"
            )
        if exc.status_code == 501 or "does not support embeddings" in lowered:
            return ModelCapabilityError(
                f"model {self.model} does not support embeddings — choose an embedding model, "
                f"for example `{DEFAULT_MODEL}`"
            )
        if "context length" in lowered or "input length" in lowered:
            return InputTooLongError(f"a text is longer than the context of {self.model}: {message}")
        return EmbedderError(f"Ollama at {self.host} answered {exc.status_code}: {message}")

    def close(self) -> None:
        self._client.close()


def _model_info_value(model_info: dict[str, Any], suffix: str) -> int | None:
    """`<arch>.<suffix>` from /api/show's model_info, whatever the architecture is called."""
    arch = model_info.get("general.architecture")
    if arch and f"{arch}.{suffix}" in model_info:
        return int(model_info[f"{arch}.{suffix}"])
    for key, value in model_info.items():
        if key.endswith("." + suffix):
            return int(value)
    return None
