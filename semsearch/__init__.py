"""semsearch: local semantic search over your own documents (Ollama embeddings, FAISS, SQLite).

    from semsearch import Index
    with Index.open(".semsearch") as index:
        index.index(["notes/"])
        for hit in index.search("how do I reset my password", k=5):
            print(hit.citation, hit.score, hit.text)
"""

__version__ = "0.1.0"

from semsearch.context import Context, Source  # noqa: E402
from semsearch.grouping import DocumentHit  # noqa: E402
from semsearch.errors import (  # noqa: E402
    ConfigError,
    DiskFullError,
    DocumentNotFoundError,
    EmbedderError,
    EmbedderUnavailableError,
    FilterError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexReadOnlyError,
    InvalidInputError,
    ModelNotFoundError,
    RerankerError,
    RerankerModelNotFoundError,
    RerankerTimeoutError,
    RerankerUnavailableError,
    RerankerUnsupportedError,
    SemsearchError,
    SourceNotFoundError,
)
from semsearch.types import (  # noqa: E402
    Chunk,
    Document,
    DocumentText,
    Hit,
    IndexReport,
    IndexSource,
    IndexStatus,
    SearchResult,
    StageTimings,
    TextItem,
)

__all__ = [
    "Chunk",
    "ConfigError",
    "DiskFullError",
    "Context",
    "Document",
    "DocumentHit",
    "DocumentNotFoundError",
    "DocumentText",
    "EmbedderError",
    "EmbedderUnavailableError",
    "EvalReport",
    "FilterError",
    "Hit",
    "HttpReranker",
    "Index",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexReadOnlyError",
    "IndexReport",
    "IndexSource",
    "IndexStatus",
    "InvalidInputError",
    "ModelNotFoundError",
    "OllamaReranker",
    "Reranker",
    "RerankerError",
    "RerankerModelNotFoundError",
    "RerankerTimeoutError",
    "RerankerUnavailableError",
    "RerankerUnsupportedError",
    "SearchResult",
    "SemsearchError",
    "Source",
    "SourceNotFoundError",
    "StageTimings",
    "TextItem",
    "WatchBatch",
    "__version__",
    "evaluate_dataset",
    "make_reranker",
]


_RERANK = ("HttpReranker", "OllamaReranker", "Reranker", "make_reranker")


def __getattr__(name: str):
    # `Index` and the rerankers pull in FAISS, numpy and HTTP clients: load them on first use so
    # that `semsearch --help` and code importing only the types stay fast.
    if name == "Index":
        from semsearch.index import Index

        return Index
    if name in ("EvalReport", "evaluate_dataset"):
        from semsearch import evaluate

        return getattr(evaluate, name)
    if name == "WatchBatch":
        from semsearch.watch import WatchBatch

        return WatchBatch
    if name in _RERANK:
        from semsearch import rerank

        return getattr(rerank, name)
    raise AttributeError(f"module 'semsearch' has no attribute {name!r}")
