"""Vector stores side by side: the local FAISS store vs milvus-lite over gRPC, in one run.

For each size (N × 384 seeded random unit vectors: by default clustered as bench_query.py draws
them, since embeddings of real text are clustered; `--data uniform` for uniform on the sphere)
the script fills and queries:

- the local store's FAISS index, `semsearch.vectors.VectorIndex`, as the product builds it
  (`flat`, and `hnsw` with the product's M / efConstruction / efSearch);
- a milvus-lite gRPC server the script starts on a free port
  (`milvus-lite server --data-dir DIR --host 127.0.0.1 --port P`), one collection per index type:
  `FLAT` (milvus-lite's exact NumPy scan) and `HNSW` with the same M / efConstruction / ef.

and measures, per store and index type:

- ingest rate (vectors/s): batched adds (`--batch` vectors per call, the Milvus store's batch)
  until the data is durable — local: `VectorIndex.add` per batch, then the atomic `save()`;
  Milvus: `upsert` per batch (as the store sends rows), then `flush`. "Indexed" is the time until the server's
  background work after the flush (segment compaction and per-segment index builds) is done, i.e.
  until searches run on indexes rather than raw segments; the collection is then released and
  loaded again so every segment answers from its index file;
- query latency p50/p95 over `--queries` queries, one at a time, the four configurations
  interleaved query by query so the shared machine's load falls on all of them alike
  (local: `VectorIndex.search` in this process, one FAISS thread; Milvus: a `search` RPC);
- recall@10 against exact search (FAISS `IndexFlatIP` over all vectors).

The collection is the Milvus store's (semsearch/stores/milvus.py) field for field — chunk id
under a ledger prefix, vector, text, keyword terms feeding a BM25 function, path, part, lines,
size, mtime, metadata and details — filled with short synthetic texts, because a write through
the store pays for those fields too; rows go in as the store sends them (upserts of 500) and
searches carry its parameters. It is written out here rather than imported so that the benchmark
measures Milvus, not the ledger, and runs on a checkout without an index. One deliberate
difference: the HNSW build parameters are sent both as pymilvus 3 sends them (flat key/value
pairs) and in the older nested `params` form, because milvus-lite 3.2 reads only the nested one
and would otherwise build M 16 / efConstruction 200 instead of the product's values.

milvus-lite is a pure-Python engine over FAISS (per-segment indexes of at most 100k rows), not
Milvus's C++ engine (Knowhere): its figures show the client path's cost at these sizes, not what
a Milvus server does. Ratios against the local store in the same run are the result; absolute
times on this shared machine are not claims.

    python benchmarks/bench_store.py                         # 100k and 1M × 384
    python benchmarks/bench_store.py --sizes 100000 --queries 200
    python benchmarks/bench_store.py --sizes 100000,1000000:flat    # HNSW at 100k only

Needs the `milvus` extra (`pip install pymilvus milvus-lite`). Data lives under
$SEMSEARCH_BENCH_CACHE/store (default /work/bench-cache) and is rebuilt on every run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import CACHE, emit, machine, median, percentile, table  # noqa: E402
from bench_query import clustered  # noqa: E402

from semsearch.vectors import DEFAULT_EF_SEARCH, DEFAULT_NPROBE, HNSW_EF_CONSTRUCTION, HNSW_M, VectorIndex  # noqa: E402
from tests.milvus_fixture import MilvusLiteServer  # noqa: E402

DIMENSIONS = 384
TYPES = ("flat", "hnsw")
_HNSW_BUILD = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}
# pymilvus 3 sends index parameters as flat key/value pairs, which milvus-lite 3.2 ignores (it
# reads only a JSON `params` pair, the older wire form, and would build M 16 / efConstruction 200);
# Milvus servers read both forms, so both are sent.
MILVUS_INDEX = {"flat": ("FLAT", {}), "hnsw": ("HNSW", _HNSW_BUILD)}  # the store nests them for milvus-lite
MILVUS_SEARCH = {"ef": DEFAULT_EF_SEARCH, "nprobe": DEFAULT_NPROBE}  # as the store sends them
LEDGER = "0123456789ab"  # the per-ledger prefix of chunk ids, as the store draws one
BATCH = 500  # rows per upsert, the store's SEND_BATCH


def unit_vectors(count: int, seed: int, data: str = "clustered", dimensions: int = DIMENSIONS) -> np.ndarray:
    if data == "clustered":
        return clustered(count, dimensions, seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((count, dimensions), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def exact_neighbours(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    flat = faiss.IndexFlatIP(data.shape[1])
    flat.add(data)
    return flat.search(queries, k)[1]


def recall(found: list[np.ndarray], truth: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(f[:k].tolist()) & set(t[:k].tolist())) / k for f, t in zip(found, truth)]))


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# -- the local store ---------------------------------------------------------------------------

def ingest_local(kind: str, data: np.ndarray, batch: int, directory: Path) -> tuple[VectorIndex, dict]:
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # as `semsearch index` adds: all cores
    index = VectorIndex(data.shape[1], kind)
    started = time.perf_counter()
    for start in range(0, len(data), batch):
        ids = np.arange(start, min(start + batch, len(data)), dtype=np.int64)
        index.add(ids, data[start:start + batch])
    added = time.perf_counter() - started
    index.save(directory / f"{kind}.faiss")
    durable = time.perf_counter() - started
    return index, {"add_s": added, "durable_s": durable, "indexed_s": durable}


# -- milvus-lite -------------------------------------------------------------------------------

class BenchServer(MilvusLiteServer):
    """The tests' milvus-lite server, with what the benchmark reads of its process."""

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, window: float = 1.0, busy: float = 0.05) -> float:
        """When the server's background work (segment compaction, index builds) finished: the
        start of the first `window` in which it used less than `busy` of a core."""
        while True:
            start, used = time.perf_counter(), self.cpu_seconds()
            time.sleep(window)
            if self.cpu_seconds() - used < busy * window:
                return start

    def rss_mib(self) -> float:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0


def create_collection(client, name: str, kind: str, dimensions: int) -> None:
    """The Milvus store's own collection (`semsearch.stores.milvus.create_collection`)."""
    from semsearch.stores.milvus import create_collection as store_collection

    store_collection(client, name, dimensions, MILVUS_INDEX[kind])


def rows(data: np.ndarray, start: int, stop: int) -> list[dict]:
    """Rows shaped as the Milvus store sends them, with short synthetic texts."""
    return [{"id": f"{LEDGER}-{i}", "ledger": LEDGER, "chunk": i, "document": i // 50,
             "vector": [float(x) for x in data[i]], "text": f"synthetic passage {i} of the store benchmark",
             "keywords": f"synthet passag {i} store benchmark", "terms": 5, "path": f"docs/doc{i // 50:06d}.md", "kind": "file",
             "part": -1, "part_kind": "", "line_start": i % 50 + 1, "line_end": i % 50 + 1, "size": 4096,
             "mtime": 1.7e9, "metadata": {"n": i % 7},
             "details": {"title": "", "heading_path": [], "char_start": 0, "char_end": 44, "ordinal": i % 50}}
            for i in range(start, stop)]


def ingest_milvus(server: BenchServer, client, name: str, kind: str, data: np.ndarray, batch: int) -> dict:
    create_collection(client, name, kind, data.shape[1])
    started = time.perf_counter()
    for start in range(0, len(data), batch):
        client.upsert(name, rows(data, start, min(start + batch, len(data))))
    added = time.perf_counter() - started
    client.flush(name)
    durable = time.perf_counter() - started
    indexed = server.wait_idle() - started
    # milvus-lite writes a segment's index file in place from its background worker, and a
    # `load` that meets a half-written file fails; once the server is idle every file is whole.
    client.release_collection(name)
    client.load_collection(name)
    count = client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]
    if count != len(data):
        raise SystemExit(f"milvus-lite holds {count} rows of {len(data)}")
    return {"add_s": added, "durable_s": durable, "indexed_s": indexed}


# -- one size ----------------------------------------------------------------------------------

def run_size(count: int, queries_n: int, batch: int, repeats: int, types: list[str], kind_of_data: str) -> dict:
    root = CACHE / "store" / f"{count}x{DIMENSIONS}"
    shutil.rmtree(root, ignore_errors=True)
    (root / "local").mkdir(parents=True)
    (root / "milvus").mkdir()
    data = unit_vectors(count, count, kind_of_data)
    queries = unit_vectors(queries_n, 10**9 + 7, kind_of_data)
    truth = exact_neighbours(data, queries, 10)
    configs, ingest = {}, {}
    for kind in types:
        load_before = load_average()
        index, timing = ingest_local(kind, data, batch, root / "local")
        timing.update(load_before=load_before, load_after=load_average())
        configs[("local", kind)], ingest[("local", kind)] = index, timing
        print(f"{count} local {kind}: {timing}", file=sys.stderr, flush=True)
    server = BenchServer(root / "milvus").start()
    try:
        client = server.client()
        for kind in types:
            load_before = load_average()
            timing = ingest_milvus(server, client, f"bench_{kind}", kind, data, batch)
            timing.update(load_before=load_before, load_after=load_average())
            configs[("milvus", kind)], ingest[("milvus", kind)] = f"bench_{kind}", timing
            print(f"{count} milvus {kind}: {timing}", file=sys.stderr, flush=True)
        server_rss = server.rss_mib()
        query_results = measure_queries(client, configs, queries, truth, repeats)
        client.close()
    finally:
        server.stop()
    rows_out = []
    for (store, kind) in configs:
        timing, q = ingest[(store, kind)], query_results[(store, kind)]
        rows_out.append({"store": store, "type": kind, **timing,
                         "add_rate": count / timing["add_s"], "durable_rate": count / timing["durable_s"],
                         "indexed_rate": count / timing["indexed_s"], **q})
    return {"vectors": count, "dimensions": DIMENSIONS, "queries": queries_n, "repeats": repeats, "batch": batch,
            "milvus_server_rss_mib": round(server_rss, 1), "rows": rows_out}


def measure_queries(client, configs: dict, queries: np.ndarray, truth: np.ndarray, repeats: int) -> dict:
    faiss.omp_set_num_threads(1)  # one query at a time, as an interactive search runs
    prefix = len(LEDGER) + 1

    def ask(key, q):
        store, kind = key
        if store == "local":
            return configs[key].search(q, 10)[1]
        hits = client.search(configs[key], data=[q.tolist()], anns_field="vector", limit=10,
                             search_params={"metric_type": "IP", "params": MILVUS_SEARCH})[0]
        return np.array([int(h["id"][prefix:]) for h in hits], dtype=np.int64)

    for key in configs:  # warm caches and connections
        ask(key, queries[0])
    p50 = {key: [] for key in configs}
    p95 = {key: [] for key in configs}
    found = {key: [] for key in configs}
    for _ in range(repeats):
        times = {key: [] for key in configs}
        found = {key: [] for key in configs}
        for q in queries:
            for key in configs:
                started = time.perf_counter()
                ids = ask(key, q)
                times[key].append(time.perf_counter() - started)
                found[key].append(ids)
        for key in configs:
            p50[key].append(percentile(times[key], 50))
            p95[key].append(percentile(times[key], 95))
    return {key: {"p50_ms": median(p50[key]) * 1e3, "p95_ms": median(p95[key]) * 1e3,
                  "recall_at_10": recall(found[key], truth, 10)} for key in configs}


# -- report ------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000",
                        help="comma-separated vector counts, each optionally with its own index types: 1000000:flat (or :flat+hnsw)")
    parser.add_argument("--types", default=",".join(TYPES), help="index types for sizes without their own")
    parser.add_argument("--queries", type=int, default=200, help="queries per size, asked one at a time")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the queries (medians of their p50/p95)")
    parser.add_argument("--batch", type=int, default=BATCH, help="vectors per add/upsert call")
    parser.add_argument("--data", choices=("clustered", "uniform"), default="clustered",
                        help="clustered around 2,000 random centres (as bench_query.py) or uniform on the sphere")
    args = parser.parse_args()
    try:
        import milvus_lite
        import pymilvus
    except ImportError:
        raise SystemExit("needs the milvus extra: pip install 'semsearch[milvus]' (pymilvus, milvus-lite)")
    info = machine()

    info.update(pymilvus=pymilvus.__version__, milvus_lite=getattr(milvus_lite, "__version__", "?"))
    sizes = []
    for spec in args.sizes.split(","):
        count, _, types = spec.partition(":")
        sizes.append((int(count), (types or args.types).split("+" if types else ",")))
    results = []
    for count, types in sizes:  # the section is rewritten after each size, so a stopped run keeps its sizes
        results.append(run_size(count, args.queries, args.batch, args.repeats, types, args.data))
        info["load_average_1m_end"] = load_average()
        data = {"benchmark": "store", "machine": info, "data": args.data, "sizes": results}
        print(render(data), file=sys.stderr)
        emit("Stores: local FAISS vs milvus-lite", data, render(data))


def render(data: dict) -> str:
    info = data["machine"]
    main_rows, ratio_rows = [], []
    for size in data["sizes"]:
        by = {(r["store"], r["type"]): r for r in size["rows"]}
        label = f"{size['vectors']:,}×{size['dimensions']}"
        for r in size["rows"]:
            main_rows.append([label, "local FAISS" if r["store"] == "local" else "milvus-lite", r["type"],
                              f"{r['durable_rate']:,.0f}", f"{r['indexed_rate']:,.0f}", f"{r['p50_ms']:.2f}",
                              f"{r['p95_ms']:.2f}", f"{r['recall_at_10']:.3f}",
                              f"{r['load_before']}→{r['load_after']}"])
        for kind in {r["type"]: None for r in size["rows"]}:
            if ("local", kind) in by and ("milvus", kind) in by:
                lo, mi = by[("local", kind)], by[("milvus", kind)]
                ratio_rows.append([label, kind, f"{mi['indexed_s'] / lo['indexed_s']:.1f}",
                                   f"{mi['durable_s'] / lo['durable_s']:.1f}", f"{mi['p50_ms'] / lo['p50_ms']:.1f}",
                                   f"{mi['p95_ms'] / lo['p95_ms']:.1f}",
                                   f"{mi['recall_at_10'] - lo['recall_at_10']:+.3f}"])
    first = data["sizes"][0]
    return (
        _header(info, data, first)
        + table(["vectors", "store", "type", "ingest vectors/s (durable)", "ingest vectors/s (indexed)",
                 "query p50 ms", "query p95 ms", "recall@10", "load avg"], main_rows)
        + "\n\nmilvus-lite ÷ local FAISS in the same run (time ratios: above 1 = milvus-lite slower):\n\n"
        + table(["vectors", "type", "ingest time (indexed)", "ingest time (durable)", "query p50", "query p95",
                 "recall@10 difference"], ratio_rows)
        + _skipped(data)
    )


def _skipped(data: dict) -> str:
    """For sizes run without some index types: what those would take at the rates of the largest
    size that had them (a lower bound: HNSW builds grow faster than linearly)."""
    notes = []
    for size in data["sizes"]:
        ran = {(r["store"], r["type"]) for r in size["rows"]}
        for kind in TYPES:
            if ("local", kind) in ran:
                continue
            measured = [s for s in data["sizes"] if s["vectors"] < size["vectors"]
                        and any(r["type"] == kind for r in s["rows"])]
            if not measured:
                continue
            reference = max(measured, key=lambda s: s["vectors"])
            rates = {r["store"]: r["indexed_rate"] for r in reference["rows"] if r["type"] == kind}
            minutes = {store: size["vectors"] / rate / 60 for store, rate in rates.items()}
            notes.append(f"{kind} at {size['vectors']:,} was not run: at the {reference['vectors']:,} rates its "
                         f"ingest alone would take at least {minutes.get('local', 0):.0f} min (local) and "
                         f"{minutes.get('milvus', 0):.0f} min (milvus-lite) on this machine.")
    return ("\n\n" + " ".join(notes)) if notes else ""


def _header(info: dict, data: dict, first: dict) -> str:
    return (
        f"pymilvus {info['pymilvus']}, milvus-lite {info['milvus_lite']}; load average "
        f"{info['load_average_1m']} at start, {info['load_average_1m_end']} at end. Seeded random unit vectors, "
        + ("clustered (2,000 centres, noise as wide as their spread, as in bench_query.py)"
           if data.get("data", "clustered") == "clustered" else "uniform on the sphere (the hardest case for HNSW)")
        + f"; {first['queries']} queries one at a time, "
        f"the configurations of a size interleaved query by query; p50/p95 over the queries"
        + (f", medians of {first['repeats']} runs" if first["repeats"] > 1 else "")
        + f"; writes in batches of {first['batch']:,}. Local = `VectorIndex` in-process (add + atomic save); "
        "milvus-lite = a `milvus-lite server` over gRPC on 127.0.0.1, the Milvus store's collection and row "
        "shape (upsert + flush; *indexed* adds the wait "
        "until its background compaction and segment index builds are done). HNSW on both sides: "
        f"M {HNSW_M}, efConstruction {HNSW_EF_CONSTRUCTION}, ef {DEFAULT_EF_SEARCH}; milvus-lite `FLAT` is its "
        "NumPy exact scan. Recall@10 against exact search.\n\n"
        "**Caveat: milvus-lite is a pure-Python engine over FAISS, not Milvus's C++ engine (Knowhere); its "
        "figures say nothing about a Milvus server's speed.** They measure the client path (gRPC, row "
        "conversion, the BM25 function on the keyword field, per-segment search) at these sizes.\n\n"
    )


if __name__ == "__main__":
    main()
