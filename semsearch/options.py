"""Fixed names and the choices the library offers, in a module light enough for `semsearch --help`.

The modules that own these concepts (index.py, store.py, search.py, vectors.py) re-export them;
the CLI imports them from here so that building its options never loads FAISS, numpy or the
embedder client.
"""

from __future__ import annotations

DEFAULT_INDEX_DIR = ".semsearch"
DB_NAME = "semsearch.db"
FAISS_NAME = "vectors.faiss"
LOCK_NAME = "write.lock"

SEARCH_MODES: tuple[str, ...] = ("vector", "keyword", "hybrid")
INDEX_TYPES: tuple[str, ...] = ("auto", "flat", "hnsw", "hnsw-sq8", "ivf", "ivf-sq8")
