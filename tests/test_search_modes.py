"""Keyword (FTS5 + CJK analysis), hybrid and filtered search through the Index library, and snippets."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from semsearch import Index, TextItem
from semsearch.cli import cli
from semsearch.snippets import sentences, snippet

CHINESE = {
    "tea-1": "我每天早上喝一杯绿茶。",
    "tea-2": "红茶是全发酵茶，味道浓郁。",
    "coffee-1": "意式咖啡要用细研磨的咖啡豆。",
    "coffee-2": "他在咖啡馆里读书。",
    "noodles": "兰州拉面的汤很清。",
    "river": "长江是中国最长的河流。",
    "football": "2013年于乐转会到了深圳红钻。",
}


@pytest.fixture
def index(tmp_path, ollama_server):
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as opened:
        yield opened


@pytest.fixture
def chinese(index):
    index.add_texts(TextItem(key, text) for key, text in CHINESE.items())
    return index


@pytest.mark.parametrize("query", ["茶", "咖啡", "长江"])
def test_one_and_two_character_chinese_keyword_queries_find_exactly_the_passages_containing_them(chinese, query):
    hits = chinese.search(query, k=10, mode="keyword")
    expected = {key for key, text in CHINESE.items() if query in text}
    assert {hit.path for hit in hits} == expected
    assert all(query in hit.text for hit in hits)


def test_a_chinese_word_glued_to_digits_is_still_found(chinese):
    hits = chinese.search("于乐", k=3, mode="keyword")
    assert [hit.path for hit in hits] == ["football"]


def test_english_keyword_search_matches_inflected_forms(index):
    index.add_texts([TextItem("runs", "She runs marathons every spring."),
                     TextItem("tea", "Green tea is not oxidised.")])
    assert [hit.path for hit in index.search("running", k=5, mode="keyword")] == ["runs"]


def test_keyword_search_with_no_searchable_terms_returns_nothing(chinese):
    assert chinese.search("？！…", k=5, mode="keyword") == []


# -- filters inside retrieval ----------------------------------------------------------------

@pytest.fixture
def mixed(index):
    """30 passages about tea; the 15 in `archive` say less about green tea than the 15 in `current`."""
    items = []
    for i in range(15):
        items.append(TextItem(f"current/{i:02}", f"Green tea note {i}: green tea leaves, green tea brewing, green tea.",
                              metadata={"shelf": "current"}))
        items.append(TextItem(f"archive/{i:02}", f"Archive note {i} mentions green tea once among other drinks.",
                              metadata={"shelf": "archive"}))
    index.add_texts(items)
    return index


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_a_metadata_filter_matching_k_or_more_chunks_returns_exactly_k_matching_hits(mixed, mode):
    unfiltered = mixed.search("green tea leaves brewing", k=10, mode=mode)
    assert any(hit.metadata["shelf"] == "current" for hit in unfiltered)  # a global top-k would miss archive
    hits = mixed.search("green tea leaves brewing", k=10, mode=mode, where={"shelf": "archive"})
    assert len(hits) == 10
    assert all(hit.metadata["shelf"] == "archive" for hit in hits)
    assert [hit.rank for hit in hits] == list(range(1, 11))


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_a_path_glob_filter_matching_k_or_more_chunks_returns_exactly_k_matching_hits(mixed, mode):
    hits = mixed.search("green tea", k=12, mode=mode, paths=["archive/*"])
    assert len(hits) == 12
    assert all(hit.path.startswith("archive/") for hit in hits)


def test_a_filter_matching_fewer_than_k_chunks_returns_only_those(mixed):
    hits = mixed.search("green tea", k=10, mode="hybrid", paths=["archive/0[0-2]"])
    assert sorted(hit.path for hit in hits) == ["archive/00", "archive/01", "archive/02"]


def test_an_index_analysed_the_old_way_is_reanalysed_for_keyword_search(tmp_path, ollama_server):
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        index.add_texts([TextItem("football", CHINESE["football"])])
    with sqlite3.connect(tmp_path / "idx" / "semsearch.db") as conn:  # as an older version left it
        conn.execute("DELETE FROM chunks_fts")
        conn.execute("UPDATE meta SET value = 'old' WHERE key = 'keyword_analysis'")
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        assert [hit.path for hit in index.search("于乐", mode="keyword")] == ["football"]


# -- snippets --------------------------------------------------------------------------------

def test_sentences_split_at_western_and_cjk_terminators():
    text = "First one. Second one!\n第三句。第四句？"
    assert [text[a:b] for a, b in sentences(text)] == ["First one.", "Second one!", "第三句。", "第四句？"]


def test_snippet_picks_the_sentence_with_the_query_terms_and_its_line():
    text = "Intro line about nothing.\nMore filler here.\nBlack tea leaves are fully oxidised.\nThe end."
    best = snippet(text, "oxidised tea leaves", line_start=20)
    assert best.text == "Black tea leaves are fully oxidised."
    assert best.line == 22
    assert [best.text[a:b] for a, b in best.highlights] == ["tea", "leaves", "oxidised"]
    assert text[best.char_start:best.char_end] == best.text


def test_snippet_highlights_chinese_terms():
    best = snippet("东汉时期蔡伦改进了造纸术。用树皮造纸，降低了成本。", "谁改进了造纸术")
    assert best.text == "东汉时期蔡伦改进了造纸术。"
    assert [best.text[a:b] for a, b in best.highlights] == ["改进了造纸术"]


def test_snippet_without_any_query_term_shows_the_opening():
    best = snippet("One. Two. Three.", "unrelated")
    assert best.text == "One. Two." and best.highlights == ()


def test_snippet_skips_a_markdown_heading_line():
    best = snippet("## 蔡伦与东汉的造纸\n\n考古发现表明，西汉已有纸。东汉时期，蔡伦改进了造纸工艺。", "invention of paper",
                   line_start=5)
    assert best.text.startswith("考古发现表明") and best.line == 7


def test_human_search_output_shows_the_snippet_highlighted_only_on_a_terminal(tmp_path, ollama_server):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "tea.md").write_text(
        "# Tea\n\nTea is a drink.\nIt grows in hills.\nBlack tea leaves are fully oxidised.\n", encoding="utf-8")
    runner = CliRunner()
    index_dir = str(tmp_path / "idx")
    args = ["-i", index_dir, "--ollama-host", ollama_server.url]
    assert runner.invoke(cli, ["index", str(folder), *args]).exit_code == 0
    plain = runner.invoke(cli, ["search", "oxidised leaves", "-k", "1", *args], color=False)
    assert plain.exit_code == 0, plain.output
    header, passage = plain.output.splitlines()[:2]
    assert header.split()[2].endswith("tea.md:5")  # the snippet's own line
    assert passage.strip() == "…Black tea leaves are fully oxidised."
    assert "\x1b[" not in plain.output
    styled = runner.invoke(cli, ["search", "oxidised leaves", "-k", "1", *args], color=True)
    assert "\x1b[1m\x1b[33moxidised\x1b[0m" in styled.output or "\x1b[33m\x1b[1moxidised" in styled.output
