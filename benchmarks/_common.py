"""Shared benchmark plumbing: machine facts, medians, and writing one `## ...` section of RESULTS.md."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("RESULTS.md")
CACHE = Path(os.environ.get("SEMSEARCH_BENCH_CACHE", "/work/bench-cache" if Path("/work").is_dir() else
                            Path.home() / ".cache" / "semsearch-bench"))


def machine() -> dict[str, Any]:
    """Where and when a run happened: CPU, cores, memory, Python, FAISS, commit, UTC date."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = 0.0
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "../semsearch"], capture_output=True, text=True,
                               cwd=Path(__file__).parent).stdout.strip()
        commit += "+dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    import faiss
    import numpy

    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory, 1),
        "python": platform.python_version(), "faiss": faiss.__version__, "numpy": numpy.__version__,
        "load_average_1m": round(os.getloadavg()[0], 2), "commit": commit,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def median(values) -> float:
    return float(statistics.median(values))


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))])


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def emit(title: str, data: dict[str, Any], body: str) -> None:
    """Print `data` as JSON and replace (or append) the `## title` section of RESULTS.md."""
    print(json.dumps(data, indent=2, ensure_ascii=False))
    info = data["machine"]
    header = (f"## {title}\n\n"
              f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; Python {info['python']}, "
              f"faiss {info['faiss']}; load average {info.get('load_average_1m', '?')} at start (shared machine); "
              f"commit {info['commit']}; {info['date']}.\n"
              f"Reproduce: `{' '.join(['python', *sys.argv])}`\n\n")
    section = header + body.strip() + "\n"
    text = RESULTS.read_text() if RESULTS.exists() else "# semsearch benchmark results\n\n" \
        "Each section is written by its script in this folder; figures are medians of repeated runs, " \
        "measured beside a reference in the same run.\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    RESULTS.write_text(text.rstrip() + "\n")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


class TestServer:
    """benchmarks/_server.py in a child process (so it does not share this process's GIL)."""

    def __init__(self, delay_per_text: float = 0.0):
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("_server.py")),
                                         str(delay_per_text)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        self.url = self.process.stdout.readline().strip()

    def __enter__(self) -> TestServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)
