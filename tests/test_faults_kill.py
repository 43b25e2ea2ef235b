"""SIGKILL at seeded random instants of every write path: nothing acknowledged is lost.

Each path is first run once uninterrupted to observe how long it takes; then it is killed
KILLS times at instants drawn from a seeded RNG over that duration, and after every kill:

- `PRAGMA integrity_check` is ok,
- the index opens and answers, and FAISS agrees with SQLite (at once, or after the repair on
  open that invariant 3 promises),
- every write the caller saw acknowledged is there; what was in flight is either fully there
  or not at all (per document),

and at the end an uninterrupted run converges to the state a never-killed run reaches.
The embedding server is the instant one, the corpora small, so the matrix takes minutes.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.fault_writer import TextOperation, apply, text_operations
from tests.faults import (
    check_opens_and_agrees,
    cli_env,
    instant_ollama,  # noqa: F401  (fixture)
    kill,
    slow_ollama,  # noqa: F401  (fixture)
    run_cli,
    snapshot,
    stored_documents,
    temp_files,
    wait_for_line,
)

KILLS = 30
QUERIES = ("notes about tea", "bicycles and rivers", "Text id3 is about stars")
OPERATIONS_PER_RUN = 12


def _scores(snap: dict) -> dict:
    """A snapshot with hits reduced to their scores: equal vectors may tie and swap places."""
    return {**snap, "hits": {q: [score for _, _, score in hits] for q, hits in snap["hits"].items()}}


def _reference_texts(tmp_path: Path, host: str, operations: list[TextOperation]) -> Path:
    """The never-killed index: the same operations applied in this process."""
    from semsearch import Index

    reference = tmp_path / "reference"
    with Index.open(reference, ollama_host=host) as index:
        for operation in operations:
            apply(index, operation)
    return reference


class _TextModel:
    """What the index must hold: acknowledged effects, plus what the operation in flight may have done."""

    def __init__(self) -> None:
        self.acked: dict[str, str] = {}

    def acknowledge(self, operation: TextOperation) -> None:
        for key, sha in operation.effect().items():
            if sha is None:
                self.acked.pop(key, None)
            else:
                self.acked[key] = sha

    def check(self, stored: dict[str, str], in_flight: TextOperation | None) -> None:
        maybe = in_flight.effect() if in_flight is not None else {}
        for key in set(stored) | set(self.acked) | set(maybe):
            allowed = {self.acked.get(key)}
            if key in maybe:
                allowed.add(maybe[key])
            assert stored.get(key) in allowed, (key, stored.get(key), allowed, in_flight)


def _acks(output: str) -> list[int]:
    return [int(line.split()[1]) for line in output.splitlines() if line.startswith("ack ")]


# -- library: add_texts / delete_texts in a subprocess -----------------------------------------

def test_sigkill_of_library_writes_loses_no_acknowledged_text(tmp_path, instant_ollama):
    host = instant_ollama
    seed = 11
    rng = random.Random(seed)
    index_dir = tmp_path / "killed"
    operations = text_operations(seed, (KILLS + 2) * OPERATIONS_PER_RUN)
    model = _TextModel()

    def writer(start: int, stop: int) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "tests.fault_writer", str(index_dir), host, str(seed),
                                 str(start), str(stop)], cwd=Path(__file__).resolve().parent.parent,
                                env=cli_env(host), stdout=subprocess.PIPE, text=True)

    started = time.monotonic()
    first = writer(0, OPERATIONS_PER_RUN)
    out, _ = first.communicate(timeout=600)
    observed = time.monotonic() - started
    assert first.returncode == 0 and _acks(out) == list(range(OPERATIONS_PER_RUN))
    for number in _acks(out):
        model.acknowledge(operations[number])
    next_operation = OPERATIONS_PER_RUN

    landed = 0
    for _ in range(KILLS):
        process = writer(next_operation, next_operation + OPERATIONS_PER_RUN)
        time.sleep(rng.uniform(0, observed))
        landed += kill(process)
        acks = _acks(process.stdout.read())
        process.stdout.close()
        assert acks == list(range(next_operation, next_operation + len(acks)))
        for number in acks:
            model.acknowledge(operations[number])
        next_operation += len(acks)
        in_flight = operations[next_operation] if process.returncode != 0 else None
        check_opens_and_agrees(index_dir, host)
        model.check(stored_documents(index_dir, "text"), in_flight)
    assert landed >= KILLS // 3  # the kills hit running writers, not only finished ones

    final = writer(next_operation, next_operation + OPERATIONS_PER_RUN)
    assert final.wait(timeout=600) == 0
    final.stdout.close()
    end = next_operation + OPERATIONS_PER_RUN
    reference = _reference_texts(tmp_path, host, operations[:end])
    assert _scores(snapshot(index_dir, host, QUERIES)) == _scores(snapshot(reference, host, QUERIES))
    assert temp_files(index_dir) == []


# -- semsearch serve: POST /texts and POST /texts/delete ----------------------------------------

def _start_serve(index_dir: Path, host: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "semsearch", "serve", "--port", "0", "-i", str(index_dir),
                                "--ollama-host", host], env=cli_env(host), stderr=subprocess.PIPE, text=True)
    line = wait_for_line(process.stderr, "semsearch serving")
    return process, line.split(" on ", 1)[1].split()[0]


def _send(client: httpx.Client, operation: TextOperation) -> None:
    path = "/texts" if operation.texts else "/texts/delete"
    response = client.post(path, json=operation.to_json())
    assert response.status_code == 200, (response.status_code, response.text)


def test_sigkill_of_serve_loses_no_acknowledged_request(tmp_path, instant_ollama):
    host = instant_ollama
    seed = 23
    rng = random.Random(seed)
    index_dir = tmp_path / "served"
    operations = text_operations(seed, (KILLS + 2) * OPERATIONS_PER_RUN)
    model = _TextModel()

    def client_run(url: str, start: int, acks: list[int], errors: list[BaseException]) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for operation in operations[start:start + OPERATIONS_PER_RUN]:
                try:
                    _send(client, operation)
                except httpx.TransportError:
                    return  # the server died under this request
                except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                    errors.append(exc)
                    return
                acks.append(operation.number)

    process, url = _start_serve(index_dir, host)
    acks: list[int] = []
    errors: list[BaseException] = []
    started = time.monotonic()
    client_run(url, 0, acks, errors)
    observed = time.monotonic() - started
    assert not errors and acks == list(range(OPERATIONS_PER_RUN))
    for number in acks:
        model.acknowledge(operations[number])
    next_operation = OPERATIONS_PER_RUN

    landed = 0
    for _ in range(KILLS):
        acks, errors = [], []
        client = threading.Thread(target=client_run, args=(url, next_operation, acks, errors))
        client.start()
        time.sleep(rng.uniform(0, observed))
        landed += client.is_alive()
        kill(process)
        client.join(timeout=120)
        process.stderr.close()
        assert not client.is_alive() and not errors, errors
        for number in acks:
            model.acknowledge(operations[number])
        next_operation += len(acks)
        in_flight = operations[next_operation] if len(acks) < OPERATIONS_PER_RUN else None
        check_opens_and_agrees(index_dir, host)
        model.check(stored_documents(index_dir, "text"), in_flight)
        process, url = _start_serve(index_dir, host)
    assert landed >= KILLS // 3

    acks, errors = [], []
    client_run(url, next_operation, acks, errors)
    assert not errors and len(acks) == OPERATIONS_PER_RUN
    kill(process)
    process.stderr.close()
    end = next_operation + OPERATIONS_PER_RUN
    reference = _reference_texts(tmp_path, host, operations[:end])
    assert _scores(snapshot(index_dir, host, QUERIES)) == _scores(snapshot(reference, host, QUERIES))


# -- semsearch index -----------------------------------------------------------------------------

def _folder_state(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _mutate(folder: Path, rng: random.Random, round_number: int) -> None:
    """Rewrite a third of the notes, delete two, add two: each run has real work to interrupt."""
    names = sorted(p.name for p in folder.iterdir())
    for name in rng.sample(names, len(names) // 3):
        topic = rng.choice(("tea", "bread", "bicycles", "stars", "rivers"))
        (folder / name).write_text(f"# {name}\n\nRound {round_number}: this note is about {topic}, "
                                   f"item {rng.randrange(10_000)}.\n\nA second paragraph on {topic}.\n",
                                   encoding="utf-8")
    for name in rng.sample(names, 2):
        (folder / name).unlink()
    for extra in range(2):
        (folder / f"new-{round_number}-{extra}.md").write_text(f"# New {round_number}\n\nAbout gardens, "
                                                               f"{rng.randrange(10_000)}.\n", encoding="utf-8")


def _sixty_notes(tmp_path: Path) -> Path:
    """tmp_path/notes with 60 one-chunk Markdown notes."""
    notes = tmp_path / "notes"
    notes.mkdir()
    for i in range(60):
        (notes / f"note-{i:03d}.md").write_text(f"# Note {i}\n\nAbout tea and rivers, item {i}.\n", encoding="utf-8")
    return notes


def test_sigkill_of_cli_index_loses_no_acknowledged_run(tmp_path, instant_ollama):
    host = instant_ollama
    rng = random.Random(37)
    notes = _sixty_notes(tmp_path)
    index_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "semsearch", "index", str(notes), "-i", str(index_dir), "--batch", "4", "--json"]

    started = time.monotonic()
    run_cli(command[3:], cwd=tmp_path, host=host)
    _mutate(notes, rng, 0)
    run_cli(command[3:], cwd=tmp_path, host=host)  # a typical run: a third of the files changed
    observed = (time.monotonic() - started) / 2
    acked = _folder_state(notes)
    seen_since_ack = {name: {sha} for name, sha in acked.items()}

    landed = 0
    for round_number in range(1, KILLS + 1):
        _mutate(notes, rng, round_number)
        current = _folder_state(notes)
        for name, sha in current.items():
            seen_since_ack.setdefault(name, set()).add(sha)
        process = subprocess.Popen(command, cwd=tmp_path, env=cli_env(host), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, observed))
        landed += kill(process)
        check_opens_and_agrees(index_dir, host)
        stored = stored_documents(index_dir, "file")
        if process.returncode == 0:  # finished before the kill: this run was acknowledged
            assert stored == current
            acked, seen_since_ack = current, {name: {sha} for name, sha in current.items()}
            continue
        for name, sha in stored.items():
            assert sha in seen_since_ack.get(name, ()), (name, "holds a version that never existed")
        for name, sha in acked.items():
            if seen_since_ack.get(name) == {sha} and current.get(name) == sha:
                assert stored.get(name) == sha, (name, "acknowledged and unchanged, but lost")
    assert landed >= KILLS // 3

    run_cli(command[3:], cwd=tmp_path, host=host)
    run_cli(["index", str(notes), "-i", str(tmp_path / "reference")], cwd=tmp_path, host=host)
    assert stored_documents(index_dir, "file") == _folder_state(notes)
    assert _scores(snapshot(index_dir, host, QUERIES)) == _scores(snapshot(tmp_path / "reference", host, QUERIES))
    assert temp_files(index_dir) == []


def test_sigkill_of_a_two_phase_index_run_keeps_text_and_vectors_consistent(tmp_path, slow_ollama):
    """With a slow embedder, a run commits every file's text long before its vectors: kills land in
    the text phase, between it and the vector phase, and in the middle of the vectors."""
    host = slow_ollama
    rng = random.Random(43)
    notes = _sixty_notes(tmp_path)
    index_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "semsearch", "index", str(notes), "-i", str(index_dir), "--batch", "4"]

    started = time.monotonic()
    run_cli(command[3:], cwd=tmp_path, host=host)
    observed = time.monotonic() - started
    seen = {name: {sha} for name, sha in _folder_state(notes).items()}
    kills = KILLS // 2
    landed = pending_seen = 0
    for round_number in range(1, kills + 1):
        _mutate(notes, rng, round_number)
        for name, sha in _folder_state(notes).items():
            seen.setdefault(name, set()).add(sha)
        process = subprocess.Popen(command, cwd=tmp_path, env=cli_env(host), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, observed))
        landed += kill(process)
        facts = check_opens_and_agrees(index_dir, host)
        pending_seen += facts["pending"] > 0
        for name, sha in stored_documents(index_dir, "file").items():
            assert sha in seen.get(name, ()), (name, "holds a version that never existed")
    assert landed >= kills // 3
    assert pending_seen >= 1  # some kill did land between a file's text and its vectors

    run_cli(command[3:], cwd=tmp_path, host=host)
    run_cli(["index", str(notes), "-i", str(tmp_path / "reference")], cwd=tmp_path, host=host)
    assert stored_documents(index_dir, "file") == _folder_state(notes)
    assert check_opens_and_agrees(index_dir, host)["pending"] == 0
    assert _scores(snapshot(index_dir, host, QUERIES)) == _scores(snapshot(tmp_path / "reference", host, QUERIES))
    assert temp_files(index_dir) == []


# -- semsearch rebuild --index-type ---------------------------------------------------------------

def test_sigkill_of_rebuild_keeps_every_vector(tmp_path, instant_ollama):
    from semsearch import Index

    host = instant_ollama
    rng = random.Random(41)
    index_dir = tmp_path / "index"
    with Index.open(index_dir, ollama_host=host) as index:
        index.add_texts({"id": f"t{i}", "text": f"Text {i} about tea and rivers, number {i * 13}."}
                        for i in range(3000))
    reference = snapshot(index_dir, host, QUERIES)
    types = ["hnsw", "ivf", "hnsw-sq8", "flat", "ivf-sq8"]

    def rebuild(kind: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "semsearch", "rebuild", "--index-type", kind,
                                 "-i", str(index_dir)], cwd=tmp_path, env=cli_env(host),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    started = time.monotonic()
    assert rebuild("hnsw").wait(timeout=600) == 0
    observed = time.monotonic() - started
    recorded = "hnsw"

    landed = 0
    for round_number in range(KILLS):
        kind = types[round_number % len(types)]
        process = rebuild(kind)
        time.sleep(rng.uniform(0, observed))
        landed += kill(process)
        facts = check_opens_and_agrees(index_dir, host)
        assert facts["documents"] == 3000 and facts["chunks"] == 3000
        with Index.open(index_dir, create=False) as index:
            status = index.status()
        assert status.index_type in ({kind} if process.returncode == 0 else {recorded, kind})
        recorded = status.index_type
        assert stored_documents(index_dir, "text") == {d[1]: d[2] for d in reference["documents"]}
    assert landed >= KILLS // 3

    run_cli(["rebuild", "--index-type", "flat", "-i", str(index_dir)], cwd=tmp_path, host=host)
    assert _scores(snapshot(index_dir, host, QUERIES)) == _scores(reference)  # exact search again
    assert temp_files(index_dir) == []


def test_sigkill_during_the_faiss_save_leaves_no_temp_file_behind(tmp_path, instant_ollama):
    """A kill while vectors.faiss is being written leaves its temp file; the next writer removes it."""
    from semsearch import Index

    host = instant_ollama
    index_dir = tmp_path / "index"
    with Index.open(index_dir, ollama_host=host) as index:
        index.add_texts({"id": f"t{i}", "text": f"Text {i} about tea, number {i * 13}."} for i in range(3000))
    caught = []
    for attempt in range(10):
        process = subprocess.Popen([sys.executable, "-m", "semsearch", "rebuild", "-i", str(index_dir)],
                                   cwd=tmp_path, env=cli_env(host), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while process.poll() is None and not temp_files(index_dir) and time.monotonic() < deadline:
            time.sleep(0.001)
        kill(process)
        caught = temp_files(index_dir)
        if caught:
            break
    assert caught, "no kill landed inside a FAISS save"
    facts = check_opens_and_agrees(index_dir, host)  # the old file is whole: in sync, no repair needed
    assert facts["chunks"] == 3000 and not facts["repaired"]
    run_cli(["rebuild", "-i", str(index_dir)], cwd=tmp_path, host=host)
    assert temp_files(index_dir) == []
