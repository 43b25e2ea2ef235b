"""PDF, DOCX, notebooks and Markdown front matter: extraction, parts (pages, cells) and missing extras."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from semsearch import Index
from semsearch.chunking import chunk
from semsearch.errors import ExtractError, NoTextError
from semsearch.extract import extract, is_supported
from semsearch.extract.markdown import parse_markdown
from semsearch.store import SCHEMA_VERSION
from semsearch.types import SourceFile
from tests.documents import (
    FRONT_MATTER_MD,
    PDF_PAGES,
    write_docx,
    write_encrypted_pdf,
    write_image_only_pdf,
    write_notebook,
    write_mixed_folder,
    write_pdf,
)
from tests.helpers import run


def source(path) -> SourceFile:
    stat = path.stat()
    return SourceFile(path=path, root=path.parent, relpath=path.name, size=stat.st_size, mtime_ns=stat.st_mtime_ns)


def test_new_formats_are_claimed_by_suffix(tmp_path):
    for name in ("a.pdf", "b.DOCX", "c.ipynb"):
        assert is_supported(tmp_path / name)


# -- PDF -----------------------------------------------------------------------------------------

def test_pdf_text_per_page_with_page_starts_and_lines_within_the_page(tmp_path):
    document = extract(source(write_pdf(tmp_path / "l.pdf", title="Lighthouses")))
    assert document.extractor == "pdf" and document.part_kind == "page"
    assert document.title == "Lighthouses" and document.metadata["pages"] == 3
    assert len(document.parts) == 3
    for number, (start, page_text) in enumerate(zip(document.parts, PDF_PAGES), start=1):
        first_line = page_text.split("\n", 1)[0]
        assert document.text[start:].startswith(first_line), number
    # Line numbers restart on every page.
    lines = document.text.split("\n")
    third = document.text[: document.parts[2]].count("\n")
    assert lines[third].startswith("Retirement") and document.source_lines[third] == 1


def test_pdf_chunks_never_straddle_pages_and_record_theirs(tmp_path):
    document = extract(source(write_pdf(tmp_path / "l.pdf")))
    pieces = chunk(document, max_tokens=400, overlap_tokens=40)  # the whole PDF would fit one chunk
    assert [piece.part for piece in pieces] == [1, 2, 3]
    assert "Automation" in pieces[2].text and "Automation" not in pieces[1].text
    assert (pieces[2].line_start, pieces[2].line_end) == (1, 3)


def test_pdf_outline_becomes_headings(tmp_path):
    document = extract(source(write_pdf(tmp_path / "l.pdf", outline=True)))
    assert [h.title for h in document.headings] == [page.split("\n", 1)[0] for page in PDF_PAGES]
    assert [h.char_start for h in document.headings] == list(document.parts)


def test_password_protected_pdf_is_reported_as_encrypted(tmp_path):
    with pytest.raises(NoTextError, match="encrypted PDF"):
        extract(source(write_encrypted_pdf(tmp_path / "secret.pdf")))


def test_pdf_encrypted_with_an_empty_user_password_is_read(tmp_path):
    document = extract(source(write_encrypted_pdf(tmp_path / "open.pdf", user_password="")))
    assert "harbour budget" in document.text


def test_image_only_pdf_is_reported_as_having_no_text_layer(tmp_path):
    with pytest.raises(NoTextError, match="no text layer in 2 page"):
        extract(source(write_image_only_pdf(tmp_path / "scan.pdf")))


def test_broken_pdf_is_an_extract_error_not_a_crash(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    with pytest.raises(ExtractError):
        extract(source(path))


# -- DOCX ----------------------------------------------------------------------------------------

def test_docx_headings_feed_the_heading_path_and_tables_become_text(tmp_path):
    document = extract(source(write_docx(tmp_path / "handbook.docx")))
    assert document.extractor == "docx"
    assert document.title == "Harbour handbook" and document.metadata["author"] == "Port office"
    assert "Boat length | Fee per night" in document.text and "under 8 m | 12 euro" in document.text
    pieces = chunk(document, max_tokens=400, overlap_tokens=0)
    by_text = {piece.heading_path: piece.text for piece in pieces}
    assert "Mooring fees are paid" in by_text[("Moorings", "Fees")]
    assert "12 euro" in by_text[("Moorings", "Fees")]
    assert "Life jackets" in by_text[("Safety",)]


def test_docx_lines_are_paragraph_numbers(tmp_path):
    document = extract(source(write_docx(tmp_path / "handbook.docx")))
    fees = next(piece for piece in chunk(document, max_tokens=400, overlap_tokens=0)
                if piece.heading_path == ("Moorings", "Fees"))
    # Title, intro, Moorings, pontoon, Fees = paragraphs 1-5; then the fee text and three table rows.
    assert (fees.line_start, fees.line_end) == (5, 9)


# -- notebooks -----------------------------------------------------------------------------------

def test_notebook_cells_are_parts_with_lines_within_the_cell(tmp_path):
    document = extract(source(write_notebook(tmp_path / "tides.ipynb")))
    assert document.extractor == "notebook" and document.part_kind == "cell"
    assert document.title == "Tide analysis" and document.metadata == {"language": "python"}
    assert len(document.parts) == 5  # the empty third cell keeps the numbering
    assert "OUTPUT NOT INDEXED" not in document.text
    pieces = chunk(document, max_tokens=400, overlap_tokens=0)
    assert [piece.part for piece in pieces] == [1, 2, 4, 5]
    last = pieces[-1]
    assert last.text.startswith("spring = tides") and last.heading_path == ("Tide analysis", "Spring tides")
    assert (last.line_start, last.line_end) == (2, 3)  # the cell's first line is blank


def test_invalid_notebook_json_is_reported(tmp_path):
    path = tmp_path / "bad.ipynb"
    path.write_text('{"cells": [', encoding="utf-8")
    with pytest.raises(ExtractError, match="not a valid notebook"):
        extract(source(path))


# -- Markdown front matter -----------------------------------------------------------------------

def test_yaml_front_matter_becomes_json_safe_metadata():
    document = parse_markdown(FRONT_MATTER_MD)
    assert document.title == "Ferry timetable"
    assert document.metadata == {"title": "Ferry timetable", "tags": ["ferry", "timetable"], "year": 2024,
                                 "draft": False, "updated": "2024-05-01"}
    json.dumps(document.metadata)
    assert document.text == FRONT_MATTER_MD  # lines stay file lines


def test_toml_front_matter_and_broken_yaml():
    assert parse_markdown('+++\ntitle = "T"\ntags = ["a"]\n+++\nbody\n').metadata == {"title": "T", "tags": ["a"]}
    broken = parse_markdown("---\ntitle: Broken\ntags: [unclosed\n---\nbody\n")
    assert broken.metadata == {} and broken.title == "Broken"


# -- missing extras ------------------------------------------------------------------------------

@pytest.mark.parametrize("module, suffix, extra", [("pypdf", "pdf", "pdf"), ("docx", "docx", "docx")])
def test_missing_extra_is_one_reason_naming_the_pip_command(tmp_path, monkeypatch, module, suffix, extra):
    path = tmp_path / f"file.{suffix}"
    write_pdf(path) if suffix == "pdf" else write_docx(path)
    monkeypatch.setitem(sys.modules, module, None)  # what `import` sees when the package is absent
    with pytest.raises(ExtractError) as caught:
        extract(source(path))
    message = str(caught.value)
    assert f"pip install 'semsearch[{extra}]'" in message and "\n" not in message


# -- end to end: a folder of the documents people have ------------------------------------------

def test_mixed_folder_indexes_cites_pages_and_cells_and_filters_by_front_matter(tmp_path, ollama_server):
    folder = write_mixed_folder(tmp_path / "docs")
    write_encrypted_pdf(folder / "secret.pdf")
    write_image_only_pdf(folder / "scan.pdf")
    host = ollama_server.url
    result = run(["index", "docs", "--json"], cwd=tmp_path, host=host)
    report = json.loads(result.stdout)
    assert (report["files_added"], report["files_failed"], report["files_skipped"]) == (5, 0, 2)
    reasons = {Path(p["path"]).name: p["reason"] for p in report["problems"]}
    assert reasons["secret.pdf"].startswith("encrypted PDF") and reasons["scan.pdf"].startswith("no text layer")

    human = run(["search", "when were lighthouse keepers replaced by automation", "-k", "1"], cwd=tmp_path,
                host=host).stdout
    # The header cites the line of the snippet shown under it, inside the page.
    assert human.splitlines()[0].split()[2] == "docs/lighthouses.pdf#page=3:2"
    assert "Automation replaced the last resident keepers" in human.splitlines()[1]
    hit = json.loads(run(["search", "--json", "-k", "1", "automation replaced the resident keepers"],
                         cwd=tmp_path, host=host).stdout)[0]
    assert (hit["path"], hit["page"], hit["cell"], hit["line_start"]) == ("docs/lighthouses.pdf", 3, None, 1)

    # Front matter filters from the command line: a list member and a YAML number, given as text.
    hits = json.loads(run(["search", "--json", "lighthouse", "--where", "tags=ferry", "--where", "year=2024"],
                          cwd=tmp_path, host=host).stdout)
    assert {h["path"] for h in hits} == {"docs/ferry.md"}
    bad = run(["search", "ferry", "--where", "tags"], cwd=tmp_path, host=host, check=False)
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr

    with Index.open(tmp_path / ".semsearch", ollama_host=host) as index:
        cell = index.search("highest tide after the new moon", k=1)[0]
        assert Path(cell.path).name == "tides.ipynb" and cell.cell in (4, 5) and cell.page is None
        assert cell.heading_path == ("Tide analysis", "Spring tides") and "#cell=" in cell.citation
        fees = index.search("how much does mooring cost per night", k=1)[0]
        assert Path(fees.path).name == "handbook.docx" and fees.heading_path == ("Moorings", "Fees")
        for where in ({"draft": "false"}, {"draft": False}, {"tags": ["bus", "timetable"]}, {"year": 2024}):
            assert {Path(h.path).name for h in index.search("lighthouse", where=where)} == {"ferry.md"}, where
        assert index.search("ferry", where={"tags": "bus"}) == []


def test_an_index_from_before_pages_is_migrated_and_keeps_answering(tmp_path, ollama_server):
    folder = write_mixed_folder(tmp_path / "docs")
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        index.index([folder])
    with sqlite3.connect(tmp_path / "idx" / "semsearch.db") as db:  # what schema 1 looked like
        db.execute("ALTER TABLE chunks DROP COLUMN part")
        db.execute("ALTER TABLE documents DROP COLUMN part_kind")
        # Schema 1 keyed documents by (indexed root, path relative to it).
        db.execute("ALTER TABLE documents RENAME COLUMN path TO relpath")
        db.execute("ALTER TABLE documents ADD COLUMN root TEXT NOT NULL DEFAULT ''")
        db.execute("UPDATE documents SET root = ?", (str(tmp_path.resolve()),))
        db.execute("PRAGMA user_version=1")
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        assert index.status().schema_version == SCHEMA_VERSION
        before = index.search("when were lighthouse keepers replaced by automation", k=1)[0]
        assert before.path.endswith("lighthouses.pdf") and before.page is None  # old rows have no page
        (folder / "lighthouses.pdf").touch()
        write_pdf(folder / "lighthouses.pdf", PDF_PAGES[:2] + [PDF_PAGES[2] + "\nThe last keeper left in 1998."])
        index.index([folder])
        after = index.search("when were lighthouse keepers replaced by automation", k=1)[0]
        assert after.page == 3 and after.citation.endswith("lighthouses.pdf#page=3:1-4")
