"""semsearch: local semantic search over your own documents (Ollama embeddings, FAISS, SQLite).

    from semsearch import Index
    with Index.open(".semsearch") as index:
        index.index(["notes/"])
        for hit in index.search("how do I reset my password", k=5):
            print(hit.citation, hit.score, hit.text)
"""

__version__ = "0.1.0"

from semsearch.context import Context, Source  # noqa: E402
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
from semsearch.index import Index  # noqa: E402
from semsearch.types import Chunk, Document, Hit, IndexReport, IndexStatus, TextItem  # noqa: E402

__all__ = [
    "Chunk",
    "ConfigError",
    "Context",
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
    "Source",
    "TextItem",
    "__version__",
]
