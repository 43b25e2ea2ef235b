"""Fault matrix, hostile input files: each is indexed or passed over with a reason, in bounded memory and time.

Every row indexes a folder holding one hostile file and one ordinary note through the real CLI,
in a child process whose peak RSS and wall time are measured (and whose address space is capped,
so a regression fails the test instead of exhausting the machine). Test files are generated in
temporary directories: sparse where they are large, and the 10,000-page PDF once per session.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

RSS_LIMIT_MB = 1024
SECONDS_LIMIT = 120  # generous: the shared CPU is often saturated; an idle machine takes a few seconds
ADDRESS_SPACE_CAP = 8 * 1024**3  # a child that tries to read a 2 GB file whole fails instead of swapping
NOTE = "Kingfishers dive from a perch to catch minnows in clear streams.\n"

# Runs the CLI as its own child and reports that child's peak RSS (KiB) and wall time.
_MEASURE = """
import json, resource, subprocess, sys, time
cap = int(sys.argv[1])
started = time.monotonic()
done = subprocess.run(sys.argv[2:], preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)))
print(json.dumps({"rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "seconds": time.monotonic() - started, "returncode": done.returncode}), file=sys.stderr)
"""


def index_measured(folder: Path, url: str, env: dict[str, str] | None = None) -> tuple[dict, dict, str]:
    """(report JSON, {"rss_mb", "seconds", "returncode"}, stderr) of `semsearch index FOLDER --json`."""
    full_env = {key: value for key, value in os.environ.items() if key != "SEMSEARCH_INDEX"}
    full_env.update({"OLLAMA_HOST": url, **(env or {})})
    command = [sys.executable, "-m", "semsearch", "index", str(folder), "-i", str(folder.parent / "idx"), "--json"]
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(ADDRESS_SPACE_CAP), *command], env=full_env,
                            capture_output=True, timeout=900)
    stderr = result.stderr.decode("utf-8", "replace")
    measured = json.loads(stderr.strip().splitlines()[-1])
    measured["rss_mb"] = measured.pop("rss_kb") / 1024
    print(f"\n{folder.name}: peak RSS {measured['rss_mb']:.0f} MB, {measured['seconds']:.1f} s")
    report = json.loads(result.stdout) if measured["returncode"] == 0 else {}
    return report, measured, stderr


def assert_bounded(measured: dict, stderr: str) -> None:
    assert measured["returncode"] == 0, stderr
    assert "Traceback" not in stderr
    assert measured["rss_mb"] < RSS_LIMIT_MB
    assert measured["seconds"] < SECONDS_LIMIT


def folder_with(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "note.txt").write_text(NOTE, encoding="utf-8")
    return folder


def reasons(report: dict) -> dict[str, str]:
    return {Path(problem["path"]).name: problem["reason"] for problem in report["problems"]}


def test_sparse_2gb_file_is_passed_over_as_too_large(tmp_path, ollama_server):
    folder = folder_with(tmp_path, "sparse")
    with open(folder / "huge.txt", "wb") as handle:
        handle.truncate(2 * 1024**3)
    report, measured, stderr = index_measured(folder, ollama_server.url)
    assert_bounded(measured, stderr)
    assert reasons(report)["huge.txt"].startswith("too large (2048 MB > 64 MB limit)")
    assert report["files_added"] == 1


def test_100mb_single_line_file_is_passed_over_unless_the_limit_allows_it(tmp_path, ollama_server):
    folder = folder_with(tmp_path, "one-line")
    with open(folder / "line.log", "wb") as handle:
        handle.write(b"x" * (100 * 1024**2))
    report, measured, stderr = index_measured(folder, ollama_server.url)
    assert_bounded(measured, stderr)
    assert reasons(report)["line.log"] == "too large (100 MB > 64 MB limit) — set SEMSEARCH_MAX_FILE_MB higher to index it"

    # The limit is the user's to move; a wrong value is one clear line.
    report, measured, stderr = index_measured(folder, ollama_server.url, {"SEMSEARCH_MAX_FILE_MB": "lots"})
    assert measured["returncode"] == 1 and "Traceback" not in stderr
    assert "SEMSEARCH_MAX_FILE_MB='lots' is not a size" in stderr


def _zip_bomb_docx(path: Path, unpacked_mb: int) -> None:
    """A valid Word file whose body part holds `unpacked_mb` MB of whitespace (a few hundred KB packed)."""
    docx = pytest.importorskip("docx")
    buffer = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("A bomb in a Word file.")
    document.save(buffer)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename != "word/document.xml":
                target.writestr(item, data)
                continue
            head, tail = data.split(b"<w:body>", 1)
            with target.open("word/document.xml", "w", force_zip64=True) as part:
                part.write(head + b"<w:body>")
                spaces = b" " * 1024**2
                for _ in range(unpacked_mb):
                    part.write(spaces)
                part.write(tail)


def test_zip_bomb_docx_is_refused_before_unpacking(tmp_path, ollama_server):
    folder = folder_with(tmp_path, "bomb")
    _zip_bomb_docx(folder / "bomb.docx", 300)
    assert (folder / "bomb.docx").stat().st_size < 5 * 1024**2
    report, measured, stderr = index_measured(folder, ollama_server.url)
    assert_bounded(measured, stderr)
    assert re.match(r"too large once unpacked \(30\d MB > 64 MB limit\)", reasons(report)["bomb.docx"])
    assert report["files_added"] == 1


@pytest.fixture(scope="session")
def empty_pdf_bytes() -> bytes:
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter()
    for _ in range(10_000):
        writer.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_pdf_of_10000_empty_pages_is_skipped_as_without_text(tmp_path, ollama_server, empty_pdf_bytes):
    folder = folder_with(tmp_path, "pdf")
    (folder / "empty.pdf").write_bytes(empty_pdf_bytes)
    report, measured, stderr = index_measured(folder, ollama_server.url)
    assert_bounded(measured, stderr)
    assert reasons(report)["empty.pdf"].startswith("no text layer in 10000 page(s)")
    assert report["files_skipped"] == 1 and report["files_added"] == 1


def test_html_nested_100000_levels_deep_is_indexed(tmp_path, ollama_server):
    folder = folder_with(tmp_path, "deep")
    depth = 100_000
    (folder / "deep.html").write_text(
        "<html><body>" + "<div>" * depth + "<p>Lighthouse keepers trimmed the wick at dusk.</p>"
        + "</div>" * depth + "</body></html>", encoding="utf-8")
    report, measured, stderr = index_measured(folder, ollama_server.url)
    assert_bounded(measured, stderr)
    assert report["files_added"] == 2 and not report["problems"]


def test_symlink_loops_are_reported_and_not_followed(tmp_path, ollama_server):
    folder = folder_with(tmp_path, "loops")
    (folder / "ping.txt").symlink_to(folder / "pong.txt")
    (folder / "pong.txt").symlink_to(folder / "ping.txt")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)
    report, measured, stderr = index_measured(folder, ollama_server.url)
    assert_bounded(measured, stderr)
    found = reasons(report)
    assert found["ping.txt"] == found["pong.txt"] == "cannot read: Too many levels of symbolic links"
    assert report["files_added"] == 1  # note.txt once, not again through sub/up


def test_file_name_with_invalid_utf8_is_passed_over_with_a_printable_name(tmp_path, ollama_server):
    folder = folder_with(tmp_path, "names")
    raw = os.fsencode(folder) + b"/caf\xe9-menu.txt"
    with open(raw, "wb") as handle:
        handle.write(b"Coffee and croissants.\n")
    report, measured, stderr = index_measured(folder, ollama_server.url)
    assert_bounded(measured, stderr)
    [problem] = report["problems"]
    assert problem["path"].endswith("caf\\xe9-menu.txt")
    assert problem["reason"] == "file name is not valid UTF-8 — rename the file to index it"
    assert report["files_added"] == 1
