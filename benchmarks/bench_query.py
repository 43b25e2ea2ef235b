"""Query latency, recall and memory per FAISS index type, beside raw FAISS on the same index.

For each case (stored vectors × dimensions) the script writes synthetic clustered unit vectors
straight into an index's SQLite store (no embedding), then for each index type converts the
index with `Index.rebuild(index_type=...)` and measures, with one query at a time:

- p50/p95 of the library's `Index.search_vector()` (FAISS search + SQLite join into Hits) and of
  raw `faiss.Index.search()` on the very same index object and parameters, interleaved;
- recall@10 of the library's hits against exact search;
- a sweep of efSearch / nprobe (raw FAISS) that justifies the defaults;
- RSS of a fresh process after opening the index and answering one query, and bytes on disk.

Data: vectors are drawn around 2,000 random centres with isotropic noise as large as the
centres' spread, then normalised (embeddings of real text are clustered, not uniform); queries
come from the same distribution but are not stored vectors.

    python benchmarks/bench_query.py                       # 100k×384, 100k×1024, 1M×384
    python benchmarks/bench_query.py --cases 100000x384 --types flat,hnsw

Artefacts live under $SEMSEARCH_BENCH_CACHE (default /work/bench-cache); the last type built
for each case is `auto`'s choice, so the cold-start benchmark can search the 1M index as is.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import CACHE, emit, machine, median, percentile, table  # noqa: E402

from semsearch import Index  # noqa: E402
from semsearch.embed import EmbedderInfo, preset_for_model  # noqa: E402
from semsearch.store import DB_NAME, NewDocument, Store  # noqa: E402
from semsearch.types import Chunk  # noqa: E402
from semsearch.vectors import FAISS_NAME, SearchTuning, resolve_index_type  # noqa: E402

MODEL = "qwen3-embedding:0.6b"  # what the stored vectors claim to be; the test server serves it
CENTRES = 2000
CHUNKS_PER_DOCUMENT = 50
SWEEP = {"hnsw": ("ef_search", (16, 32, 64, 128)), "ivf": ("nprobe", (16, 32, 64, 128))}


class RecordedEmbedder:
    """Describes the stored vectors' model so the index records it; never asked to embed."""

    def __init__(self, dimensions: int):
        self.dimensions = dimensions

    def info(self) -> EmbedderInfo:
        return EmbedderInfo("ollama", MODEL, self.dimensions, 32768, preset_for_model(MODEL))

    def embed(self, texts, kind):  # pragma: no cover - never called
        raise AssertionError("the query benchmark never embeds")


def clustered(count: int, dimensions: int, seed: int) -> np.ndarray:
    centres = np.random.default_rng(12345 + dimensions).standard_normal((CENTRES, dimensions), dtype=np.float32)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, CENTRES, count)] + rng.standard_normal((count, dimensions), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def populate(path: Path, count: int, dimensions: int) -> float:
    """Create the index at `path` holding `count` synthetic vectors (reused when already there)."""
    if (path / DB_NAME).exists():
        store = Store(path / DB_NAME)
        try:
            if store.counts()[1] == count:
                return 0.0
        finally:
            store.close()
        raise SystemExit(f"{path} holds another data set; delete it first")
    started = time.perf_counter()
    with Index.open(path, embedder=RecordedEmbedder(dimensions), index_type="flat") as index:
        index.add_texts([])  # records the embedder and settings
    store = Store(path / DB_NAME)
    written, batch_docs = 0, 100
    while written < count:
        documents = []
        for _ in range(batch_docs):
            n = min(CHUNKS_PER_DOCUMENT, count - written)
            if n <= 0:
                break
            vectors = clustered(n, dimensions, seed=written)
            chunks = tuple(Chunk(i, f"synthetic passage {written + i}", 0, 20, i + 1, i + 1) for i in range(n))
            documents.append(NewDocument(
                path=f"doc{written // CHUNKS_PER_DOCUMENT:07d}.md", kind="file", size=0,
                mtime_ns=0, sha256="", title="", extractor="synthetic", metadata={}, chunks=chunks,
                text_hashes=tuple(f"h{written + i}" for i in range(n)), vectors=vectors))
            written += n
        store.write_documents(documents)
    store.close()
    return time.perf_counter() - started


def exact_neighbours(path: Path, queries: np.ndarray, k: int) -> np.ndarray:
    store = Store(path / DB_NAME)
    flat = faiss.IndexIDMap(faiss.IndexFlatIP(queries.shape[1]))
    for ids, vectors in store.iter_vectors():
        flat.add_with_ids(vectors, ids)
    store.close()
    return flat.search(queries, k)[1]


def recall(found: list[np.ndarray], truth: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(f[:k].tolist()) & set(t[:k].tolist())) / k for f, t in zip(found, truth)]))


def measure(path: Path, queries: np.ndarray, truth: np.ndarray, repeats: int) -> dict:
    faiss.omp_set_num_threads(1)  # one query at a time, as an interactive search runs
    with Index.open(path, create=False) as index:
        vectors = index.vectors()
        raw, params = vectors._index, vectors._params(10, None, SearchTuning())
        index.search_vector(queries[0], k=10)  # warm the page cache and the SQLite statement cache
        library_p50, library_p95, raw_p50, raw_p95, found = [], [], [], [], []
        for _ in range(repeats):
            lib_times, raw_times, found = [], [], []
            for q in queries:
                t0 = time.perf_counter()
                hits = index.search_vector(q, k=10)
                t1 = time.perf_counter()
                raw.search(q.reshape(1, -1), 10, params=params)
                t2 = time.perf_counter()
                lib_times.append(t1 - t0)
                raw_times.append(t2 - t1)
                found.append(np.array([h.chunk_id for h in hits]))
            library_p50.append(percentile(lib_times, 50))
            library_p95.append(percentile(lib_times, 95))
            raw_p50.append(percentile(raw_times, 50))
            raw_p95.append(percentile(raw_times, 95))
        sweep = {}
        family = vectors.kind.removesuffix("-sq8")
        if family in SWEEP:
            name, values = SWEEP[family]
            for value in values:
                p = vectors._params(10, None, SearchTuning(**{name: value}))
                times, ids = [], []
                for q in queries:
                    t0 = time.perf_counter()
                    ids.append(raw.search(q.reshape(1, -1), 10, params=p)[1][0])
                    times.append(time.perf_counter() - t0)
                sweep[f"{name}={value}"] = {"p50_ms": round(percentile(times, 50) * 1e3, 3),
                                            "recall_at_10": round(recall(ids, truth, 10), 4)}
        kind = vectors.kind
    return {
        "type": kind, "library_p50_ms": median(library_p50) * 1e3, "library_p95_ms": median(library_p95) * 1e3,
        "raw_faiss_p50_ms": median(raw_p50) * 1e3, "raw_faiss_p95_ms": median(raw_p95) * 1e3,
        "recall_at_10": recall(found, truth, 10), "sweep": sweep,
    }


_RSS_PROBE = """
import sys, numpy as np
sys.path.insert(0, {bench!r})
from _common import rss_bytes
import faiss, semsearch.index, semsearch.search
from semsearch import Index
before = rss_bytes()
with Index.open({path!r}, create=False) as index:
    index.search_vector(np.ones({dims}, np.float32), k=10)
    print(before, rss_bytes())
"""


def memory(path: Path, dimensions: int) -> dict:
    """RSS growth of a fresh process that opens the index and answers one query; bytes on disk."""
    code = _RSS_PROBE.format(bench=str(Path(__file__).parent), path=str(path), dims=dimensions)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    before, after = int(out[0]), int(out[1])
    return {"rss_open_mib": (after - before) / 2**20, "faiss_bytes": (path / FAISS_NAME).stat().st_size,
            "db_bytes": (path / DB_NAME).stat().st_size}


def run_case(count: int, dimensions: int, types: list[str], queries_n: int, repeats: int, reuse: bool) -> dict:
    path = CACHE / "query" / f"{count}x{dimensions}"
    path.parent.mkdir(parents=True, exist_ok=True)
    populate_s = populate(path, count, dimensions)
    queries = clustered(queries_n, dimensions, seed=10**9 + 7)
    truth = exact_neighbours(path, queries, 10)
    auto_type = resolve_index_type("auto", count, dimensions)
    order = [t for t in types if t != auto_type] + ([auto_type] if auto_type in types else [])
    rows = []
    for kind in order:
        started = time.perf_counter()
        faiss.omp_set_num_threads(2)
        with Index.open(path, create=False) as index:
            if reuse and index.status().faiss_type == kind and index.status().in_sync:
                build_s = None  # measured as built by an earlier run
            else:
                index.rebuild(index_type="auto" if kind == auto_type else kind)
                build_s = time.perf_counter() - started
        result = measure(path, queries, truth, repeats)
        result.update(memory(path, dimensions), build_s=build_s, auto=kind == auto_type)
        rows.append(result)
        print(f"{count}x{dimensions} {kind}: {result}", file=sys.stderr, flush=True)
    return {"vectors": count, "dimensions": dimensions, "queries": queries_n, "repeats": repeats,
            "populate_s": populate_s, "auto_type": auto_type, "types": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="100000x384,100000x1024,1000000x384")
    parser.add_argument("--types", default="flat,ivf,ivf-sq8,hnsw-sq8,hnsw")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="measure an index already of the type, unbuilt")
    parser.add_argument("--section", default="Query latency and recall per index type",
                        help="RESULTS.md section to write (memory goes to 'Memory and disk: SECTION' when set)")
    args = parser.parse_args()
    started_on = machine()
    cases = [tuple(int(x) for x in case.split("x")) for case in args.cases.split(",")]
    results = [run_case(n, d, args.types.split(","), args.queries, args.repeats, args.reuse) for n, d in cases]
    data = {"benchmark": "query", "machine": started_on, "cases": results}
    rows, memory_rows, sweeps = [], [], []
    for case in results:
        for r in case["types"]:
            name = r["type"] + (" (auto)" if r["auto"] else "")
            ratio = r["library_p50_ms"] / r["raw_faiss_p50_ms"]
            rows.append([f"{case['vectors']:,}×{case['dimensions']}", name, f"{r['library_p50_ms']:.3f}",
                         f"{r['library_p95_ms']:.3f}", f"{r['raw_faiss_p50_ms']:.3f}", f"{r['raw_faiss_p95_ms']:.3f}",
                         f"{ratio:.3f}", f"{r['library_p50_ms'] - r['raw_faiss_p50_ms']:.3f}",
                         f"{r['recall_at_10']:.4f}", "reused" if r["build_s"] is None else f"{r['build_s']:.1f}"])
            memory_rows.append([f"{case['vectors']:,}×{case['dimensions']}", name, f"{r['rss_open_mib']:.1f}",
                                f"{r['faiss_bytes'] / case['vectors']:.0f}", f"{r['db_bytes'] / case['vectors']:.0f}"])
            for setting, s in r["sweep"].items():
                sweeps.append([f"{case['vectors']:,}×{case['dimensions']}", r["type"], setting, s["p50_ms"],
                               s["recall_at_10"]])
    body = (
        f"{results[0]['queries']} queries, one at a time, {results[0]['repeats']} repeats (medians of the per-run "
        "p50/p95). Library = `Index.search_vector()` (FAISS + SQLite join into hits); raw = `faiss.Index.search()` on "
        "the same index object and parameters, interleaved query by query. Recall@10 of the library's hits against "
        "exact search. Clustered synthetic unit vectors (2,000 centres, noise as wide as their spread).\n\n"
        + table(["vectors", "type", "library p50 ms", "library p95 ms", "raw p50 ms", "raw p95 ms",
                 "library ÷ raw (p50)", "library − raw ms", "recall@10", "build s"], rows)
        + "\n\nSearch-parameter sweep (raw FAISS, p50 ms and recall@10):\n\n"
        + table(["vectors", "type", "setting", "p50 ms", "recall@10"], sweeps)
    )
    default_section = parser.get_default("section")
    emit(args.section, data, body)
    mem_body = (
        "RSS growth of a fresh process from before `Index.open()` to after its first answer (flat and HNSW files "
        "are memory-mapped, so only touched pages count); bytes on disk per stored vector (chunk).\n\n"
        + table(["vectors", "type", "RSS after open + 1 query MiB", "vectors.faiss bytes/chunk",
                 "semsearch.db bytes/chunk"], memory_rows)
    )
    memory_section = ("Memory and disk per index type" if args.section == default_section
                      else f"Memory and disk: {args.section}")
    emit(memory_section, {"benchmark": "memory", "machine": data["machine"], "rows": memory_rows}, mem_body)


if __name__ == "__main__":
    main()
