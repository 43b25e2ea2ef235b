"""Ingest overhead: indexing generated Markdown with a zero-cost in-process embedder.

Everything but embedding is measured — walking, reading, hashing, extraction, chunking, the
embedding-cache lookup, SQLite writes (rows + FTS) and FAISS updates — as chunks per second,
beside a reference measured in the same run: reading and hashing the same files.

    python benchmarks/bench_ingest.py [--files 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import CACHE, emit, machine, median, table  # noqa: E402
from _corpus import ZeroCostEmbedder, write_notes  # noqa: E402

from semsearch import Index  # noqa: E402


def read_and_hash(folder: Path) -> float:
    started = time.perf_counter()
    for path in sorted(folder.rglob("*.md")):
        hashlib.sha256(path.read_bytes()).hexdigest()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    info = machine()
    folder = write_notes(CACHE / "notes" / f"{args.files}", args.files)
    runs = []
    for _ in range(args.repeats):
        target = CACHE / "ingest-index"
        shutil.rmtree(target, ignore_errors=True)
        embedder = ZeroCostEmbedder()
        with Index.open(target, embedder=embedder) as index:
            report = index.index([folder])
        reference = read_and_hash(folder)
        runs.append({"seconds": report.seconds, "chunks": report.chunks_total, "files": report.files_added,
                     "embedder_calls": embedder.calls, "read_hash_s": reference,
                     "chunks_per_s": report.chunks_total / report.seconds})
        print(runs[-1], file=sys.stderr, flush=True)
    result = {
        "benchmark": "ingest_overhead", "machine": info, "files": args.files, "runs": runs,
        "median_chunks_per_s": median(r["chunks_per_s"] for r in runs),
        "median_seconds": median(r["seconds"] for r in runs),
        "median_read_hash_s": median(r["read_hash_s"] for r in runs),
    }
    result["ratio_to_read_hash"] = result["median_seconds"] / result["median_read_hash_s"]
    rows = [[i + 1, r["files"], r["chunks"], f"{r['seconds']:.2f}", f"{r['chunks_per_s']:.0f}",
             f"{r['read_hash_s']:.2f}"] for i, r in enumerate(runs)]
    body = (
        f"{args.files:,} generated Markdown notes indexed from scratch with an in-process embedder that answers "
        "instantly, so the time is everything but embedding (walk, read, hash, extract, chunk, cache lookup, "
        "SQLite rows + FTS, FAISS). Reference: reading and sha256-hashing the same files in the same run.\n\n"
        f"**Median: {result['median_chunks_per_s']:.0f} chunks/s** ({result['median_seconds']:.2f} s; "
        f"{result['ratio_to_read_hash']:.1f} × the read+hash time of {result['median_read_hash_s']:.2f} s).\n\n"
        + table(["run", "files", "chunks", "seconds", "chunks/s", "read+hash s"], rows)
    )
    emit("Ingest overhead", result, body)


if __name__ == "__main__":
    main()
