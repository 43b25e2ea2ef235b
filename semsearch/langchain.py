"""LangChain integration: `SemsearchRetriever`, a langchain-core retriever over a semsearch index.

    from semsearch import Index
    from semsearch.langchain import SemsearchRetriever

    retriever = SemsearchRetriever(index=Index.open(".semsearch"), k=5)
    docs = retriever.invoke("how do I reset my password")      # or: await retriever.ainvoke(...)
    docs[0].metadata["citation"], docs[0].metadata["score"]
    retriever.invoke("reset password", k=2, mode="hybrid", paths=["docs/*"], rerank=True)

`k`, `mode` and the options of `Index.search` (paths, where, rerank, rerank_top, ...) may be
given at construction or per call, as LangChain's retrievers conventionally accept them; a
per-call value wins.

Each hit becomes a `Document` whose `page_content` is the passage and whose metadata carries
path, line_start/line_end, citation, score, rank, chunk_id, document_id, heading, title and the
document's own metadata. The async path uses `Index.asearch`, so it does not block the event loop.
Needs the `langchain` extra (`pip install 'semsearch[langchain]'`).
"""

from __future__ import annotations

import inspect
from typing import Any

from semsearch.errors import ConfigError
from semsearch.index import Index
from semsearch.optional import require
from semsearch.options import DEFAULT_SEARCH_MODE
from semsearch.types import Hit

require("langchain_core", "langchain", package="langchain-core")

from langchain_core.callbacks import (  # noqa: E402
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from pydantic import ConfigDict, Field  # noqa: E402

__all__ = ["SemsearchRetriever", "hit_to_document"]

# What a call may set: the keyword options of `Index.search` (k and mode included).
SEARCH_OPTIONS = frozenset(
    name for name, parameter in inspect.signature(Index.search).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
)


def hit_to_document(hit: Hit) -> Document:
    """A LangChain Document for one hit: the passage as content, where it came from as metadata."""
    metadata = {
        "path": hit.path,
        "line_start": hit.line_start,
        "line_end": hit.line_end,
        "citation": hit.citation,
        "score": hit.score,
        "rank": hit.rank,
        "chunk_id": hit.chunk_id,
        "document_id": hit.document_id,
        "heading": hit.heading,
        "title": hit.title,
        "source": hit.citation,
    }
    if hit.metadata:
        metadata["metadata"] = dict(hit.metadata)
    return Document(page_content=hit.text, metadata=metadata, id=str(hit.chunk_id))


class SemsearchRetriever(BaseRetriever):
    """Retrieves the `k` best passages from a semsearch `Index` as LangChain `Document`s."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Index
    k: int = Field(default=4, ge=1)
    mode: str = DEFAULT_SEARCH_MODE
    search_options: dict[str, Any] = Field(default_factory=dict)
    """Passed on to `Index.search` (paths, where, ...)."""

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **options: Any) -> list[Document]:
        hits = self.index.search(query, **self._options(options))
        return [hit_to_document(hit) for hit in hits]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **options: Any
    ) -> list[Document]:
        hits = await self.index.asearch(query, **self._options(options))
        return [hit_to_document(hit) for hit in hits]

    def _options(self, call: dict[str, Any]) -> dict[str, Any]:
        """The search options of one call: the constructor's, overridden by those given to invoke()."""
        unknown = sorted(set(call) - SEARCH_OPTIONS)
        if unknown:
            raise ConfigError(
                f"SemsearchRetriever does not take {', '.join(unknown)} — pass one of {', '.join(sorted(SEARCH_OPTIONS))}"
            )
        options = {"k": self.k, "mode": self.mode, **self.search_options, **call}
        if not isinstance(options["k"], int) or options["k"] < 1:
            raise ConfigError(f"k must be a whole number of at least 1, not {options['k']!r}")
        return options
