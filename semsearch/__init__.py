"""semsearch: local semantic search over your own documents (Ollama embeddings, FAISS, SQLite).

    from semsearch import Index
    with Index.open(".semsearch") as index:
        index.index(["notes/"])
        for hit in index.search("how do I reset my password", k=5):
            print(hit.citation, hit.score, hit.text)
"""

__version__ = "0.1.0"

from semsearch.errors import (  # noqa: E402
    ConfigError,
    EmbedderError,
    EmbedderUnavailableError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    ModelNotFoundError,
    SemsearchError,
)
from semsearch.types import Chunk, Document, Hit, IndexReport, IndexStatus, TextItem  # noqa: E402

__all__ = [
    "Chunk",
    "ConfigError",
    "Document",
    "EmbedderError",
    "EmbedderUnavailableError",
    "Hit",
    "Index",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexReport",
    "IndexStatus",
    "ModelNotFoundError",
    "SemsearchError",
    "TextItem",
    "__version__",
]


def __getattr__(name: str):
    # `Index` pulls in FAISS, numpy and the embedder client: load it on first use so that
    # `semsearch --help` and code importing only the types stay fast.
    if name == "Index":
        from semsearch.index import Index

        return Index
    raise AttributeError(f"module 'semsearch' has no attribute {name!r}")
