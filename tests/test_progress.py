"""What a person sees while `semsearch index` runs: live progress on a terminal, Ctrl-C, a server
that goes away, and a summary whose numbers add up. Real subprocesses, a real pseudo-terminal,
the Ollama-protocol test server with a per-text delay."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path


from tests.ollama_server import OllamaTestServer
from tests.helpers import (
    assert_one_clean_line,
    cli_env,
    committed,
    count_answers,
    embedded,
    index_until_server_stops,
    run,
    write_notes,
)

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A subprocess whose stderr is a pseudo-terminal (120 columns); its output timestamped."""

    def __init__(self, args: list[str], *, cwd: Path, env: dict[str, str]):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
        self.started = time.monotonic()
        self.process = subprocess.Popen([sys.executable, "-m", "semsearch", *args], cwd=cwd, env=env,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        self.chunks: list[tuple[float, str]] = []
        self._master = master
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:
                return
            if not data:
                return
            self.chunks.append((time.monotonic(), data.decode("utf-8", "replace")))

    def first_time(self, pattern: str) -> float | None:
        text = ""
        for at, piece in list(self.chunks):
            text += ANSI.sub("", piece)
            if re.search(pattern, text):
                return at
        return None

    @property
    def text(self) -> str:
        return ANSI.sub("", "".join(piece for _, piece in list(self.chunks)))

    def wait(self, timeout: float = 600) -> str:
        stdout = self.process.communicate(timeout=timeout)[0].decode()
        self._reader.join(timeout=5)
        os.close(self._master)
        return stdout


def test_progress_shows_from_the_start_and_moves_on_a_terminal_and_nothing_on_a_pipe(tmp_path, ollama_server):
    write_notes(tmp_path / "notes", 40)
    answers = count_answers(ollama_server)
    ollama_server.delay_per_text = 0.25  # 2 s per batch of 8: the first vectors come late
    term = Terminal(["index", "notes", "--batch", "8"], cwd=tmp_path, env=cli_env(ollama_server.url))
    stdout = term.wait()
    assert term.process.returncode == 0, term.text
    assert "Indexed notes" in stdout
    first_answer = answers[0][0]
    shown = term.first_time(r"\d+/\d+")
    # Progress is on screen before the embedder has answered anything...
    assert shown is not None and shown < first_answer, term.text[-2000:]
    # ...and the chunk count climbs as vectors arrive, not in one jump at the end.
    counts = [int(n) for n in re.findall(r"chunks: (\d+)/", term.text)]
    climbing = sorted(set(counts))
    assert len(climbing) >= 4 and climbing[-1] == 40, climbing
    assert counts == sorted(counts)
    # The elapsed time shown is the wall time since the display appeared, not since some later update.
    elapsed = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in re.findall(r"elapsed (\d+):(\d\d):(\d\d)", term.text)]
    wall = answers[-1][0] - term.first_time(r"elapsed")
    assert elapsed and elapsed[-1] >= wall - 1.5, (elapsed[-3:], wall)
    assert re.search(r"\d+\.\d chunk/s", term.text)

    # On a pipe: no progress at all, only the summary.
    ollama_server.delay_per_text = 0.02
    (tmp_path / "notes" / "extra.md").write_text("# Extra\n\nOne more note about trains.\n", encoding="utf-8")
    piped = run(["index", "notes", "--batch", "8"], cwd=tmp_path, host=ollama_server.url)
    assert piped.stderr == "" and "\x1b" not in piped.stdout and "\r" not in piped.stdout
    assert piped.stdout.startswith("Indexed notes")


def test_ctrl_c_exits_within_a_second_keeps_embedded_batches_and_a_second_ctrl_c_is_immediate(tmp_path, ollama_server):
    write_notes(tmp_path / "notes", 96)
    answers = count_answers(ollama_server)
    ollama_server.delay_per_text = 0.15  # 2.4 s per request of 16 texts; three requests in flight
    process = subprocess.Popen([sys.executable, "-m", "semsearch", "index", "notes", "--batch", "16", "--json"],
                               cwd=tmp_path, env=cli_env(ollama_server.url), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(answers) < 2:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.5)  # mid-way through the next request
    answered = sum(texts for _, texts in answers)
    signalled = time.monotonic()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    exit_seconds = time.monotonic() - signalled
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert exit_seconds < 1.5, exit_seconds  # not waiting for the requests still with the server
    report = json.loads(stdout)
    assert report["interrupted"] is True
    # Every file's text was committed at once; every answered batch of vectors was committed too.
    assert report["files_added"] == committed(tmp_path / ".semsearch") == 96
    kept = embedded(tmp_path / ".semsearch")
    assert kept >= answered and kept + report["chunks_pending"] == 96 and report["chunks_pending"] > 0

    # A second Ctrl-C while the first is being handled ends the run at once, without a traceback.
    ollama_server.delay_per_text = 0.15
    process = subprocess.Popen([sys.executable, "-m", "semsearch", "index", "notes", "--batch", "16"],
                               cwd=tmp_path, env=cli_env(ollama_server.url), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    # Wait for this run's own first vectors: answers to the killed run's requests may still arrive.
    first_run_kept = embedded(tmp_path / ".semsearch")
    while embedded(tmp_path / ".semsearch") <= first_run_kept:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    assert time.monotonic() - signalled < 1.5

    # The next run continues: no file changed; it embeds only what was not committed, and ends with all.
    ollama_server.delay_per_text = 0
    before = embedded(tmp_path / ".semsearch")
    ollama_server.embed_texts.clear()
    report = json.loads(run(["index", "notes", "--json"], cwd=tmp_path, host=ollama_server.url).stdout)
    assert report["files_unchanged"] == 96 and report["chunks_embedded"] == 96 - before
    assert len(ollama_server.embed_texts) == 96 - before and report["chunks_pending"] == 0


def test_ollama_stopping_mid_run_says_what_was_kept_and_how_to_continue(tmp_path):
    write_notes(tmp_path / "notes", 64)
    server = OllamaTestServer().start()
    answers = count_answers(server)
    server.delay_per_text = 0.1
    result = index_until_server_stops(server, tmp_path, lambda: embedded(tmp_path / ".semsearch") >= 16)
    kept = embedded(tmp_path / ".semsearch")
    assert_one_clean_line(result, "cannot reach Ollama", "64 files indexed are kept and searchable by keyword",
                          f"{64 - kept} of 64 chunks wait for embeddings", "run the same command again")
    assert kept >= sum(texts for _, texts in answers) - 8 * 3  # at most the batches in flight are lost

    with OllamaTestServer() as again:
        report = json.loads(run(["index", "notes", "--json"], cwd=tmp_path, host=again.url).stdout)
        assert report["files_unchanged"] == 64 and len(again.embed_texts) == 64 - kept


def test_summary_counts_add_up_and_name_duplicate_text(tmp_path, ollama_server):
    folder = tmp_path / "docs"
    folder.mkdir()
    shared = "Longjing tea is pan-fired green tea from Hangzhou; brew it at about 80 degrees."
    (folder / "a.md").write_text(f"# A\n\n{shared}\n", encoding="utf-8")
    (folder / "b.md").write_text(f"# A\n\n{shared}\n", encoding="utf-8")  # same heading and text: same chunk
    (folder / "c.md").write_text("# C\n\nSourdough needs a lively starter fed twice a day.\n", encoding="utf-8")
    first = json.loads(run(["index", "docs", "--json"], cwd=tmp_path, host=ollama_server.url).stdout)
    assert (first["chunks_embedded"], first["chunks_duplicate"], first["chunks_cached"], first["chunks_kept"]) \
        == (2, 1, 0, 0)
    assert first["chunks_reused"] == 1 and first["chunks_total"] == 3  # the old key keeps its meaning

    (folder / "d.md").write_text("# C\n\nSourdough needs a lively starter fed twice a day.\n", encoding="utf-8")
    (folder / "e.md").write_text("# E\n\nA bicycle chain wants oil every few hundred kilometres.\n",
                                 encoding="utf-8")
    human = run(["index", "docs"], cwd=tmp_path, host=ollama_server.url).stdout
    line = next(text for text in human.splitlines() if text.startswith("Chunks:"))
    assert line.startswith("Chunks: 1 embedded + 1 reused from the index's cache + 3 kept from unchanged files "
                           "= 5 in the index"), line
    numbers = [int(n) for n in re.findall(r"(\d+) (?:embedded|identical|reused|kept)", line)]
    total = int(re.search(r"= (\d+) in the index", line).group(1))
    assert sum(numbers) == total


def test_binary_files_are_named_with_their_reason(tmp_path, ollama_server):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# Notes\n\nSourdough needs a lively starter.\n", encoding="utf-8")
    # A text suffix, but a compressed stream: no NUL byte in the first 8 KiB, not UTF-8 or GB18030.
    (folder / "archive.txt").write_bytes(bytes([0x1F, 0x8B, 0x08, 0x08]) + bytes(range(1, 256)) * 40)
    # A log padded with NUL bytes after 8 KiB of text (as a crashed writer leaves it).
    (folder / "crash.log").write_bytes(b"service started\n" * 600 + b"\x00" * 4096 + b"\xff\xfe\x01")
    # An unknown suffix that --include asks for: detected as binary, not just "unsupported".
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4)
    result = run(["index", "mixed", "--include", "*", "--json"], cwd=tmp_path, host=ollama_server.url)
    report = json.loads(result.stdout)
    reasons = {Path(p["path"]).name: p["reason"] for p in report["problems"]}
    assert reasons == {"archive.txt": "binary content", "crash.log": "binary content",
                       "photo.jpg": "binary content"}, reasons
    assert report["files_added"] == 1 and report["files_skipped"] == 3 and report["files_failed"] == 0
    human = run(["index", "mixed", "--include", "*", "-i", "again"], cwd=tmp_path, host=ollama_server.url)
    assert "3 skipped" in human.stdout
    for name in ("archive.txt", "crash.log", "photo.jpg"):
        assert f"{name}: binary content" in human.stderr


def test_eval_shows_its_progress_before_the_first_documents_are_embedded(tmp_path, ollama_server):
    dataset = Path(__file__).parent / "data" / "beir-mini"
    answers = count_answers(ollama_server)
    ollama_server.delay_per_text = 0.3  # the 12 documents take about 4 s to embed
    term = Terminal(["eval", str(dataset), "-i", str(tmp_path / "eval-index")], cwd=tmp_path,
                    env=cli_env(ollama_server.url))
    stdout = term.wait()
    assert term.process.returncode == 0, term.text
    assert "nDCG@10" in stdout
    shown = term.first_time(r"documents indexed: 0/12")
    assert shown is not None and shown < answers[0][0], term.text[-2000:]
    assert "queries run: 6/6" in term.text
