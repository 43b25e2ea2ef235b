"""Rerank-stage latency against concurrency, through the Ollama-protocol test server.

The test server's reranker is an emulation (a sigmoid of e5 cosine), so its scores say nothing
about quality; what this measures is the client: how the rerank stage's wall time scales with
`concurrency` when every /api/generate request takes `--delay` seconds (standing in for a
model's per-pair latency on a server with that many parallel slots). The reference is
concurrency 1 in the same run; results are medians and ratios to it.

    python benchmarks/rerank_latency.py [--candidates 40] [--delay 0.05] [--repeats 5] [--write]

Prints JSON; `--write` replaces the "## Rerank latency" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from semsearch.rerank import OllamaReranker  # noqa: E402
from tests.ollama_server import OllamaTestServer  # noqa: E402

SECTION = "## Rerank latency"
QUERY = "how do I brew green tea"
PASSAGES = [
    "Green tea is steeped briefly in water below boiling.",
    "Pour-over coffee needs a gooseneck kettle and a paper filter.",
    "Black tea takes boiling water and a longer steep.",
    "绿茶用八十度左右的水冲泡，时间不宜过长。",
]


def measure(server: OllamaTestServer, candidates: int, concurrency: int, repeats: int) -> list[float]:
    texts = [PASSAGES[i % len(PASSAGES)] for i in range(candidates)]
    times = []
    with OllamaReranker(host=server.url, concurrency=concurrency, timeout=60) as reranker:
        reranker.score(QUERY, texts[: len(PASSAGES)])  # warm connections and the emulation's memo
        for _ in range(repeats):
            started = time.perf_counter()
            reranker.score(QUERY, texts)
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=40)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds per /api/generate request")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--write", action="store_true", help="write the section of benchmarks/RESULTS.md")
    args = parser.parse_args()

    with OllamaTestServer() as server:
        measure(server, len(PASSAGES), 1, 1)
        server.delay = args.delay
        runs = {c: measure(server, args.candidates, c, args.repeats) for c in args.concurrency}
    reference = statistics.median(runs[args.concurrency[0]])
    rows = [{"concurrency": c, "median_s": round(statistics.median(t), 4),
             "ratio_to_reference": round(statistics.median(t) / reference, 3),
             "ideal_ratio": round(max(1, args.concurrency[0]) / c, 3)} for c, t in runs.items()]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    result = {
        "benchmark": "rerank_latency",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
                   f"Python {platform.python_version()}",
        "commit": commit,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "candidates": args.candidates,
        "delay_per_request_s": args.delay,
        "repeats": args.repeats,
        "serial_bound_s": round(args.candidates * args.delay, 3),
        "rows": rows,
    }
    print(json.dumps(result, indent=2))
    if args.write:
        write_section(result)


def write_section(result: dict) -> None:
    path = ROOT / "benchmarks" / "RESULTS.md"
    lines = [
        SECTION,
        "",
        f"{result['machine']}; commit {result['commit']}; {result['date']}.",
        "",
        f"Rerank stage wall time for {result['candidates']} candidates, every /api/generate request "
        f"delayed {result['delay_per_request_s']} s by the Ollama-protocol test server (serial bound "
        f"{result['serial_bound_s']} s); median of {result['repeats']} runs; reference = concurrency "
        f"{result['rows'][0]['concurrency']} in the same run. The test server's reranker is an emulation: "
        "this measures the client's request scheduling, not Qwen3-Reranker's speed or quality.",
        "",
        "| concurrency | median (s) | ratio to reference | ideal ratio |",
        "|---:|---:|---:|---:|",
        *[f"| {r['concurrency']} | {r['median_s']} | {r['ratio_to_reference']} | {r['ideal_ratio']} |"
          for r in result["rows"]],
        "",
        "Reproduce: `python benchmarks/rerank_latency.py --write`.",
        "",
    ]
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n\n"
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines)
    else:
        following = text.find("\n## ", start + len(SECTION))
        text = text[:start] + "\n".join(lines) + ("" if following == -1 else text[following:])
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
