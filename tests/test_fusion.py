"""The hybrid fusion rule on hand-made candidate lists (no HTTP, no index): which list decides when,
what the shared chunk gets, and how much of a query the keyword list covers."""

from __future__ import annotations

import pytest

from semsearch.fusion import Candidate, coverage, fuse

VECTOR = [Candidate(1, 0.86), Candidate(2, 0.84), Candidate(3, 0.80), Candidate(4, 0.71)]


def order(fused: list[Candidate]) -> list[int]:
    return [c.chunk_id for c in fused]


def test_a_query_with_no_keyword_match_returns_the_vector_order():
    assert order(fuse(VECTOR, [], 0.0)) == [1, 2, 3, 4]


def test_keyword_hits_sharing_no_content_term_with_the_query_cannot_reorder_the_vector_list():
    # A cross-language question: the keyword list holds other-language chunks that share a
    # stopword or two; its coverage is 0, so the fused order is the vector order.
    wrong_language = [Candidate(9, 4.7), Candidate(8, 4.4), Candidate(4, 1.2)]
    fused = fuse(VECTOR, wrong_language, 0.0)
    assert order(fused)[:4] == [1, 2, 3, 4]
    assert {9, 8} <= set(order(fused))  # still candidates, after every vector hit


def test_when_both_lists_agree_the_shared_chunk_leads_with_score_one():
    fused = fuse(VECTOR, [Candidate(1, 15.0), Candidate(7, 6.0)], 1.0)
    assert fused[0] == Candidate(1, pytest.approx(1.0))
    assert all(0.0 <= c.score <= 1.0 for c in fused)


def test_a_decisive_keyword_match_covering_the_query_overtakes_a_photo_finish_in_the_vector_list():
    keyword = [Candidate(2, 16.7), Candidate(5, 4.6), Candidate(6, 4.4)]
    assert order(fuse(VECTOR, keyword, 1.0))[0] == 2
    # The same keyword list covering a sliver of the query weighs too little to reorder.
    assert order(fuse(VECTOR, keyword, 0.05))[0] == 1


def test_the_keyword_weight_grows_with_coverage_up_to_half_of_the_content_terms():
    keyword = [Candidate(4, 20.0), Candidate(5, 1.0)]
    ranks = [order(fuse(VECTOR, keyword, share)).index(4) for share in (0.0, 0.2, 0.5, 1.0)]
    assert ranks[0] == 3 and ranks == sorted(ranks, reverse=True) and ranks[2] < ranks[1]
    assert fuse(VECTOR, keyword, 0.5) == fuse(VECTOR, keyword, 1.0)  # full weight from half coverage on


def test_without_vectors_the_keyword_order_is_kept():
    keyword = [Candidate(5, 9.0), Candidate(6, 3.0), Candidate(7, 1.0)]
    assert order(fuse([], keyword, 0.0)) == [5, 6, 7]


def test_fusion_is_deterministic_with_ties_broken_by_chunk_id():
    flat = [Candidate(30, 0.5), Candidate(10, 0.5), Candidate(20, 0.5)]
    assert order(fuse(flat, [], 0.0)) == [10, 20, 30]
    # The top of each list at equal weight ties at 0.5: the lower id leads, whichever list holds it.
    assert order(fuse([Candidate(8, 0.9), Candidate(1, 0.1)], [Candidate(3, 5.0), Candidate(9, 1.0)], 1.0)) == [
        3, 8, 1, 9]
    assert order(fuse([Candidate(3, 0.9), Candidate(1, 0.1)], [Candidate(8, 5.0), Candidate(9, 1.0)], 1.0)) == [
        3, 8, 1, 9]


def test_coverage_counts_content_terms_of_the_query_found_in_the_best_keyword_hit():
    text = "Basic bicycle maintenance: fix flat tires with tire levers and a patch."
    assert coverage("how to fix a flat bicycle tire", text) == 1.0  # stopwords aside, inflections folded
    assert coverage("invention of paper in China", "Rinse the paper filter in hot water.") == pytest.approx(1 / 3)
    # Bigrams spanning the question word (肉怎, 么炒) are in no answer: 4 of 6 is a full match.
    assert coverage("红烧肉怎么炒糖色", "红烧肉要先炒糖色，再加水慢炖。") == pytest.approx(4 / 6)
    assert coverage("红烧肉怎么炒糖色", "The steel wok is heated first.") == 0.0
    assert coverage("types of Chinese tea", None) == 0.0
