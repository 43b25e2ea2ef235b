"""The Embedder protocol, the shared base class, and the one place vectors are normalised."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from semsearch.embed.presets import Preset
from semsearch.errors import EmbedderError, InputTooLongError
from semsearch.types import EmbedKind


def check_vectors(vectors: Any, count: int, dimensions: int, source: str) -> np.ndarray:
    """`vectors` as float32 if it holds `count` rows of `dimensions` finite, non-zero numbers.

    A broken server or proxy can answer HTTP 200 with vectors that would poison the index (NaN
    scores, a row missing, another model's size); raises EmbedderError naming `source` so nothing
    of that answer is stored.
    """
    try:
        array = np.asarray(vectors, dtype=np.float32)
    except (ValueError, TypeError):  # rows of different lengths, or not numbers at all
        array = np.zeros((len(vectors) if isinstance(vectors, (list, tuple)) else 0, 0), np.float32)
    if array.ndim != 2 or array.shape != (count, dimensions):
        rows = array.shape[0] if array.ndim >= 1 else 0
        size = array.shape[1] if array.ndim == 2 else 0
        raise EmbedderError(
            f"{source} returned {rows} vectors of {size} dimensions for {count} texts, expected "
            f"{dimensions} dimensions each — no vector was stored; check that the server runs the model "
            "the index was built with, then index again"
        )
    if not np.isfinite(array).all() or not np.linalg.norm(array, axis=1).all():
        raise EmbedderError(
            f"{source} returned a vector with NaN, infinite or only zero numbers — no vector was stored; "
            "the server or its model is misbehaving: restart it (or pull the model again), then index again"
        )
    return array


@dataclass(frozen=True)
class EmbedderInfo:
    """What identifies an embedder's vector space; recorded in the index and checked on open.

    The last three fields say how to reach the same vector space again: the server's address
    (OpenAI-compatible providers), the dimensions asked of the server (None: the model's own
    size) and whether the server applies the query/document prompt itself (`input_type`).
    """

    provider: str
    model: str
    dimensions: int
    context_length: int
    preset: Preset
    base_url: str = ""
    requested_dimensions: int | None = None
    input_type: bool = False


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors of one fixed size."""

    def info(self) -> EmbedderInfo: ...

    def embed(self, texts: Sequence[str], kind: EmbedKind) -> np.ndarray: ...


@runtime_checkable
class ContextSizedEmbedder(Embedder, Protocol):
    """An embedder whose server takes a context size per request (Ollama's `options.num_ctx`)."""

    def use_num_ctx(self, num_ctx: int) -> None:
        """Send `num_ctx` with every request from now on, unless one was chosen when it was made."""
        ...


@runtime_checkable
class PullableEmbedder(Embedder, Protocol):
    """An embedder whose server can fetch a missing model (Ollama's `/api/pull`)."""

    model: str

    def is_available(self) -> bool:
        """Whether the server has the model."""
        ...

    def pull(self, progress: Callable[[str, int | None, int | None], None] | None = None) -> None:
        """Fetch the model, reporting (status, completed, total) to `progress`."""
        ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Return float32 rows scaled to unit L2 length (zero rows stay zero).

    Servers differ (Ollama's /api/embed normalises, other servers and MRL truncation do not),
    so every vector entering the index or a query passes through here exactly once.
    """
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(array / norms, dtype=np.float32)


def truncate_dimensions(vectors: np.ndarray, dimensions: int | None) -> np.ndarray:
    """Keep the first `dimensions` numbers of each row (Matryoshka truncation); `normalize` must follow.

    For servers that ignore a `dimensions` request (Ollama before 0.11.11, other providers):
    Matryoshka-trained models put the most information first, so a prefix is a usable vector.
    """
    array = np.asarray(vectors, dtype=np.float32)
    if dimensions and array.ndim == 2 and array.shape[1] > dimensions:
        return array[:, :dimensions]
    return array


def send_locating_overflow(send: Callable[[list[str]], np.ndarray], batch: list[str], offset: int) -> np.ndarray:
    """`send(batch)`; if the server finds a text too long, raise InputTooLongError with its index.

    The index counts from the start of the whole `embed` call (`offset` is the batch's start),
    so the ingester can split exactly that chunk and retry; servers do not say which text it was,
    so the batch is tried again one text at a time to find it.
    """
    try:
        return send(batch)
    except InputTooLongError as exc:
        if len(batch) == 1:
            raise InputTooLongError(str(exc), index=offset) from exc
        for position, text in enumerate(batch):
            try:
                send([text])
            except InputTooLongError as single:
                raise InputTooLongError(str(single), index=offset + position) from single
        raise


class BaseEmbedder:
    """Applies the model's preset, calls the provider, and normalises.

    Providers implement `_embed_formatted(texts)` (texts already carrying their instruction or
    prefix) and `info()`.
    """

    preset: Preset

    def info(self) -> EmbedderInfo:  # pragma: no cover - providers override
        raise NotImplementedError

    def _embed_formatted(self, texts: list[str], kind: EmbedKind) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def embed(self, texts: Sequence[str], kind: EmbedKind) -> np.ndarray:
        """Embed `texts` as queries or documents; returns an (N, dims) float32 array of unit rows."""
        if not texts:
            return np.zeros((0, self.info().dimensions), dtype=np.float32)
        fmt = self.preset.format_query if kind == "query" else self.preset.format_document
        info = self.info()
        vectors = self._embed_formatted([fmt(text) for text in texts], kind)
        return normalize(check_vectors(vectors, len(texts), info.dimensions, f"{info.provider} model {info.model}"))

    def close(self) -> None:
        """Release connections; safe to call twice."""
