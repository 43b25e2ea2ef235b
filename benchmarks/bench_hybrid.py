"""Query latency of the default (hybrid) mode against vector mode on a 100k-chunk index.

The index holds 100,000 chunks of 60 words drawn from a 20,000-word vocabulary with a Zipf
law (as word frequencies in text are: a few very common words — the stopwords — with long FTS5
posting lists, many rare ones), with clustered synthetic unit vectors (as in bench_query.py). Each of the
queries is 3–6 words from the same law plus a synthetic vector the embedder hands back, so
the embedding model's time is left out: what is compared is retrieval, fusion and the join
into hits — all that hybrid adds. Modes are interleaved query by query, one query at a time.

    python benchmarks/bench_hybrid.py [--chunks 100000] [--queries 200]

Prints JSON and rewrites its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import CACHE, emit, machine, percentile, table  # noqa: E402
from bench_query import CHUNKS_PER_DOCUMENT, MODEL, clustered  # noqa: E402

from semsearch import Index  # noqa: E402
from semsearch.embed import EmbedderInfo, preset_for_model  # noqa: E402
from semsearch.snippets import STOPWORDS  # noqa: E402
from semsearch.store import DB_NAME, NewDocument, Store  # noqa: E402
from semsearch.types import Chunk  # noqa: E402

DIMENSIONS = 384
VOCABULARY = 20_000
WORDS_PER_CHUNK = 60


class QueryVectors:
    """Answers each benchmark query with its synthetic vector; never embeds anything else."""

    def __init__(self, vectors: dict[str, np.ndarray]):
        self.vectors = vectors

    def info(self) -> EmbedderInfo:
        return EmbedderInfo("ollama", MODEL, DIMENSIONS, 32768, preset_for_model(MODEL))

    def embed(self, texts, kind):
        return np.stack([self.vectors[t] for t in texts])


# The head of a real word-frequency list is function words; they take the commonest ranks here,
# so a query holds stopwords as real queries do (hybrid leaves them out of its FTS5 query).
HEAD = sorted(word for word in STOPWORDS if word.isascii())


def words(rng: np.random.Generator, count: int) -> list[str]:
    ranks = np.minimum(rng.zipf(1.2, count), VOCABULARY)
    return [HEAD[r - 1] if r <= len(HEAD) else f"w{r}" for r in ranks]


def populate(path: Path, count: int) -> float:
    if (path / DB_NAME).exists():
        return 0.0
    started = time.perf_counter()
    with Index.open(path, embedder=QueryVectors({}), index_type="flat") as index:
        index.add_texts([])
    store = Store(path / DB_NAME)
    rng = np.random.default_rng(7)
    written = 0
    while written < count:
        documents = []
        for _ in range(100):
            n = min(CHUNKS_PER_DOCUMENT, count - written)
            if n <= 0:
                break
            texts = [" ".join(words(rng, WORDS_PER_CHUNK)) for _ in range(n)]
            chunks = tuple(Chunk(i, text, 0, len(text), i + 1, i + 1) for i, text in enumerate(texts))
            documents.append(NewDocument(
                path=f"doc{written // CHUNKS_PER_DOCUMENT:07d}.md", kind="file", size=0, mtime_ns=0, sha256="",
                title="", extractor="synthetic", metadata={}, chunks=chunks,
                text_hashes=tuple(f"h{written + i}" for i in range(n)), vectors=clustered(n, DIMENSIONS, seed=written)))
            written += n
        store.write_documents(documents)
    store.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(1)
    path = CACHE / f"hybrid-{args.chunks}x{DIMENSIONS}-v2"
    built = populate(path, args.chunks)
    rng = np.random.default_rng(11)
    texts = [" ".join(words(rng, int(rng.integers(3, 7)))) + f" q{i}" for i in range(args.queries)]
    vectors = dict(zip(texts, clustered(args.queries, DIMENSIONS, seed=10**9)))
    seconds: dict[str, list[float]] = {"vector": [], "hybrid": []}
    with Index.open(path, embedder=QueryVectors(vectors)) as index:
        for text in texts[:5]:  # warm: FAISS file, SQLite pages
            index.search(text, k=10, mode="hybrid")
        for text in texts:
            for mode in ("vector", "hybrid"):
                started = time.perf_counter()
                index.search(text, k=10, mode=mode)
                seconds[mode].append(time.perf_counter() - started)
    result = {
        "machine": machine(), "chunks": args.chunks, "dimensions": DIMENSIONS, "queries": args.queries,
        "build_s": round(built, 1),
        **{f"{mode}_p{q}_ms": round(percentile(values, q) * 1000, 2) for mode, values in seconds.items() for q in (50, 95)},
    }
    result["hybrid_over_vector_p50"] = round(result["hybrid_p50_ms"] / result["vector_p50_ms"], 3)
    result["hybrid_over_vector_p95"] = round(result["hybrid_p95_ms"] / result["vector_p95_ms"], 3)
    rows = [[mode, result[f"{mode}_p50_ms"], result[f"{mode}_p95_ms"]] for mode in ("vector", "hybrid")]
    body = (f"{args.chunks:,} chunks × {DIMENSIONS} dimensions (flat), {WORDS_PER_CHUNK} Zipf-distributed words each; "
            f"{args.queries} queries of 3–6 words, one at a time, modes interleaved; `Index.search(k=10)` wall "
            "time without the embedding call (the embedder hands back a stored vector).\n\n"
            + table(["mode", "p50 ms", "p95 ms"], rows)
            + f"\n\n**hybrid ÷ vector: p50 {result['hybrid_over_vector_p50']}, p95 {result['hybrid_over_vector_p95']}** "
            "(target ≤ 1.2; with a real embedding model, whose call both modes make, the ratio is closer to 1).")
    emit("Default-mode (hybrid) query latency against vector mode", result, body)


if __name__ == "__main__":
    main()
