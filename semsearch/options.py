"""Fixed names, defaults and the choices the library offers, in a module light enough for `semsearch --help`.

The modules that own these concepts (index.py, store.py, search.py, vectors.py, ingest.py, rerank/)
re-export them; the CLI and `Index` import them from here so that building options, opening an
index and `status` never load FAISS, numpy or an embedder or reranker client.
"""

from __future__ import annotations

from dataclasses import dataclass

from semsearch.errors import ConfigError

DEFAULT_INDEX_DIR = ".semsearch"
DB_NAME = "semsearch.db"
FAISS_NAME = "vectors.faiss"
LOCK_NAME = "write.lock"

SEARCH_MODES: tuple[str, ...] = ("vector", "keyword", "hybrid")
# Hybrid fuses both lists, weighing each per query (fusion.py), and never scored below the
# better of its parts in benchmarks/RESULTS.md, so a user need not know which mode suits the data.
DEFAULT_SEARCH_MODE = "hybrid"
INDEX_TYPES: tuple[str, ...] = ("auto", "flat", "hnsw", "hnsw-sq8", "ivf", "ivf-sq8")

# How many texts to collect before embedding and committing; a batch is the unit of work lost
# on a crash and the unit of progress shown.
DEFAULT_BATCH_TEXTS = 64

# Reranking: candidates rescored, requests in flight to Ollama, seconds per request, the default
# Ollama reranker, and the environment variable holding a /v1/rerank server's bearer token.
DEFAULT_RERANK_TOP = 40
DEFAULT_RERANK_CONCURRENCY = 4
DEFAULT_RERANK_TIMEOUT = 60.0
DEFAULT_RERANK_MODEL = "dengcao/Qwen3-Reranker-0.6B:Q8_0"
RERANK_API_KEY_ENV = "SEMSEARCH_RERANK_API_KEY"

# `auto` stays exact while one query scans at most this many floats (25k × 1024 or 65k × 384
# vectors). bench_query.py measured flat search at 0.6–1.1 ms per million floats on the shared
# 2-core machine (27 ms at 100k × 384, 114 ms at 100k × 1024), so exact answers stay within
# ~15–25 ms below the threshold, while HNSW answered in under 1 ms with recall@10 ≥ 0.99 above it.
AUTO_FLAT_MAX_ELEMENTS = 25_000_000
AUTO_ANN_TYPE = "hnsw"
# HNSW tombstones beyond this share of the stored vectors (and at least TOMBSTONE_MIN of them)
# trigger a rebuild from SQLite: hidden vectors still cost search time and memory.
TOMBSTONE_LIMIT = 0.10
TOMBSTONE_MIN = 1000


@dataclass(frozen=True)
class ChunkSettings:
    """The chunking parameters recorded in the index (they change results)."""

    max_tokens: int = 400
    overlap_tokens: int = 40
    code: bool = False  # source files cut at function/class boundaries (semsearch.code_chunks)


@dataclass(frozen=True)
class RebuildPolicy:
    """When `auto` leaves exact search and when HNSW tombstones force a rebuild from SQLite.

    The defaults are the measured ones above; a test or a tiny deployment may lower them.
    """

    auto_flat_max_elements: int = AUTO_FLAT_MAX_ELEMENTS
    tombstone_limit: float = TOMBSTONE_LIMIT
    tombstone_min: int = TOMBSTONE_MIN


@dataclass(frozen=True)
class SearchTuning:
    """Speed/recall knobs of approximate search; None keeps the type's default."""

    ef_search: int | None = None  # HNSW: candidate list size (≥ k)
    nprobe: int | None = None  # IVF: inverted lists scanned


def resolve_index_type(requested: str, count: int, dimensions: int, policy: RebuildPolicy = RebuildPolicy()) -> str:
    """The concrete type for a requested one: `auto` depends on the number of vectors."""
    if requested not in INDEX_TYPES:
        raise ConfigError(f"unknown index type {requested!r}: choose one of {', '.join(INDEX_TYPES)}")
    if requested != "auto":
        return requested
    return "flat" if count * dimensions <= policy.auto_flat_max_elements else AUTO_ANN_TYPE

# `semsearch watch`: milliseconds without file-system events that end a batch.
DEFAULT_DEBOUNCE_MS = 300
