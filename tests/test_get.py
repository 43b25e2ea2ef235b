"""`Index.get`: a document or a line range of it, by the path or citation search hits show."""

from __future__ import annotations

import os

import pytest

from semsearch.errors import DocumentNotFoundError

from tests.documents import PDF_PAGES
from tests.rag_corpus import FILES


def test_get_by_a_hits_citation_returns_exactly_those_lines(rag_index):
    index, corpus = rag_index
    hit = index.search("Japanese green tea steamed", k=1)[0]
    got = index.get(hit.citation)
    lines = (corpus / "tea" / "green-tea.md").read_text(encoding="utf-8").splitlines()
    assert got.text == "\n".join(lines[hit.line_start - 1:hit.line_end])
    assert got.citation == hit.citation and got.path == hit.path
    assert (got.line_start, got.line_end) == (hit.line_start, hit.line_end)


def test_get_a_whole_document_and_a_range_across_chunks(rag_index):
    index, corpus = rag_index
    path = corpus.resolve() / "cycling" / "flat-tire.md"
    whole = index.get(str(path))
    source = FILES["cycling/flat-tire.md"]
    assert whole.text == source.strip("\n") and whole.line_start == 1
    assert whole.last_line == len(source.strip("\n").splitlines())
    assert whole.citation == f"{path}:1-{whole.last_line}"
    lines = source.splitlines()
    span = index.get(f"{path}:3-9")  # several overlapping chunks and the blank lines between them
    assert span.text == "\n".join(lines[2:9]) and span.citation == f"{path}:3-9"
    tail = index.get(str(path), line_start=11, line_end=500)
    assert tail.text == "\n".join(lines[10:]).strip("\n") and tail.line_end == whole.last_line


def test_get_resolves_relative_paths_from_the_current_or_home_directory(rag_index, monkeypatch, tmp_path):
    index, corpus = rag_index
    expected = index.get(str(corpus.resolve() / "cooking" / "hongshao-rou.md")).text
    monkeypatch.chdir(corpus)
    assert index.get("cooking/hongshao-rou.md:3").text == expected.splitlines()[2]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # The index lives in tmp_path/idx, so its home is tmp_path: paths relative to it work too.
    assert index.get(os.path.join("corpus", "cooking", "hongshao-rou.md")).text == expected


def test_get_an_added_text_by_its_id(rag_index):
    index, _ = rag_index
    index.add_texts([{"id": "faq:7", "text": "Line one.\nLine two.\nLine three."}])
    assert index.get("faq:7").text == "Line one.\nLine two.\nLine three."
    assert index.get("faq:7").citation == "faq:7"
    assert index.get("faq:7:2").text == "Line two."


def test_get_says_what_is_missing(rag_index):
    index, corpus = rag_index
    with pytest.raises(DocumentNotFoundError, match="no document 'nowhere.md'"):
        index.get("nowhere.md:1-3")
    with pytest.raises(DocumentNotFoundError, match="outside the indexed text"):
        index.get(f"{corpus.resolve() / 'tea' / 'green-tea.md'}:90-95")


def test_get_a_page_of_a_pdf_by_its_citation(tmp_path, ollama_server):
    from semsearch import Index
    from semsearch.errors import ConfigError
    from tests.documents import write_pdf

    docs = tmp_path / "docs"
    docs.mkdir()
    pdf = write_pdf(docs / "lighthouses.pdf").resolve()
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        index.index([docs])
        hit = index.search("when were lighthouse keepers replaced by automation", k=1)[0]
        assert hit.page == 3
        page = index.get(f"{pdf}#page=3")
        assert page.part == 3 and page.text.splitlines()[0] == "Retirement of keepers"
        assert page.citation == f"{pdf}#page=3:1-{page.last_line}" and page.last_line == 3
        assert index.get(hit.citation).text.splitlines()[0] in page.text
        line = index.get(f"{pdf}#page=2:1")
        assert line.text == "Ships and signals" and line.citation == f"{pdf}#page=2:1"
        whole = index.get(str(pdf))
        assert all(text.split("\n", 1)[0] in whole.text for text in PDF_PAGES)
        with pytest.raises(ConfigError, match="count within each page"):
            index.get(f"{pdf}:1-2")
