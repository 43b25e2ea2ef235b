"""Pipelining: indexing through the Ollama-protocol test server with a fixed cost per text.

The server (tests/ollama_server.py, run by benchmarks/_server.py in its own process) spends
`--delay` seconds per text in its single model slot and nothing else, so the embedder's own
time is texts × delay. The ratio wall ÷ (texts × delay) shows how much of extraction, chunking,
HTTP, SQLite and FAISS work stays outside the embedder's time: 1.0 is perfect overlap.

    python benchmarks/bench_pipeline.py [--files 10000] [--delay 0.002] [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import CACHE, TestServer, emit, machine, median, table  # noqa: E402
from _corpus import write_notes  # noqa: E402

from semsearch import Index  # noqa: E402
from semsearch.embed import make_embedder  # noqa: E402
from semsearch.ingest import DEFAULT_BATCH_TEXTS, DEFAULT_IN_FLIGHT  # noqa: E402

REFERENCE_TEXTS = 64 * 160


def embedder_alone(url: str, texts: list[str]) -> float:
    """Seconds per text when the embedder is kept as busy as the indexer can keep it (the same
    batch size and requests in flight) and nothing else happens: the server's real throughput."""
    embedder = make_embedder("qwen3-embedding:0.6b", host=url)
    embedder.embed(["warm up"], "document")
    batches = [texts[i : i + DEFAULT_BATCH_TEXTS] for i in range(0, len(texts), DEFAULT_BATCH_TEXTS)]
    started = time.perf_counter()
    with ThreadPoolExecutor(DEFAULT_IN_FLIGHT) as pool:
        list(pool.map(lambda batch: embedder.embed(batch, "document"), batches))
    seconds = time.perf_counter() - started
    embedder.close()
    return seconds / len(texts)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--delay", type=float, default=0.002, help="seconds per text in the model slot")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    info = machine()
    folder = write_notes(CACHE / "notes" / f"{args.files}", args.files)
    runs = []
    with TestServer(args.delay) as server:
        for _ in range(args.repeats):
            target = CACHE / "pipeline-index"
            shutil.rmtree(target, ignore_errors=True)
            started, cpu = time.perf_counter(), _cpu_seconds()
            with Index.open(target, model="qwen3-embedding:0.6b", ollama_host=server.url) as index:
                report = index.index([folder])
            wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
            embedder_time = report.chunks_embedded * args.delay
            texts = [path.read_text(encoding="utf-8") for path in sorted(folder.rglob("*.md"))]
            per_text = embedder_alone(server.url, (texts * (REFERENCE_TEXTS // len(texts) + 1))[:REFERENCE_TEXTS])
            runs.append({"wall_s": wall, "texts": report.chunks_embedded, "embedder_s": embedder_time,
                         "ratio": wall / embedder_time, "indexer_cpu_s": cpu,
                         "embedder_alone_s": per_text * report.chunks_embedded,
                         "ratio_to_embedder_alone": wall / (per_text * report.chunks_embedded)})
            print(runs[-1], file=sys.stderr, flush=True)
    result = {"benchmark": "pipelining", "machine": info, "files": args.files, "delay_per_text_s": args.delay,
              "runs": runs, "median_ratio": median(r["ratio"] for r in runs),
              "median_ratio_to_embedder_alone": median(r["ratio_to_embedder_alone"] for r in runs)}
    rows = [[i + 1, r["texts"], f"{r['embedder_s']:.1f}", f"{r['embedder_alone_s']:.1f}", f"{r['wall_s']:.1f}",
             f"{r['ratio']:.3f}", f"{r['ratio_to_embedder_alone']:.3f}", f"{r['indexer_cpu_s']:.1f}"]
            for i, r in enumerate(runs)]
    body = (
        f"The {args.files:,}-note folder indexed from scratch through the Ollama-protocol test server in its own "
        f"process, which spends {args.delay * 1000:g} ms per text in its single model slot (vectors are free "
        "otherwise). Wall time of `Index.open` + `index()` against the embedder's own time, texts × delay. "
        f"Reference measured in the same run: the same server kept busy by a bare loop ({REFERENCE_TEXTS:,} note "
        f"texts, {DEFAULT_BATCH_TEXTS} per request, {DEFAULT_IN_FLIGHT} in flight, nothing else), scaled to the "
        "texts indexed — what the server really delivers on this machine. Indexer CPU: CPU time of the indexing "
        "process, all threads.\n\n"
        f"**Median wall ÷ (texts × delay): {result['median_ratio']:.3f}; wall ÷ embedder alone: "
        f"{result['median_ratio_to_embedder_alone']:.3f}**\n\n"
        + table(["run", "texts embedded", "texts × delay s", "embedder alone s", "wall s", "wall ÷ (texts × delay)",
                 "wall ÷ embedder alone", "indexer CPU s"], rows)
    )
    emit("Pipelined indexing", result, body)


if __name__ == "__main__":
    main()
