"""Soak: readers search through `semsearch serve` and the CLI while a writer is SIGKILLed every 30 s.

For `--minutes` (default 10), against the Ollama-protocol test server with the instant model
(benchmarks/_server.py):

- one writer process edits, creates and deletes files and indexes the folder through the library,
  and adds and deletes texts through `semsearch serve` (POST /texts, POST /texts/delete); it
  prints a `begin` line before each write and an `ack` line once the write returned (HTTP 200);
- every `--kill-every` seconds the writer and the serve process are SIGKILLed together (the
  server handles the writes it is sent) and restarted;
- `--readers` asyncio + httpx clients search and build context through the service, and `--cli`
  loops run `semsearch search` processes on the same index directly.

Afterwards the index is checked: integrity, FAISS against SQLite (after the repair on open),
and every acknowledged write present unless a later write of the same key was under way; then
one uninterrupted indexing run must converge to the folder. Connection errors while the server
restarts are expected downtime, counted apart from errors of a running server. Loopback only;
every loop ends at the deadline.

    python benchmarks/soak.py [--minutes 10] [--readers 16] [--cli 2] [--kill-every 30] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import TestServer, emit, machine, percentile, table  # noqa: E402

QUERIES = ("notes about tea", "how to repair a bicycle", "stars seen through binoculars", "rivers and bridges",
           "baking bread at home", "garden vegetables in spring", "night trains across Europe", "jazz music")
TOPICS = ("tea", "bread", "bicycles", "stars", "rivers", "gardens", "trains", "music")
TEXT_IDS = 200
# A connection error this long after the server is back counts as an error of a running server.
RESTART_GRACE = 2.0


# -- the writer (a child process) ---------------------------------------------------------------

def _write_note(path: Path, rng: random.Random, stamp: str) -> None:
    topic = rng.choice(TOPICS)
    paragraphs = [f"# {path.stem} on {topic}",
                  f"Written at {stamp}: a note about {topic}, item {rng.randrange(10**6)}."]
    paragraphs += [f"More about {rng.choice(TOPICS)} and {topic}, line {i}." for i in range(rng.randrange(1, 6))]
    path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")


def folder_state(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _say(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


def writer_main(argv: list[str]) -> None:
    """Write until the deadline: files through the library, texts through the server."""
    import httpx

    from semsearch import Index
    from semsearch.errors import IndexLockedError

    parser = argparse.ArgumentParser()
    for name in ("--index", "--files", "--serve", "--ollama"):
        parser.add_argument(name, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--deadline", type=float, required=True)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    files = Path(args.files)
    index = Index.open(args.index, ollama_host=args.ollama)
    client = httpx.Client(base_url=args.serve, timeout=60)

    def until_done(step) -> bool:
        """Run `step` until it succeeds or the deadline passes (locks and restarts are expected)."""
        while time.time() < args.deadline:
            try:
                return step()
            except (IndexLockedError, httpx.TransportError):
                time.sleep(0.05)
        return False

    def post(path: str, body: dict) -> bool:
        response = client.post(path, json=body)
        if response.status_code in (409, 503):
            raise IndexLockedError(response.text)
        response.raise_for_status()
        return True

    for number in range(1_000_000):
        if time.time() >= args.deadline:
            break
        action = rng.choices(("files", "add", "delete"), weights=(3, 5, 2))[0]
        if action == "files":
            names = sorted(p.name for p in files.iterdir())
            for name in rng.sample(names, min(len(names), rng.randrange(1, 4))):
                _write_note(files / name, rng, f"{args.seed}-{number}")
            if rng.random() < 0.3 and len(names) > 20:
                (files / rng.choice(names)).unlink(missing_ok=True)
            if rng.random() < 0.3:
                _write_note(files / f"note-{args.seed}-{number}.md", rng, f"{args.seed}-{number}")
            state = folder_state(files)
            _say({"event": "begin", "kind": "files", "state": state})
            if until_done(lambda: index.index([files], batch_texts=8) is not None):
                _say({"event": "ack", "kind": "files", "state": state})
        elif action == "add":
            texts = {}
            for _ in range(rng.randrange(1, 4)):
                topic = rng.choice(TOPICS)
                texts[f"text-{rng.randrange(TEXT_IDS)}"] = (f"Text {args.seed}-{number} about {topic}: "
                                                            f"{topic} item {rng.randrange(10**6)}.")
            effect = {key: hashlib.sha256(text.encode("utf-8")).hexdigest() for key, text in texts.items()}
            _say({"event": "begin", "kind": "texts", "effect": effect})
            body = {"texts": [{"id": key, "text": text} for key, text in texts.items()]}
            if until_done(lambda: post("/texts", body)):
                _say({"event": "ack", "kind": "texts", "effect": effect})
        else:
            ids = [f"text-{rng.randrange(TEXT_IDS)}" for _ in range(rng.randrange(1, 3))]
            effect = {key: None for key in ids}
            _say({"event": "begin", "kind": "texts", "effect": effect})
            if until_done(lambda: post("/texts/delete", {"ids": ids})):
                _say({"event": "ack", "kind": "texts", "effect": effect})


# -- the driver --------------------------------------------------------------------------------

class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path, ollama: str):
        self.args = args
        self.workdir = workdir
        self.ollama = ollama
        self.index = workdir / "index"
        self.files = workdir / "files"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in ("SEMSEARCH_INDEX", "SEMSEARCH_TOKEN")}
        self.env["OLLAMA_HOST"] = ollama
        self.deadline = time.time() + args.minutes * 60
        self.events: list[dict[str, Any]] = []
        self.events_lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.outcomes: Counter[str] = Counter()
        self.restart_windows: list[list[float]] = []  # [killed at, serving again at]
        self.peak_rss = 0
        self.restarts = 0
        self.serve: subprocess.Popen | None = None
        self.writer: subprocess.Popen | None = None
        self.writer_threads: list[threading.Thread] = []

    # processes

    def start_serve(self) -> None:
        self.serve = subprocess.Popen(
            [sys.executable, "-m", "semsearch", "serve", "--port", str(self.port), "-i", str(self.index),
             "--ollama-host", self.ollama], env=self.env, stderr=subprocess.PIPE, text=True)
        line = self.serve.stderr.readline()
        if " on http" not in line:
            raise RuntimeError(f"serve did not start: {line}")
        threading.Thread(target=self.serve.stderr.read, daemon=True).start()  # keep the pipe drained

    def start_writer(self) -> None:
        self.writer = subprocess.Popen(
            [sys.executable, __file__, "--writer", "--index", str(self.index), "--files", str(self.files),
             "--serve", self.url, "--ollama", self.ollama, "--seed", str(1000 + self.restarts),
             "--deadline", str(self.deadline)], env=self.env, stdout=subprocess.PIPE, text=True)
        thread = threading.Thread(target=self._read_events, args=(self.writer,), daemon=True)
        thread.start()
        self.writer_threads.append(thread)

    def _read_events(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            if line.startswith("{"):
                with self.events_lock:
                    self.events.append(json.loads(line))

    def sample_rss(self) -> None:
        process = self.serve
        if process is None or process.poll() is not None:
            return
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss = max(self.peak_rss, int(line.split()[1]) * 1024)
        except OSError:
            pass

    def kill_and_restart(self) -> None:
        self.sample_rss()
        window = [time.time(), float("inf")]
        self.restart_windows.append(window)
        for process in (self.serve, self.writer):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
        for thread in self.writer_threads:
            thread.join(timeout=30)  # every line the killed writer printed comes before the next one's
        self.restarts += 1
        self.start_serve()
        window[1] = time.time()
        self.start_writer()

    def in_restart(self, moment: float) -> bool:
        return any(start - 0.5 <= moment <= end + RESTART_GRACE for start, end in self.restart_windows)

    # load

    async def reader(self, number: int) -> None:
        import httpx

        rng = random.Random(number)
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            while time.time() < self.deadline:
                endpoint = "/search" if rng.random() < 0.7 else "/context"
                body = {"query": rng.choice(QUERIES), "k": rng.choice((3, 5, 10)),
                        "mode": rng.choice(("vector", "hybrid", "keyword"))}
                if endpoint == "/context":
                    body["max_tokens"] = rng.choice((200, 800))
                started = time.perf_counter()
                try:
                    response = await client.post(endpoint, json=body)
                except httpx.TransportError as exc:
                    kind = "restart" if self.in_restart(time.time()) else "unexpected"
                    self.outcomes[f"connection error ({kind}): {type(exc).__name__}"] += 1
                    await asyncio.sleep(0.2)
                    continue
                elapsed = time.perf_counter() - started
                if response.status_code == 200:
                    self.latencies[endpoint].append(elapsed)
                    self.outcomes[f"{endpoint} 200"] += 1
                else:
                    self.outcomes[f"{endpoint} {response.status_code}"] += 1

    async def cli_reader(self, number: int) -> None:
        rng = random.Random(100 + number)
        while time.time() < self.deadline:
            started = time.perf_counter()
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "semsearch", "search", "--json", "-k", "5", "-i", str(self.index),
                rng.choice(QUERIES), env=self.env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
            try:
                _, stderr = await asyncio.wait_for(process.communicate(), timeout=300)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
                self.outcomes["cli search timeout"] += 1
                continue
            elapsed = time.perf_counter() - started
            if process.returncode == 0:
                self.latencies["cli search"].append(elapsed)
                self.outcomes["cli search 0"] += 1
            else:
                first = (stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1][:120]
                self.outcomes[f"cli search exit {process.returncode}: {first}"] += 1

    async def killer(self) -> None:
        next_kill = time.time() + self.args.kill_every
        while time.time() < self.deadline:
            await asyncio.sleep(min(1.0, max(0.0, self.deadline - time.time())))
            self.sample_rss()
            if time.time() >= next_kill and time.time() < self.deadline - 5:
                await asyncio.to_thread(self.kill_and_restart)
                next_kill = time.time() + self.args.kill_every

    async def run_load(self) -> None:
        tasks = [self.killer()]
        tasks += [self.reader(i) for i in range(self.args.readers)]
        tasks += [self.cli_reader(i) for i in range(self.args.cli)]
        await asyncio.gather(*tasks)

    # checks

    def final_check(self) -> dict[str, Any]:
        from semsearch import Index

        for process in (self.writer,):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
        for thread in self.writer_threads:
            thread.join(timeout=30)
        self.sample_rss()
        if self.serve is not None:
            self.serve.terminate()
            try:
                self.serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.serve.kill()
                self.serve.wait()
        with sqlite3.connect(self.index / "semsearch.db") as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        with Index.open(self.index, create=False, ollama_host=self.ollama) as index:
            in_sync_at_end = index.status().in_sync
            index.search("tea", k=3)  # repairs a stale FAISS file (invariant 3)
            status = index.status()
            faiss_agrees = index.vectors().ntotal == status.chunks
        lost, phantom, acknowledged = self.lost_writes()
        with Index.open(self.index, create=False, ollama_host=self.ollama) as index:
            index.index([self.files])
            converged = stored(self.index)[0] == folder_state(self.files) and index.status().in_sync
        return {"integrity": integrity, "in_sync_at_end": in_sync_at_end, "in_sync_after_open": status.in_sync,
                "faiss_agrees": faiss_agrees, "documents": status.documents, "chunks": status.chunks,
                "acknowledged_writes": acknowledged, "acknowledged_writes_lost": lost,
                "values_never_written": phantom, "converged": converged}

    def lost_writes(self) -> tuple[int, int, int]:
        """(acknowledged values missing, stored values no write produced, acknowledged writes)."""
        acked: dict[tuple[str, str], str | None] = {}
        maybe: dict[tuple[str, str], set[str | None]] = defaultdict(set)
        file_names: set[str] = set(name for event in self.events if event["kind"] == "files"
                                   for name in event["state"])
        acknowledged = 0
        for event in self.events:
            if event["kind"] == "files":
                values = {("file", name): event["state"].get(name) for name in file_names}
            else:
                values = {("text", key): value for key, value in event["effect"].items()}
            if event["event"] == "begin":
                for key, value in values.items():
                    maybe[key].add(value)
            else:
                acknowledged += 1
                for key, value in values.items():
                    acked[key] = value
                    maybe[key] = set()
        files, texts = stored(self.index)
        now = {**{("file", k): v for k, v in files.items()}, **{("text", k): v for k, v in texts.items()}}
        lost = phantom = 0
        for key in set(acked) | set(maybe) | set(now):
            value = now.get(key)
            if value == acked.get(key) or value in maybe[key]:
                continue
            if key in acked:
                lost += 1
            else:
                phantom += 1
        return lost, phantom, acknowledged


def stored(index_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    with sqlite3.connect(f"file:{index_dir / 'semsearch.db'}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute("SELECT kind, path, sha256 FROM documents").fetchall()
    # Files by name (the soak's folder is flat; paths are stored relative to the index home).
    return ({Path(r).name: s for k, r, s in rows if k == "file"}, {r: s for k, r, s in rows if k == "text"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_soak(args: argparse.Namespace) -> dict[str, Any]:
    info = machine()  # before the run: its load average and date are the start's
    load_start = os.getloadavg()
    with TestServer(0.0) as ollama, tempfile.TemporaryDirectory(prefix="semsearch-soak-") as tmp:
        workdir = Path(tmp)
        soak = Soak(args, workdir, ollama.url)
        soak.files.mkdir()
        rng = random.Random(0)
        for i in range(40):
            _write_note(soak.files / f"note-{i:03d}.md", rng, "initial")
        subprocess.run([sys.executable, "-m", "semsearch", "index", str(soak.files), "-i", str(soak.index)],
                       env=soak.env, check=True, capture_output=True, timeout=600)
        soak.events.append({"event": "ack", "kind": "files", "state": folder_state(soak.files)})
        soak.start_serve()
        soak.start_writer()
        started = time.time()
        asyncio.run(soak.run_load())
        duration = time.time() - started
        final = soak.final_check()
    load_end = os.getloadavg()
    outcomes = soak.outcomes
    served = sum(n for kind, n in outcomes.items() if kind.endswith(" 200") or kind == "cli search 0")
    errors = {kind: n for kind, n in sorted(outcomes.items()) if not (kind.endswith(" 200") or kind == "cli search 0")}
    non_4xx = sum(n for kind, n in errors.items()
                  if not kind.startswith("connection error (restart)")
                  and not (kind.startswith("/") and kind.split()[-1].startswith("4")))
    return {
        "minutes": args.minutes, "readers": args.readers, "cli_processes": args.cli, "kill_every_s": args.kill_every,
        "duration_s": round(duration, 1), "writer_restarts": soak.restarts,
        "requests_served": served,
        "served_by_endpoint": {ep: len(v) for ep, v in sorted(soak.latencies.items())},
        "errors": errors,
        "non_4xx_errors": non_4xx,
        "server_5xx": sum(n for kind, n in errors.items() if kind.startswith("/") and kind.split()[-1].startswith("5")),
        "connection_errors_during_restart": sum(n for kind, n in errors.items()
                                                if kind.startswith("connection error (restart)")),
        "latency_ms": {ep: {f"p{q}": round(percentile(v, q) * 1000, 1) for q in (50, 95, 99)}
                       for ep, v in sorted(soak.latencies.items()) if v},
        "server_peak_rss_mib": round(soak.peak_rss / 2**20, 1),
        "final": final,
        "load_average": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in load_end]},
        "machine": info,
    }


def markdown(result: dict[str, Any]) -> str:
    final = result["final"]
    rows = [[ep, result["served_by_endpoint"].get(ep, 0), lat["p50"], lat["p95"], lat["p99"]]
            for ep, lat in result["latency_ms"].items()]
    summary = table(["", ""], [
        ["duration", f"{result['duration_s']} s, writer + server SIGKILLed every {result['kill_every_s']} s "
                     f"({result['writer_restarts']} restarts)"],
        ["load", f"{result['readers']} HTTP readers (asyncio + httpx), {result['cli_processes']} CLI search loops, "
                 "1 writer (files through the library, texts through serve)"],
        ["requests served", result["requests_served"]],
        ["errors other than 4xx (running server)", result["non_4xx_errors"]],
        ["server 5xx", result["server_5xx"]],
        ["connection errors while the server restarted (expected downtime)",
         result["connection_errors_during_restart"]],
        ["acknowledged writes / lost", f"{final['acknowledged_writes']} / {final['acknowledged_writes_lost']}"],
        ["final integrity_check / FAISS agrees with SQLite",
         f"{final['integrity']} / {'yes' if final['faiss_agrees'] and final['in_sync_after_open'] else 'no'}"
         f" (in sync before the repair on open: {'yes' if final['in_sync_at_end'] else 'no'})"],
        ["one more indexing run converges to the folder", "yes" if final["converged"] else "no"],
        ["server peak RSS", f"{result['server_peak_rss_mib']} MiB"],
        ["load average (1, 5, 15 min) at start / end",
         f"{result['load_average']['start']} / {result['load_average']['end']}"],
    ])
    errors = "\n".join(f"- {kind}: {n}" for kind, n in result["errors"].items()) or "- none"
    return (summary + "\n\nLatency of successful requests, ms (served by the HTTP service, or a whole "
            "`semsearch search` process):\n\n" + table(["endpoint", "served", "p50", "p95", "p99"], rows)
            + "\n\nErrors and non-200 answers by kind:\n\n" + errors)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        writer_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--readers", type=int, default=16)
    parser.add_argument("--cli", type=int, default=2, help="Concurrent `semsearch search` process loops.")
    parser.add_argument("--kill-every", type=float, default=30.0, help="Seconds between SIGKILLs of the writer.")
    parser.add_argument("--no-record", action="store_true", help="Print the JSON only; leave RESULTS.md alone.")
    args = parser.parse_args()
    result = run_soak(args)
    if args.no_record:
        print(json.dumps(result, indent=2))
    else:
        emit("Soak", result, markdown(result))


if __name__ == "__main__":
    main()
