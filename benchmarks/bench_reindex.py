"""Re-indexing an unchanged folder of 10,000 files, beside walking and stat-ing it in the same run.

    python benchmarks/bench_reindex.py [--files 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import CACHE, emit, machine, median, table  # noqa: E402
from _corpus import ZeroCostEmbedder, write_notes  # noqa: E402

from semsearch import Index  # noqa: E402


def walk_and_stat(folder: Path) -> float:
    started = time.perf_counter()
    for directory, _, names in os.walk(folder):
        for name in names:
            os.stat(os.path.join(directory, name))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    info = machine()
    folder = write_notes(CACHE / "notes" / f"{args.files}", args.files)
    target = CACHE / "reindex-index"
    embedder = ZeroCostEmbedder()
    with Index.open(target, embedder=embedder) as index:
        setup = index.index([folder])  # brings the index up to date (untimed)
    runs = []
    for _ in range(args.repeats):
        embedder.calls = 0
        started = time.perf_counter()
        with Index.open(target, embedder=embedder) as index:
            report = index.index([folder])
        wall = time.perf_counter() - started
        reference = walk_and_stat(folder)
        runs.append({"wall_s": wall, "unchanged": report.files_unchanged, "changed": report.files_added +
                     report.files_updated + report.files_removed, "embedder_calls": embedder.calls,
                     "walk_stat_s": reference})
        print(runs[-1], file=sys.stderr, flush=True)
    result = {"benchmark": "reindex_unchanged", "machine": info, "files": args.files, "chunks": setup.chunks_total,
              "runs": runs, "median_wall_s": median(r["wall_s"] for r in runs),
              "median_walk_stat_s": median(r["walk_stat_s"] for r in runs)}
    result["ratio_to_walk_stat"] = result["median_wall_s"] / result["median_walk_stat_s"]
    rows = [[i + 1, r["unchanged"], r["changed"], r["embedder_calls"], f"{r['wall_s']:.3f}", f"{r['walk_stat_s']:.3f}"]
            for i, r in enumerate(runs)]
    body = (
        f"`Index.open` + `index()` over the unchanged {args.files:,}-note folder ({setup.chunks_total:,} chunks), "
        "beside `os.walk` + `os.stat` of the same files in the same run.\n\n"
        f"**Median: {result['median_wall_s']:.3f} s** ({result['ratio_to_walk_stat']:.1f} × walk+stat "
        f"{result['median_walk_stat_s']:.3f} s).\n\n"
        + table(["run", "unchanged", "changed", "embedder calls", "wall s", "walk+stat s"], rows)
    )
    emit("Re-index of an unchanged folder", result, body)


if __name__ == "__main__":
    main()
