"""Context assembly: budget, citations, merging of adjacent chunks, neighbours, truncation, CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch.chunking import estimate_tokens
from semsearch.errors import ConfigError

from tests.rag_corpus import build_index

QUERIES = [
    "how to fix a flat bicycle tire",
    "find the hole in the inner tube",
    "why is Japanese green tea grassy",
    "红烧肉怎么炒糖色",
    "tea brewing temperature",
    "patch glue",
]
HEADER = re.compile(r"^\[(\d+)\] (.+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def rag(tmp_path_factory, ollama_server_session):
    ollama_server_session.reset()
    index, corpus = build_index(tmp_path_factory.mktemp("rag"), ollama_server_session.url)
    yield index, corpus
    index.close()


def squash(text: str) -> str:
    return " ".join(text.split())


def assert_well_formed(context, index, corpus):
    """Within budget, every passage numbered and cited in order, overlaps written once."""
    assert context.tokens == estimate_tokens(context.text) <= context.max_tokens
    headers = HEADER.findall(context.text)
    assert [int(number) for number, _ in headers] == list(range(1, len(context.sources) + 1))
    for source, (_, line) in zip(context.sources, headers):
        assert line.startswith(source.citation)
        assert f"{source.citation}" in context.text
        assert source.text in context.text
    chunk_ids = [cid for source in context.sources for cid in source.chunk_ids]
    assert len(chunk_ids) == len(set(chunk_ids)), "a chunk appears in two passages"
    for source in context.sources:
        original = Path(source.path).read_text(encoding="utf-8")[source.char_start:source.char_end]
        if source.truncated:
            assert source.text.endswith("…")
            assert squash(original).startswith(squash(source.text[:-1]))
        else:
            assert squash(source.text) == squash(original)  # merged by offsets: no repeated overlap
        assert source.citation == f"{source.path}:{source.line_start}-{source.line_end}" or (
            source.line_start == source.line_end and source.citation == f"{source.path}:{source.line_start}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    query=st.one_of(st.sampled_from(QUERIES), st.text(min_size=1, max_size=30).filter(lambda q: q.strip())),
    max_tokens=st.integers(min_value=1, max_value=300),
    k=st.integers(min_value=1, max_value=25),
    mode=st.sampled_from(["vector", "keyword", "hybrid"]),
    neighbours=st.integers(min_value=0, max_value=3),
)
def test_context_never_exceeds_budget_and_cites_every_passage(rag, query, max_tokens, k, mode, neighbours):
    index, corpus = rag
    context = index.context(query, max_tokens=max_tokens, k=k, mode=mode, neighbours=neighbours)
    assert context.max_tokens == max_tokens
    assert_well_formed(context, index, corpus)
    hits = index.search(query, k=k, mode=mode)
    rank = {hit.chunk_id: hit.rank for hit in hits}
    best_ranks = [rank[source.hit_chunk_ids[0]] for source in context.sources]
    assert best_ranks == sorted(best_ranks), "passages are not in relevance order"
    if hits and max_tokens >= 300:
        assert context.sources, "a 300-token budget holds at least the best passage"


def test_adjacent_hits_are_merged_into_one_passage(rag):
    index, corpus = rag
    hits = index.search("how to fix a flat bicycle tire", k=12, paths=["corpus/cycling/*"])
    # min_relative=0: every hit is packed (the relative threshold has tests of its own), so what is
    # measured here is merging alone.
    context = index.context("how to fix a flat bicycle tire", max_tokens=2000, k=12, neighbours=0,
                            paths=["corpus/cycling/*"], min_relative=0)
    assert_well_formed(context, index, corpus)
    assert len(context.sources) < len(hits)
    merged = max(context.sources, key=lambda s: len(s.chunk_ids))
    assert len(merged.chunk_ids) >= 3
    by_id = {hit.chunk_id: hit for hit in hits}
    pieces = [by_id[cid].text for cid in merged.chunk_ids]
    assert sum(len(p) for p in pieces) > len(merged.text), "overlapping text was not de-duplicated"
    assert context.text.count("Work two tire levers") == 1


def test_neighbours_fill_the_budget_around_a_hit(rag):
    index, corpus = rag
    alone = index.context("use sandpaper before the glue", max_tokens=400, k=1, neighbours=0)
    grown = index.context("use sandpaper before the glue", max_tokens=400, k=1, neighbours=1)
    assert len(alone.sources) == len(grown.sources) == 1
    assert alone.sources[0].chunk_ids == alone.sources[0].hit_chunk_ids
    assert len(grown.sources[0].chunk_ids) == 3
    assert grown.sources[0].hit_chunk_ids == alone.sources[0].hit_chunk_ids
    assert grown.sources[0].line_start < alone.sources[0].line_start
    assert grown.sources[0].line_end > alone.sources[0].line_end
    assert alone.tokens < grown.tokens <= 400
    assert_well_formed(grown, index, corpus)


def test_copied_file_is_not_repeated(rag):
    index, corpus = rag
    context = index.context("tire levers under the bead", max_tokens=2000, k=6, neighbours=0)
    assert context.text.count("Work two tire levers under the bead") == 1


def test_tiny_budget_still_gets_the_best_passage_cut_to_fit(rag):
    index, corpus = rag
    # Vector mode's best passage here is longer than the budget (the point of this test).
    best = index.search("红烧肉怎么炒糖色", k=1, mode="vector")[0]
    context = index.context("红烧肉怎么炒糖色", max_tokens=40, k=3, mode="vector")
    assert context.tokens <= 40
    assert len(context.sources) == 1 and context.sources[0].truncated
    assert context.sources[0].hit_chunk_ids == (best.chunk_id,)
    assert context.text.startswith(f"[1] {best.path}:")


def test_budget_below_a_citation_line_gives_an_empty_block(rag):
    index, _ = rag
    context = index.context("patch glue", max_tokens=3)
    assert context.text == "" and context.sources == () and context.tokens == 0


def test_bad_budget_is_a_config_error(rag):
    index, _ = rag
    with pytest.raises(ConfigError, match="max_tokens"):
        index.context("patch glue", max_tokens=0)


def test_added_texts_are_cited_by_their_id(tmp_path, ollama_server):
    from semsearch import Index

    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        index.add_texts([{"id": "faq-7", "text": "Reset your password from the account page."}])
        context = index.context("how do I reset my password", max_tokens=100)
    assert context.text == "[1] faq-7\nReset your password from the account page."
    assert context.sources[0].citation == "faq-7"


def test_cli_prints_the_same_block(rag, ollama_server_session):
    index, corpus = rag
    query = "how to fix a flat bicycle tire"
    expected = index.context(query, max_tokens=300, k=5, mode="hybrid", relative_to=corpus.parent)
    env = {key: value for key, value in os.environ.items() if key != "SEMSEARCH_INDEX"}
    args = [sys.executable, "-m", "semsearch", "context", query, "--max-tokens", "300", "-k", "5",
            "--mode", "hybrid", "-i", str(index.path), "--ollama-host", ollama_server_session.url]
    plain = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, cwd=corpus.parent)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == expected.text + "\n"
    first_line = plain.stdout.splitlines()[0]
    assert first_line.startswith("[1] corpus/") and "flat-tire" in first_line  # cited relative to the cwd
    as_json = subprocess.run([*args, "--json"], capture_output=True, text=True, env=env, timeout=120,
                             cwd=corpus.parent)
    data = json.loads(as_json.stdout)
    assert data["text"] == expected.text and data["tokens"] == expected.tokens <= 300
    assert [s["citation"] for s in data["sources"]] == [s.citation for s in expected.sources]
    assert {"number", "path", "line_start", "line_end", "score", "chunk_ids", "text"} <= set(data["sources"][0])
    assert Path(data["sources"][0]["path"]).is_absolute()


def test_rerank_passes_through_and_orders_the_passages(rag, ollama_server_session):
    index, corpus = rag
    query = "which tea is steamed in Japan"
    hits = index.search(query, k=4, rerank=True)
    assert all(hit.rerank_score is not None for hit in hits)
    context = index.context(query, max_tokens=2000, k=4, neighbours=0, rerank=True)
    assert_well_formed(context, index, corpus)
    rank = {hit.chunk_id: hit.rank for hit in hits}
    assert [rank[s.hit_chunk_ids[0]] for s in context.sources] == sorted(rank[s.hit_chunk_ids[0]]
                                                                          for s in context.sources)
    assert context.sources[0].score == max(hit.rerank_score for hit in hits)
