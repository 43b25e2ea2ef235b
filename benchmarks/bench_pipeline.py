"""Pipelining: indexing through the Ollama-protocol test server with a fixed cost per text.

The server (tests/ollama_server.py, run by benchmarks/_server.py in its own process) spends
`--delay` seconds per text in its single model slot and nothing else, so the embedder's own
time is texts × delay. The ratio wall ÷ (texts × delay) shows how much of extraction, chunking,
HTTP, SQLite and FAISS work stays outside the embedder's time: 1.0 is perfect overlap.

    python benchmarks/bench_pipeline.py [--files 10000] [--delay 0.002] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import CACHE, TestServer, emit, machine, median, table  # noqa: E402
from _corpus import write_notes  # noqa: E402

from semsearch import Index  # noqa: E402


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
            started = time.perf_counter()
            with Index.open(target, model="qwen3-embedding:0.6b", ollama_host=server.url) as index:
                report = index.index([folder])
            wall = time.perf_counter() - started
            embedder_time = report.chunks_embedded * args.delay
            runs.append({"wall_s": wall, "texts": report.chunks_embedded, "embedder_s": embedder_time,
                         "ratio": wall / embedder_time})
            print(runs[-1], file=sys.stderr, flush=True)
    result = {"benchmark": "pipelining", "machine": info, "files": args.files, "delay_per_text_s": args.delay,
              "runs": runs, "median_ratio": median(r["ratio"] for r in runs)}
    rows = [[i + 1, r["texts"], f"{r['embedder_s']:.1f}", f"{r['wall_s']:.1f}", f"{r['ratio']:.3f}"]
            for i, r in enumerate(runs)]
    body = (
        f"The {args.files:,}-note folder indexed from scratch through the Ollama-protocol test server in its own "
        f"process, which spends {args.delay * 1000:g} ms per text in its single model slot (vectors are free "
        "otherwise). Wall time of `Index.open` + `index()` against the embedder's own time, texts × delay.\n\n"
        f"**Median wall ÷ embedder time: {result['median_ratio']:.3f}**\n\n"
        + table(["run", "texts embedded", "embedder s", "wall s", "wall ÷ embedder"], rows)
    )
    emit("Pipelined indexing", result, body)


if __name__ == "__main__":
    main()
