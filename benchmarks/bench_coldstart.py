"""Cold start: wall time of new `semsearch` processes (`--help`, `status`, `search`) beside bare
Python references measured in the same run.

Targets: `semsearch --help` within 0.15 s of `python -c pass`; `semsearch search` within 0.15 s of
`python -c "import faiss, numpy"` (what any FAISS search pays). `import faiss, numpy, ollama` is
shown too: what the `ollama` client alone would cost a search (the query is embedded without it).

The query embedding is made free: the Ollama-protocol test server (benchmarks/_server.py, its own
process) answers from a lookup table, so what is timed is Python start-up, imports, opening SQLite
and the memory-mapped FAISS file, the HTTP round trip, the search and the output. The index is the
demo corpus (`data/`, indexed through the same server into a temporary directory) unless --index
names another one (e.g. bench_query.py's 1M-vector index). The page cache is warm (one untimed run
of each command); runs are interleaved, so a busy machine slows every command alike.

Python's bytecode cache is on for the timed commands, as it is for an installed package (pip
compiles it at install time): the children get a fresh PYTHONPYCACHEPREFIX and no
PYTHONDONTWRITEBYTECODE, and the untimed first run fills the cache. Without a cache every process
compiles semsearch's sources again; the `search, no bytecode cache` row shows what that costs.

    python benchmarks/bench_coldstart.py [--index DIR] [--repeats 9]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import TestServer, emit, machine, median, table  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "data"
TARGET_S = 0.15
PASS = "python -c pass"
FAISS = 'python -c "import faiss, numpy"'
CLIENT = 'python -c "import faiss, numpy, ollama"'
HELP, STATUS, SEARCH = "semsearch --help", "semsearch status", "semsearch search"
UNCACHED = "semsearch search, no bytecode cache"


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system, what a busy machine inflates least) and stdout."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if status != 0:
            raise subprocess.CalledProcessError(status, command)
        out.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, out.read().decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=None, help="an existing index [default: the demo corpus]")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    info = machine()  # records the load average at the start
    semsearch = shutil.which("semsearch", path=str(Path(sys.executable).parent)) or "semsearch"
    with TestServer(0.0) as server, tempfile.TemporaryDirectory() as scratch:
        env = {key: value for key, value in os.environ.items()
               if key not in ("SEMSEARCH_INDEX", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
        env["OLLAMA_HOST"] = server.url
        uncached = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(scratch, "pycache"))
        index = args.index
        if index is None:
            shutil.copytree(DEMO, Path(scratch, "data"))
            index = Path(scratch, ".semsearch")
            subprocess.run([semsearch, "index", str(Path(scratch, "data")), "-i", str(index)], env=env, check=True,
                           capture_output=True)
        status = json.loads(timed([semsearch, "status", "-i", str(index), "--json"], env)[2])
        commands = {
            PASS: [sys.executable, "-c", "pass"],
            FAISS: [sys.executable, "-c", "import faiss, numpy"],
            CLIENT: [sys.executable, "-c", "import faiss, numpy, ollama"],
            HELP: [semsearch, "--help"],
            STATUS: [semsearch, "status", "-i", str(index)],
            SEARCH: [semsearch, "search", "invention of paper in China", "-i", str(index), "--json"],
        }
        commands[UNCACHED] = commands[SEARCH]
        for command in commands.values():
            timed(command, env)  # warm the page cache, the bytecode cache and the server
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        hits = 0
        for _ in range(args.repeats):
            for name, command in commands.items():
                seconds, cpu_seconds, out = timed(command, uncached if name == UNCACHED else env)
                times[name].append(seconds)
                cpu[name].append(cpu_seconds)
                if name == SEARCH:
                    hits = len(json.loads(out))
    medians = {name: median(values) for name, values in times.items()}
    cpu_medians = {name: median(values) for name, values in cpu.items()}
    reference = {PASS: PASS, FAISS: FAISS, CLIENT: FAISS, HELP: PASS, STATUS: PASS, SEARCH: FAISS, UNCACHED: FAISS}
    over = {name: medians[name] - medians[reference[name]] for name in commands}
    cpu_over = {name: cpu_medians[name] - cpu_medians[reference[name]] for name in commands}
    result = {
        "benchmark": "cold_start", "machine": info, "index": "demo corpus" if args.index is None else str(args.index),
        "vectors": status["chunks"], "index_type": status["faiss_type"], "model": status["model"], "hits": hits,
        "runs_s": times, "median_s": medians, "cpu_runs_s": cpu, "cpu_median_s": cpu_medians,
        "cpu_help_minus_python_s": cpu_over[HELP], "cpu_search_minus_import_faiss_numpy_s": cpu_over[SEARCH],
        "help_minus_python_s": over[HELP], "status_minus_python_s": over[STATUS],
        "search_minus_import_faiss_numpy_s": over[SEARCH],
        "ollama_client_import_s": over[CLIENT],
        "search_without_bytecode_cache_minus_import_faiss_numpy_s": over[UNCACHED],
        "help_ratio_to_python": medians[HELP] / medians[PASS],
        "search_ratio_to_import_faiss_numpy": medians[SEARCH] / medians[FAISS],
        "target_s": TARGET_S,
        "help_within_target": over[HELP] <= TARGET_S, "search_within_target": over[SEARCH] <= TARGET_S,
    }
    rows = [[name, f"{medians[name]:.3f}", reference[name], f"{over[name]:+.3f}",
             f"{medians[name] / medians[reference[name]]:.2f}", f"{cpu_medians[name]:.3f}", f"{cpu_over[name]:+.3f}",
             " ".join(f"{t:.2f}" for t in times[name])]
            for name in commands]
    verdict = {True: "within", False: "over"}
    where = "the demo corpus (`data/`)" if args.index is None else f"`{args.index}`"
    body = (
        f"New processes on {where}: {status['chunks']:,} chunks, {status['faiss_type']}, model {status['model']} "
        f"(Ollama provider), query embedding made free by the test server; {args.repeats} runs each, "
        f"interleaved, warm page cache, bytecode cached as for an installed package unless the row says "
        f"otherwise. Load average {info['load_average_1m']} at the start: compare rows with "
        f"the references measured in the same run, not across runs.\n\n"
        f"**`semsearch --help`: {over[HELP]:+.3f} s against `python -c pass` ({verdict[over[HELP] <= TARGET_S]} "
        f"the {TARGET_S} s target). `semsearch search`: {over[SEARCH]:+.3f} s against `python -c \"import faiss, "
        f"numpy\"` ({verdict[over[SEARCH] <= TARGET_S]} the {TARGET_S} s target); it embeds the query without the "
        f"`ollama` client, whose import alone would cost {over[CLIENT]:+.3f} s. Without a bytecode cache (every "
        f"process compiling semsearch's sources) a search costs {over[UNCACHED]:+.3f} s. In CPU time (user + "
        f"system, which a loaded machine inflates far less than wall time): `--help` {cpu_over[HELP]:+.3f} s, "
        f"`search` {cpu_over[SEARCH]:+.3f} s.**\n\n"
        + table(["command", "median s", "reference", "minus reference s", "ratio", "CPU s", "CPU minus reference s",
                 "runs s"], rows)
    )
    emit("Cold start", result, body)


if __name__ == "__main__":
    main()
