"""Disk full: a write that hits ENOSPC fails with one line naming the disk and leaves a usable index.

The index lives on a size-limited tmpfs, filled up to a chosen margin, so SQLite (its database
and WAL growth) or the FAISS save runs out of space for real. Mounting needs root, as in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.faults import (
    check_opens_and_agrees,
    instant_ollama,  # noqa: F401  (fixture)
    integrity,
    run_cli,
    snapshot,
    status_json,
    temp_files,
)

QUERIES = ("notes about tea", "bicycles and rivers")
DISK_FULL = "no space left on the device holding"


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MB tmpfs at tmp_path/disk (root only; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (CI runs these as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` with one file so that about `leave` bytes stay free."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return filler


def write_notes(folder: Path, start: int, count: int, words: int = 40) -> None:
    folder.mkdir(exist_ok=True)
    topics = ["tea", "bread", "bicycles", "stars", "rivers", "gardens", "trains", "music"]
    for i in range(start, start + count):
        topic = topics[i % len(topics)]
        body = " ".join(f"{topic}{(i * 31 + j) % 97}" for j in range(words))
        (folder / f"note-{i:04d}.md").write_text(f"# Note {i} about {topic}\n\n{body}\n", encoding="utf-8")


def assert_disk_full_line(result: subprocess.CompletedProcess, index_dir: Path) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert DISK_FULL in lines[0] and str(index_dir) in lines[0], lines[0]
    assert "free space and run the same command again" in lines[0]


def test_sqlite_running_out_of_space_rolls_back_the_batch(tmp_path, small_disk, instant_ollama):
    host = instant_ollama
    notes = tmp_path / "notes"
    write_notes(notes, 0, 10)
    index_dir = small_disk / "index"
    run_cli(["index", str(notes), "-i", str(index_dir)], cwd=tmp_path, host=host)
    before = snapshot(index_dir, host, QUERIES)
    assert len(before["documents"]) == 10 and before["in_sync"]

    # 300 long notes need megabytes of WAL; leave a few hundred kilobytes.
    write_notes(notes, 10, 300, words=400)
    filler = fill(small_disk, 400_000)
    result = run_cli(["index", str(notes), "-i", str(index_dir), "--batch", "100000"], cwd=tmp_path, host=host,
                     check=False)
    assert_disk_full_line(result, index_dir)
    assert integrity(index_dir) == "ok"
    assert snapshot(index_dir, host, QUERIES) == before  # the batch left no trace; opens, answers, in sync
    assert temp_files(index_dir) == []

    filler.unlink()
    run_cli(["index", str(notes), "-i", str(index_dir)], cwd=tmp_path, host=host)
    status = status_json(index_dir, tmp_path, host)
    assert status["documents"] == 310 and status["in_sync"]


def _large_index(tmp_path: Path, host: str, disk: Path) -> Path:
    """An index of 3000 short texts (about 4.6 MB of FAISS file) built off the small disk, copied onto it."""
    from semsearch import Index

    built = tmp_path / "built"
    with Index.open(built, ollama_host=host) as index:
        index.add_texts({"id": f"t{i}", "text": f"Text {i} about tea number {i * 13}."} for i in range(3000))
    shutil.copytree(built, disk / "index")
    return disk / "index"


def test_faiss_save_running_out_of_space_keeps_the_previous_file(tmp_path, small_disk, instant_ollama):
    host = instant_ollama
    index_dir = _large_index(tmp_path, host, small_disk)
    faiss_bytes = (index_dir / "vectors.faiss").stat().st_size
    assert faiss_bytes > 4_000_000
    before = snapshot(index_dir, host, QUERIES)
    status_before = status_json(index_dir, tmp_path, host)
    assert status_before["in_sync"] and status_before["faiss_type"] == "flat"

    # Converting writes a whole new FAISS file beside the old one: it cannot fit in 1 MB.
    filler = fill(small_disk, 1_000_000)
    result = run_cli(["rebuild", "--index-type", "hnsw", "-i", str(index_dir)], cwd=tmp_path, host=host,
                     check=False)
    assert_disk_full_line(result, index_dir)
    assert temp_files(index_dir) == []
    assert status_json(index_dir, tmp_path, host) == status_before  # same type, still in sync
    assert snapshot(index_dir, host, QUERIES) == before

    # Adding one text fits in SQLite but not the FAISS save that follows it: SQLite keeps the
    # committed text (it is the source of truth), the old FAISS file stays whole, and opening
    # the index rebuilds its vectors in memory, so searches see the new text at once.
    notes = tmp_path / "notes"
    write_notes(notes, 0, 1)
    result = run_cli(["index", str(notes), "-i", str(index_dir)], cwd=tmp_path, host=host, check=False)
    assert_disk_full_line(result, index_dir)
    assert temp_files(index_dir) == []
    assert integrity(index_dir) == "ok"
    assert (index_dir / "vectors.faiss").stat().st_size == faiss_bytes
    hits = run_cli(["search", "--json", "--path", "*note-0000.md", "-i", str(index_dir), "tea"], cwd=tmp_path,
                   host=host)
    assert "note-0000.md" in hits.stdout  # the vector search answers (rebuilt in memory) while the disk is full

    filler.unlink()
    run_cli(["index", str(notes), "-i", str(index_dir)], cwd=tmp_path, host=host)
    run_cli(["rebuild", "--index-type", "hnsw", "-i", str(index_dir)], cwd=tmp_path, host=host)
    facts = check_opens_and_agrees(index_dir, host)
    assert facts["documents"] == 3001 and facts["faiss_type"] == "hnsw" and not facts["repaired"]
