"""Read-only indexes (a shared mount, a shipped index): search and status work, writes say why not.

As root (CI), permission bits do not stop a write, so the index directory is made read-only by a
read-only bind mount, and one test drops privileges to `nobody` instead; as another user, by
permission bits. Every test first proves that the process really cannot write there.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import faiss
import pytest

from semsearch import Index
from semsearch.errors import IndexReadOnlyError

from tests.rag_corpus import build_index

NOBODY = 65534
CHILD_TIMEOUT = 300
IS_ROOT = os.geteuid() == 0


@contextmanager
def read_only(directory: Path):
    """`directory` made unwritable for this process (and its children) for the duration."""
    if IS_ROOT:
        subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(directory)], check=True)
            yield directory
        finally:
            if subprocess.run(["umount", str(directory)]).returncode != 0:
                subprocess.run(["umount", "-l", str(directory)], check=True)
    else:
        modes = {path: path.stat().st_mode for path in [directory, *directory.iterdir()]}
        for path in directory.iterdir():
            path.chmod(stat.S_IMODE(modes[path]) & ~0o222)
        directory.chmod(0o555)
        try:
            yield directory
        finally:
            for path, mode in modes.items():
                path.chmod(stat.S_IMODE(mode))


def assert_unwritable(directory: Path) -> None:
    with pytest.raises(OSError):
        (directory / "probe").write_text("x")
    with pytest.raises(OSError):
        open(directory / "semsearch.db", "r+b").close()


def files(directory: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in directory.iterdir()}


@pytest.fixture
def built(tmp_path, ollama_server):
    """A closed index over the small RAG corpus: (index directory, corpus folder)."""
    index, corpus = build_index(tmp_path, ollama_server.url)
    index.close()
    assert sorted(files(index.path)) == ["semsearch.db", "vectors.faiss", "write.lock"]  # WAL folded in on close
    return index.path, corpus


def test_search_and_status_work_on_a_read_only_index(built, ollama_server):
    path, corpus = built
    with read_only(path):
        assert_unwritable(path)
        before = files(path)
        with Index.open(path, ollama_host=ollama_server.url) as index:
            assert index.read_only
            status = index.status()
            assert status.documents == 4 and status.in_sync
            hits = index.search("how to fix a flat bicycle tire", k=3)
            assert "flat-tire" in hits[0].path
            hybrid = index.search("炒糖色", k=2, mode="hybrid", paths=["corpus/cooking/*"])
            assert hybrid and all("hongshao-rou" in hit.path for hit in hybrid)
            context = index.context("why is Japanese green tea grassy", max_tokens=200)
            assert "green-tea.md" in context.text
            assert index.repaired is None
        assert files(path) == before  # no lock file, no -wal/-shm, nothing rewritten


def test_stale_faiss_is_repaired_in_memory_only(built, ollama_server):
    path, _ = built
    (path / "vectors.faiss").unlink()
    with read_only(path):
        assert_unwritable(path)
        with Index.open(path, ollama_host=ollama_server.url) as index:
            hits = index.search("green tea steamed in Japan", k=2)
            assert "green-tea" in hits[0].path
            assert "in memory" in index.repaired and "read-only" in index.repaired
        assert not (path / "vectors.faiss").exists()


def test_writes_to_a_read_only_index_say_the_directory_is_read_only(built, ollama_server):
    path, corpus = built
    embedded = len(ollama_server.embed_texts)
    with read_only(path):
        assert_unwritable(path)
        with Index.open(path, ollama_host=ollama_server.url) as index:
            for write in (lambda: index.index([corpus]), lambda: index.rebuild(),
                          lambda: index.add_texts([{"id": "n1", "text": "a new note"}]),
                          lambda: index.delete_texts(["n1"])):
                with pytest.raises(IndexReadOnlyError, match="is read-only"):
                    write()
    assert len(ollama_server.embed_texts) == embedded  # refused before any embedding work


def test_cli_on_a_read_only_index(built, ollama_server):
    path, corpus = built
    env = {key: value for key, value in os.environ.items() if key != "SEMSEARCH_INDEX"}
    env["OLLAMA_HOST"] = ollama_server.url

    def semsearch(*args):
        return subprocess.run([sys.executable, "-m", "semsearch", *args, "-i", str(path)], env=env,
                              capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)

    with read_only(path):
        assert_unwritable(path)
        status = semsearch("status")
        assert status.returncode == 0, status.stderr
        assert "Documents:" in status.stdout and "4" in status.stdout
        searched = semsearch("search", "how to fix a flat bicycle tire", "-k", "2")
        assert searched.returncode == 0, searched.stderr
        assert "flat-tire.md" in searched.stdout
        for args in (("index", str(corpus)), ("rebuild",)):
            result = semsearch(*args)
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert result.returncode == 1 and len(lines) == 1, result.stderr
            assert "read-only" in lines[0] and "Traceback" not in result.stderr


@pytest.fixture
def shared_dir():
    """A directory other users can read (pytest's own tmp dirs are private to their owner)."""
    directory = Path(tempfile.mkdtemp(prefix="semsearch-shared-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def in_child_as_reader(fn) -> dict:
    """Run `fn()` in a forked child that cannot write the index (as `nobody` when root); its result."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report everything through the pipe, never return into pytest
        code = 1
        try:
            os.close(read_end)
            # libgomp's thread pool does not survive fork(): a parallel FAISS search would wait forever.
            faiss.omp_set_num_threads(1)
            if IS_ROOT:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            result = fn()
            os.write(write_end, json.dumps(result).encode())
            code = 0
        except BaseException as exc:  # noqa: BLE001 - the parent shows it
            os.write(write_end, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    output = b""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while True:
            ready, _, _ = select.select([pipe], [], [], CHILD_TIMEOUT)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"the reader child did not finish in {CHILD_TIMEOUT} s")
            piece = pipe.read(65536)
            if not piece:
                break
            output += piece
    _, status = os.waitpid(pid, 0)
    result = json.loads(output)
    assert os.waitstatus_to_exitcode(status) == 0, result
    return result


def test_another_user_can_search_but_not_write(shared_dir, ollama_server):
    index, corpus = build_index(shared_dir, ollama_server.url)
    index.search("warm up every import before the fork", k=1, mode="hybrid")  # the child may not read them
    index.close()
    path = index.path
    if not IS_ROOT:
        path.chmod(0o555)

    def reader() -> dict:
        try:
            (path / "probe").write_text("x")
            wrote = True
        except OSError:
            wrote = False
        with Index.open(path, ollama_host=ollama_server.url) as shared:
            hits = shared.search("红烧肉怎么炒糖色", k=1, mode="hybrid")
            try:
                shared.add_texts([{"id": "n1", "text": "a new note"}])
                refused = ""
            except IndexReadOnlyError as exc:
                refused = str(exc)
            return {"wrote": wrote, "read_only": shared.read_only, "top": hits[0].path, "refused": refused,
                    "uid": os.geteuid()}

    try:
        result = in_child_as_reader(reader)
    finally:
        path.chmod(0o755)
    assert result["wrote"] is False and result["uid"] == (NOBODY if IS_ROOT else os.geteuid())
    assert result["read_only"] and result["top"].endswith("cooking/hongshao-rou.md")
    assert "is read-only" in result["refused"]
    assert sorted(files(path)) == ["semsearch.db", "vectors.faiss", "write.lock"]


def test_an_index_left_with_a_write_ahead_log(tmp_path, ollama_server):
    index, _ = build_index(tmp_path, ollama_server.url)
    try:
        index.add_texts([{"id": "note-1", "text": "The lighthouse keeper logs the ships at dawn."}])
        # Copies taken while the writer is still open: the last write is only in semsearch.db-wal.
        with_shm, without_shm = tmp_path / "with-shm", tmp_path / "without-shm"
        shutil.copytree(index.path, with_shm)
        shutil.copytree(index.path, without_shm, ignore=shutil.ignore_patterns("*-shm"))
    finally:
        index.close()
    assert (without_shm / "semsearch.db-wal").stat().st_size > 0
    immutable = sqlite3.connect(f"{(without_shm / 'semsearch.db').as_uri()}?immutable=1", uri=True)
    try:  # reading the database file alone would lose the last write (or everything, not yet checkpointed)
        assert immutable.execute("SELECT count(*) FROM documents WHERE relpath = 'note-1'").fetchone()[0] == 0
    except sqlite3.OperationalError as exc:
        assert "no such table" in str(exc)
    finally:
        immutable.close()

    with read_only(with_shm):
        assert_unwritable(with_shm)
        with Index.open(with_shm, ollama_host=ollama_server.url) as copy:
            hits = copy.search("lighthouse keeper", k=1, mode="keyword")
            assert hits and hits[0].path == "note-1"

    with read_only(without_shm):
        assert_unwritable(without_shm)
        with pytest.raises(IndexReadOnlyError) as raised:
            Index.open(without_shm, ollama_host=ollama_server.url)
        message = str(raised.value)
        assert "semsearch.db-wal" in message and "writable" in message and "\n" not in message


def test_creating_an_index_in_a_read_only_place_says_so(tmp_path):
    place = tmp_path / "mounted"
    place.mkdir()
    with read_only(place):
        with pytest.raises(OSError):
            (place / "probe").write_text("x")
        with pytest.raises(IndexReadOnlyError, match="cannot create the index directory"):
            Index.open(place / ".semsearch")
        with pytest.raises(IndexReadOnlyError, match="the directory is read-only"):
            Index.open(place)
        assert list(place.iterdir()) == []
