"""`RerankerCache`: the rerankers one index made for `rerank=True` or a model name, kept and closed with it."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from semsearch.rerank import make_reranker
from semsearch.rerank.base import BaseReranker


class RerankerCache:
    """One reranker per model name (None: the default model) on the Ollama `hosts`; safe across threads."""

    def __init__(self, hosts: Sequence[str] | None):
        self._hosts = list(hosts or ()) or None
        self._rerankers: dict[str, BaseReranker] = {}
        self._lock = threading.Lock()

    def get(self, model: str | None) -> BaseReranker:
        with self._lock:
            key = model or ""
            if key not in self._rerankers:
                self._rerankers[key] = make_reranker(model, host=self._hosts)
            return self._rerankers[key]

    def close(self) -> None:
        for reranker in self._rerankers.values():
            reranker.close()
        self._rerankers.clear()
