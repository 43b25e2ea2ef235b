"""Keyword analysis and FTS5 search over real SQLite: CJK bigrams and single characters, words
elsewhere, the same analysis for queries, and bm25 ranking through the store."""

from __future__ import annotations

import sqlite3

import pytest

from semsearch import keyword

from tests.helpers import new_document


def test_cjk_runs_become_bigrams_and_single_characters_latin_text_words():
    assert keyword.terms("绿茶 Green-Tea") == ["绿茶", "绿", "茶", "green", "tea"]
    bigrams, singles = ["年于", "于乐", "乐转", "转会"], ["年", "于", "乐", "转", "会"]
    assert keyword.terms("2013年于乐转会") == ["2013", *bigrams, *singles]


def test_queries_keep_only_bigrams_unless_a_run_is_one_character():
    assert keyword.terms("于乐转会", for_query=True) == ["于乐", "乐转", "转会"]
    assert keyword.terms("茶", for_query=True) == ["茶"]


def test_full_width_and_case_variants_analyse_alike():
    assert keyword.terms("ＳＱＬｉｔｅ　２０２４") == keyword.terms("sqlite 2024") == ["sqlite", "2024"]


def test_a_query_without_searchable_terms_has_no_expression():
    assert keyword.match_expression("?!, 。") is None
    assert keyword.match_expression("tea tea Tea") == '"tea"'
    assert keyword.match_expression('say "hi"') == '"say" OR "hi"'


CHINESE = {
    "tea-1": "我每天早上喝一杯绿茶。",
    "tea-2": "红茶是全发酵茶，味道浓郁。",
    "coffee-2": "他在咖啡馆里读书。",
    "river": "长江是中国最长的河流。",
    "football": "2013年于乐转会到了深圳红钻。",
}


@pytest.fixture
def chinese(store, embedder):
    store.write_documents([new_document(key, [text], embedder) for key, text in CHINESE.items()])
    return store


def found(store, query: str, limit: int = 10) -> list[str]:
    ranked = [cid for cid, _ in store.keyword_search(query, limit)]
    rows = store.chunks(ranked)
    return [rows[cid].path for cid in ranked]


@pytest.mark.parametrize(("query", "expected"), [
    ("江", ["river"]),  # one character
    ("于乐", ["football"]),  # two characters inside a longer run, after digits
    ("咖啡", ["coffee-2"]),
    ("红钻", ["football"]),
])
def test_one_and_two_character_chinese_queries_find_their_chunk(chinese, query, expected):
    assert found(chinese, query) == expected


def test_a_longer_chinese_query_ranks_the_chunk_sharing_most_bigrams_first(chinese):
    assert found(chinese, "全发酵的红茶")[0] == "tea-2"


def test_english_words_match_across_inflections_and_rank_by_bm25(store, embedder):
    store.write_documents([
        new_document("brew", ["Green tea is brewed at eighty degrees; brewing longer makes it bitter."], embedder),
        new_document("pick", ["Tea leaves are picked by hand in spring."], embedder),
        new_document("bike", ["Fix a flat bicycle tire with a patch."], embedder),
    ])
    assert found(store, "brewing tea") == ["brew", "pick"]
    scores = [score for _, score in store.keyword_search("brewing tea", 10)]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0


def test_headings_are_searchable_with_the_text(store, embedder):
    store.write_documents([new_document("a", ["Remove the wheel first."], embedder, headings=("Puncture repair",))])
    assert found(store, "puncture") == ["a"]


def test_keyword_search_honours_allowed_ids_and_the_limit(store, embedder):
    ids = store.write_documents([new_document(f"d{i}", [f"tea note {i}"], embedder) for i in range(5)]).added_ids
    assert len(store.keyword_search("tea", 3)) == 3
    allowed = ids[[1, 3]]
    assert sorted(cid for cid, _ in store.keyword_search("tea", 10, allowed)) == sorted(allowed.tolist())
    assert store.keyword_search("coffee", 10) == []
    assert store.keyword_search('"unbalanced', 10) == []  # a stray quote is not an FTS5 syntax error


def test_an_index_analysed_the_old_way_is_reanalysed_from_its_chunk_texts(chinese):
    with sqlite3.connect(chinese.path) as conn:  # as an older version left it
        conn.execute("UPDATE chunks_fts SET terms = ''")
        conn.execute("UPDATE meta SET value = 'old' WHERE key = 'keyword_analysis'")
    assert not chinese.keyword_analysis_current() and found(chinese, "于乐") == []
    assert chinese.reanalyze_keywords() == len(CHINESE)
    assert chinese.keyword_analysis_current() and found(chinese, "于乐") == ["football"]
