"""Cold start: wall time of a `semsearch search` process on the 1M-vector index, beside
`python -c "import faiss, numpy"` measured in the same run.

The query embedding is made free: the Ollama-protocol test server (benchmarks/_server.py, its
own process) answers from a lookup table, so what is timed is Python start-up, imports, opening
SQLite and the memory-mapped FAISS file, the HTTP round trip, the search and the output. The
index is the one bench_query.py leaves (`auto`'s type); the page cache is warm (one untimed run).

    python benchmarks/bench_coldstart.py [--index /work/bench-cache/query/1000000x384] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import CACHE, TestServer, emit, machine, median, table  # noqa: E402


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=CACHE / "query" / "1000000x384")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    info = machine()
    semsearch = shutil.which("semsearch", path=str(Path(sys.executable).parent)) or "semsearch"
    import os

    with TestServer(0.0) as server:
        env = dict(os.environ, OLLAMA_HOST=server.url)
        search = [semsearch, "search", "how are vectors searched", "-i", str(args.index), "--json"]
        status = json.loads(timed([semsearch, "status", "-i", str(args.index), "--json"], env)[1])
        timed(search, env)  # warm the page cache and the server
        commands = {
            "semsearch search": search,
            'python -c "import faiss, numpy"': [sys.executable, "-c", "import faiss, numpy"],
            "semsearch status": [semsearch, "status", "-i", str(args.index)],
            "semsearch --help": [semsearch, "--help"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        hits = 0
        for _ in range(args.repeats):
            for name, command in commands.items():
                seconds, out = timed(command, env)
                times[name].append(seconds)
                if name == "semsearch search":
                    hits = len(json.loads(out))
    medians = {name: median(values) for name, values in times.items()}
    reference = medians['python -c "import faiss, numpy"']
    result = {"benchmark": "cold_start", "machine": info, "index": str(args.index), "vectors": status["chunks"],
              "index_type": status["faiss_type"], "hits": hits, "runs_s": times, "median_s": medians,
              "search_minus_import_s": medians["semsearch search"] - reference}
    rows = [[name, f"{medians[name]:.3f}", f"{medians[name] - reference:+.3f}",
             " ".join(f"{t:.2f}" for t in times[name])] for name in commands]
    body = (
        f"New processes on the {status['chunks']:,}-vector index ({status['faiss_type']}, memory-mapped), query "
        f"embedding made free by the test server; {args.repeats} runs each, interleaved, warm page cache.\n\n"
        f"**`semsearch search`: {medians['semsearch search']:.3f} s median, "
        f"{result['search_minus_import_s']:+.3f} s against `python -c \"import faiss, numpy\"` "
        f"({reference:.3f} s).**\n\n"
        + table(["command", "median s", "vs import faiss, numpy", "runs s"], rows)
    )
    emit("Cold start", result, body)


if __name__ == "__main__":
    main()
