"""What `semsearch search` and `context` show: why there is nothing, exit codes, scores per mode,
colour, snippets without stopwords or Markdown markup."""

from __future__ import annotations

import json
import socket

import filelock
import pytest
from click.testing import CliRunner

from semsearch import Index, TextItem
from semsearch.cli import cli
from semsearch.options import LOCK_NAME
from semsearch.snippets import display, snippet

TEXTS = {
    "tea-green": ("Green tea is steamed or pan-fired soon after picking, so its leaves stay green.",
                  {"team": "drinks", "year": 2024}),
    "tea-black": ("Black tea leaves are rolled and fully oxidised before drying.", {"team": "drinks"}),
    "coffee": ("Espresso needs finely ground coffee and hot water under pressure.", {"year": 2023}),
    "bread": ("Sourdough bread rises with a starter of wild yeast and lactic bacteria.", {}),
}


@pytest.fixture
def texts_index(tmp_path, ollama_server):
    path = tmp_path / "idx"
    with Index.open(path, ollama_host=ollama_server.url) as index:
        index.add_texts(TextItem(key, text, metadata) for key, (text, metadata) in TEXTS.items())
    return path


def invoke(args, *, host, color=False, env=None):
    return CliRunner().invoke(cli, [*args, "--ollama-host", host], color=color, env=env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- why there is nothing, and exit codes ------------------------------------------------------

@pytest.mark.parametrize("command", ["search", "context"])
def test_an_index_whose_first_run_failed_says_it_is_empty_and_what_to_run(tmp_path, ollama_server, command):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("# Tea\n\nGreen tea.\n", encoding="utf-8")
    index_dir = str(tmp_path / "idx")
    down = f"http://127.0.0.1:{free_port()}"
    failed = CliRunner().invoke(cli, ["index", str(tmp_path / "notes"), "-i", index_dir, "--ollama-host", down])
    assert failed.exit_code == 1
    result = invoke([command, "green tea", "-i", index_dir], host=ollama_server.url)
    assert result.exit_code == 1, result.output
    assert "is empty" in result.stderr and "semsearch index FOLDER" in result.stderr
    assert result.stdout == ""


def test_a_search_while_another_process_builds_the_index_says_so(tmp_path, ollama_server):
    index_dir = tmp_path / "idx"
    Index.open(index_dir, ollama_host=ollama_server.url).close()
    with filelock.FileLock(str(index_dir / LOCK_NAME)):  # a first `semsearch index` still running
        result = invoke(["search", "green tea", "-i", str(index_dir)], host=ollama_server.url)
    assert result.exit_code == 1
    assert "still being built" in result.stderr and "wait" in result.stderr


def test_where_on_a_key_no_document_has_names_it_and_lists_the_keys(texts_index, ollama_server):
    result = invoke(["search", "tea", "-i", str(texts_index), "--where", "colour=green"], host=ollama_server.url)
    assert result.exit_code == 1
    assert "'colour'" in result.stderr and "team, year" in result.stderr
    as_json = invoke(["search", "tea", "-i", str(texts_index), "--where", "colour=green", "--json"],
                     host=ollama_server.url)
    assert as_json.exit_code == 1 and json.loads(as_json.stdout) == [] and "'colour'" in as_json.stderr


def test_a_filter_matching_no_document_and_a_min_score_nothing_reaches_say_so(texts_index, ollama_server):
    result = invoke(["search", "tea", "-i", str(texts_index), "--where", "team=nobody"], host=ollama_server.url)
    assert result.exit_code == 1 and "--where" in result.stderr
    result = invoke(["context", "tea", "-i", str(texts_index), "--min-score", "0.999"], host=ollama_server.url)
    assert result.exit_code == 1 and "--min-score" in result.stderr and result.stdout == ""


def test_a_keyword_search_matching_no_word_says_so_and_suggests_vector_mode(texts_index, ollama_server):
    result = invoke(["search", "zebra", "--mode", "keyword", "-i", str(texts_index), "--json"], host=ollama_server.url)
    assert result.exit_code == 1 and json.loads(result.stdout) == []
    assert "no passage contains" in result.stderr and "--mode vector" in result.stderr


def test_results_exit_0(texts_index, ollama_server):
    for command in ("search", "context"):
        result = invoke([command, "black tea", "-i", str(texts_index)], host=ollama_server.url)
        assert result.exit_code == 0 and result.stdout and result.stderr == ""


@pytest.mark.parametrize("command", ["search", "context"])
@pytest.mark.parametrize("query", ["", "   "])
def test_an_empty_or_blank_query_is_bad_usage(texts_index, ollama_server, command, query):
    result = invoke([command, query, "-i", str(texts_index)], host=ollama_server.url)
    assert result.exit_code == 2
    assert "query is empty" in result.stderr


# -- scores --------------------------------------------------------------------------------------

def test_keyword_scores_in_a_small_corpus_are_never_shown_as_zero(texts_index, ollama_server):
    # "tea" is in half of four texts: FTS5's bm25 floors its weight to 1e-6, which four decimals print as 0.
    result = invoke(["search", "tea", "-i", str(texts_index), "--mode", "keyword"], host=ollama_server.url)
    assert result.exit_code == 0
    headers = [line for line in result.stdout.splitlines() if not line.startswith("    ")]
    assert len(headers) == 2
    scores = [line.split()[1] for line in headers]
    assert all(float(score) > 0 for score in scores), scores
    assert not any(score.strip("0.") == "" for score in scores), scores


def test_scores_are_documented_per_mode_and_hybrid_is_fused_into_0_to_1(texts_index, ollama_server):
    with Index.open(texts_index, ollama_host=ollama_server.url) as index:
        vector = index.search("black tea leaves", k=4)
        keyword = index.search("black tea leaves", k=4, mode="keyword")
        hybrid = index.search("black tea leaves", k=4, mode="hybrid")
    assert {hit.score_kind for hit in vector} == {"cosine"}
    assert {hit.score_kind for hit in keyword} == {"bm25"}
    assert {hit.score_kind for hit in hybrid} == {"fused"}
    assert hybrid[0].path == "tea-black" and hybrid[0].score == pytest.approx(1.0)  # first in both lists
    assert all(0 < hit.score <= 1 for hit in hybrid)
    # The order is reciprocal rank fusion's, as before scaling.
    fused = {}
    for ranked in (index_order(vector), index_order(keyword)):
        for rank, path in enumerate(ranked, start=1):
            fused[path] = fused.get(path, 0) + 1 / (60 + rank)
    assert [hit.path for hit in hybrid][:2] == sorted(fused, key=lambda p: -fused[p])[:2]
    assert json.loads(invoke(["search", "black tea leaves", "-i", str(texts_index), "--mode", "hybrid", "--json"],
                             host=ollama_server.url).stdout)[0]["score_kind"] == "fused"


def index_order(hits):
    return [hit.path for hit in hits]


def test_min_score_keeps_the_best_hits_in_the_same_order(texts_index, ollama_server):
    with Index.open(texts_index, ollama_host=ollama_server.url) as index:
        everything = index.search("black tea leaves", k=4)
        threshold = (everything[0].score + everything[-1].score) / 2
        kept = index.search("black tea leaves", k=4, min_score=threshold)
        detailed = index.search_detailed("black tea leaves", k=4, min_score=threshold).hits
        context = index.context("black tea leaves", k=4, min_score=threshold, neighbours=0, min_relative=0)
    assert 0 < len(kept) < len(everything)
    assert [hit.chunk_id for hit in kept] == [hit.chunk_id for hit in everything[:len(kept)]]
    assert all(hit.score >= threshold for hit in kept) and list(detailed) == kept
    assert len(context.sources) == len(kept)
    cli_hits = json.loads(invoke(["search", "black tea leaves", "-i", str(texts_index), "--json", "--min-score",
                                  str(threshold)], host=ollama_server.url).stdout)
    assert [hit["chunk_id"] for hit in cli_hits] == [hit.chunk_id for hit in kept]


# -- colour ----------------------------------------------------------------------------------------

def test_no_color_and_the_color_option(texts_index, ollama_server):
    args = ["search", "black tea", "-k", "1", "-i", str(texts_index)]
    on_terminal = invoke(args, host=ollama_server.url, color=True)
    assert "\x1b[" in on_terminal.stdout
    no_color = invoke(args, host=ollama_server.url, color=True, env={"NO_COLOR": "1"})
    assert no_color.exit_code == 0 and "\x1b[" not in no_color.stdout
    never = invoke([*args, "--color", "never"], host=ollama_server.url, color=True)
    assert never.exit_code == 0 and "\x1b[" not in never.stdout
    always = invoke([*args, "--color", "always"], host=ollama_server.url, color=False, env={"NO_COLOR": "1"})
    assert always.exit_code == 0 and "\x1b[" in always.stdout
    assert "\x1b[" not in invoke(args, host=ollama_server.url, color=False).stdout  # auto on a pipe


# -- snippets ----------------------------------------------------------------------------------------

def test_stopwords_neither_pick_the_sentence_nor_light_up():
    text = "The start of the day is quiet. Tea grows on hills."
    best = snippet(text, "the history of tea")
    assert best.text == "Tea grows on hills."
    assert [best.text[a:b] for a, b in best.highlights] == ["Tea"]
    chinese = snippet("我的书的封面很旧。茶很好喝。", "茶 的")
    assert chinese.text == "茶很好喝。"
    assert [chinese.text[a:b] for a, b in chinese.highlights] == ["茶"]


def test_markdown_markup_is_stripped_and_a_heading_joins_its_paragraph():
    text, spans = display("## Brewing\n\nUse **fresh** water, *not* `boiled` twice; see [the guide](http://x/g).",
                          "fresh water guide", markdown=True)
    assert text == "Brewing — Use fresh water, not boiled twice; see the guide."
    assert [text[a:b] for a, b in spans] == ["fresh", "water", "guide"]
    plain, _ = display("双筒望远镜是最好的第一件设备\n\n与其一开始就买天文望远镜。", "望远镜",
                       headings=("天文观测入门", "双筒望远镜是最好的第一件设备"))
    assert plain == "双筒望远镜是最好的第一件设备 — 与其一开始就买天文望远镜。"
    assert display("snake_case and x*y*z stay", "case")[0] == "snake_case and x*y*z stay"  # not Markdown


def test_human_output_shows_markdown_without_markup(tmp_path, ollama_server):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "tea.md").write_text("# Tea\n\nBlack tea is **fully oxidised**; see [the guide](https://x.test/g).\n",
                                   encoding="utf-8")
    index_dir = str(tmp_path / "idx")
    assert invoke(["index", str(folder), "-i", index_dir], host=ollama_server.url).exit_code == 0
    result = invoke(["search", "oxidised black tea", "-k", "1", "-i", index_dir], host=ollama_server.url)
    header, passage = result.stdout.splitlines()[:2]
    assert header.endswith("tea.md:3 — Tea")
    assert passage.strip().lstrip("…") == "Black tea is fully oxidised; see the guide."
