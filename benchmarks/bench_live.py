"""A live index: time to the first keyword answer after starting `index` on a new folder, and time
until an edit is searchable under `watch`, beside the full index time of the same folder.

The Ollama-protocol test server (benchmarks/_server.py) spends `--delay-per-text` seconds per
text in its single model slot, as a slow CPU embedder would. Everything runs as the user would:
`semsearch index` and `semsearch watch` in their own processes, searches from this one.

    python benchmarks/bench_live.py [--files 200] [--delay-per-text 0.02] [--repeats 3] [--edits 5]
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

sys.path.insert(0, str(Path(__file__).parent))
from _common import CACHE, TestServer, emit, machine, median, table  # noqa: E402
from _corpus import write_notes  # noqa: E402

from semsearch import Index  # noqa: E402
from semsearch.errors import SemsearchError  # noqa: E402

POLL = 0.05


def semsearch(args: list[str], url: str, **popen) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if key != "SEMSEARCH_INDEX"}
    env["OLLAMA_HOST"] = url
    return subprocess.Popen([sys.executable, "-m", "semsearch", *args], env=env, **popen)


def keyword_hit(index_dir: Path, url: str, query: str, name: str) -> bool:
    """Whether a keyword search from a fresh handle (as another process would) finds file `name`."""
    try:
        with Index.open(index_dir, create=False, ollama_host=url) as index:
            return any(Path(hit.path).name == name for hit in index.search(query, k=50, mode="keyword"))
    except SemsearchError:  # not created yet, or not initialised
        return False


def full_index(folder: Path, index_dir: Path, url: str) -> float:
    shutil.rmtree(index_dir, ignore_errors=True)
    started = time.perf_counter()
    process = semsearch(["index", str(folder), "-i", str(index_dir)], url, stdout=subprocess.DEVNULL)
    if process.wait() != 0:
        raise SystemExit("semsearch index failed")
    return time.perf_counter() - started


def first_keyword_answer(folder: Path, index_dir: Path, url: str) -> tuple[float, float]:
    """(seconds from starting `index` until a keyword search finds the first note, total seconds)."""
    shutil.rmtree(index_dir, ignore_errors=True)
    started = time.perf_counter()
    process = semsearch(["index", str(folder), "-i", str(index_dir)], url, stdout=subprocess.DEVNULL)
    first = None
    while first is None:
        if keyword_hit(index_dir, url, "Note 0", "note00000.md"):
            first = time.perf_counter() - started
        elif process.poll() is not None and not keyword_hit(index_dir, url, "Note 0", "note00000.md"):
            raise SystemExit("index ended without the note being searchable")
        else:
            time.sleep(POLL)
    process.wait()
    return first, time.perf_counter() - started


def edits_under_watch(folder: Path, index_dir: Path, url: str, edits: int) -> list[float]:
    """Seconds from saving an edit (a new word in one note) until a keyword search finds it."""
    process = semsearch(["watch", str(folder), "-i", str(index_dir), "--json"], url, stdout=subprocess.PIPE,
                        text=True)
    try:
        json.loads(process.stdout.readline())  # the initial run: everything already indexed
        seconds = []
        note = next(folder.rglob("note00001.md"))
        original = note.read_text(encoding="utf-8")
        for i in range(edits):
            word = f"zyzzogeton{i}x{os.getpid()}"
            started = time.perf_counter()
            note.write_text(original + f"\n\nAn edit that mentions {word}.\n", encoding="utf-8")
            while not keyword_hit(index_dir, url, word, note.name):
                time.sleep(POLL)
            seconds.append(time.perf_counter() - started)
            print({"edit": i, "searchable_s": round(seconds[-1], 3)}, file=sys.stderr, flush=True)
        note.write_text(original, encoding="utf-8")
        return seconds
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--delay-per-text", type=float, default=0.02)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--edits", type=int, default=5)
    args = parser.parse_args()
    info = machine()
    folder = write_notes(CACHE / "notes" / f"{args.files}", args.files)
    index_dir = CACHE / "live-index"
    runs = []
    with TestServer(args.delay_per_text) as server:
        for _ in range(args.repeats):
            full = full_index(folder, index_dir, server.url)
            first, total = first_keyword_answer(folder, index_dir, server.url)
            runs.append({"full_index_s": full, "first_keyword_answer_s": first, "index_run_s": total})
            print(runs[-1], file=sys.stderr, flush=True)
        edits = edits_under_watch(folder, index_dir, server.url, args.edits)
    shutil.rmtree(index_dir, ignore_errors=True)
    result = {
        "benchmark": "live_index", "machine": info, "files": args.files, "delay_per_text_s": args.delay_per_text,
        "runs": runs, "edit_searchable_s": edits,
        "median_full_index_s": median(r["full_index_s"] for r in runs),
        "median_first_keyword_answer_s": median(r["first_keyword_answer_s"] for r in runs),
        "median_edit_searchable_s": median(edits),
    }
    rows = [[i + 1, f"{r['full_index_s']:.2f}", f"{r['first_keyword_answer_s']:.2f}", f"{r['index_run_s']:.2f}"]
            for i, r in enumerate(runs)]
    body = (
        f"{args.files} Markdown notes (about 3 chunks each), the test server spending {args.delay_per_text} s per "
        "text in its one model slot. `semsearch index` / `watch` run in their own processes; searches are keyword "
        "searches from a fresh handle in the benchmark's process, polled every 50 ms. The first keyword answer "
        "measures whatever `index` does at the recorded commit (without two-phase indexing it waits for the "
        "first batch's vectors); an edit under `watch` includes its 300 ms debounce.\n\n"
        f"**Medians: full index {result['median_full_index_s']:.2f} s; first keyword answer "
        f"{result['median_first_keyword_answer_s']:.2f} s after starting `index`; an edit searchable "
        f"{result['median_edit_searchable_s']:.2f} s after saving it under `watch`** "
        f"(edits: {', '.join(f'{s:.2f}' for s in edits)} s).\n\n"
        + table(["run", "full index s", "first keyword answer s", "that index run s"], rows)
    )
    emit("Live index: first keyword answer, edit to searchable", result, body)


if __name__ == "__main__":
    main()
