"""Hybrid fusion: one ranked list from the vector and keyword candidate lists, each weighed per query.

The rule (a convex combination of min-max normalised scores, the keyword weight gated by how much
of the query the keyword list actually matched):

    fused(c) = (1 − w) · v(c) + w · b(c)
    v, b     = the chunk's cosine / bm25, min-max normalised over its list (1 = that list's best,
               0 = its worst retrieved, and 0 when the chunk is absent from the list)
    w        = KEYWORD_WEIGHT · min(1, coverage / FULL_COVERAGE)
    coverage = share of the query's content terms (keyword terms, stopwords aside) found in the
               best keyword hit's text

So a query sharing no content term with the corpus — a question asked in another language than its
answer — gets w = 0 and exactly the vector order; a query whose words the best keyword hit mostly
contains gets both lists at equal weight, and a chunk first in both lists scores 1.0 and leads.
Scores are on 0..1 whatever the lists' scales, and the rule is deterministic (ties go to the lower
chunk id) and cheap: no model call, one row read for the coverage.

Why this rule, with sources:
- Convex combination of normalised scores beats reciprocal rank fusion in and out of domain, is
  barely sensitive to the normalisation chosen, and needs few examples to tune its one weight
  (Bruch, Gai, Ingber, "An Analysis of Fusion Functions for Hybrid Retrieval", ACM TOIS 2023).
  It keeps what RRF throws away: a runaway top match and a photo finish look alike to ranks.
- Min-max per list before a weighted sum is what Weaviate's `relativeScoreFusion` (its default
  since 1.24), Elasticsearch's `linear` retriever (`minmax` normaliser) and OpenSearch's
  normalization processor (`min_max` + `arithmetic_mean`) do. Qdrant's DBSF (mean ± 3σ) measured
  no better here (benchmarks/RESULTS.md).
- A fixed weight is a compromise: the best weight moves per query with how lexical it is (Hsu &
  Tzeng, "DAT: Dynamic Alpha Tuning for Hybrid Retrieval", 2025, which asks an LLM; here the
  keyword list's own term coverage stands in, at no model cost). qmd blends by rank with a bonus
  for a list's top hits; Vespa leaves the expression to the rank profile.
- Measured on cmrc2018 and SciFact (tuned on odd query ids, reported on even ones) and on the demo
  corpus's cross-language questions: benchmarks/RESULTS.md, `benchmarks/fusion_tune.py`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from semsearch import keyword
from semsearch.snippets import without_stopwords

# The keyword list's weight when it matched the query well; the vector list gets the rest.
KEYWORD_WEIGHT = 0.5
# Coverage at which the keyword list earns its full weight: about half of a query's content
# terms, because questions carry words their answers do not repeat ("which", "year", 哪一年).
FULL_COVERAGE = 0.5

# English inflections that FTS5's porter stemmer folds when matching but plain term sets do not
# ("tires" finds "tire"); enough for a coverage share, which only needs to know a term matched.
_SUFFIX = re.compile(r"(?:ies|es|s|ing|ed|ly)$")


@dataclass(frozen=True)
class Candidate:
    """A chunk id with the score that ranked it."""

    chunk_id: int
    score: float


def content_terms(query: str) -> list[str]:
    """The query's distinct keyword terms that are not stopwords (all of them if every one is)."""
    return without_stopwords(keyword.terms(query, for_query=True))


def keyword_query(query: str) -> str:
    """The query as hybrid search sends it to FTS5: its content terms (analysed the same way again)."""
    return " ".join(content_terms(query))


def coverage(query: str, best_keyword_text: str | None) -> float:
    """Share of the query's content terms that occur in `best_keyword_text` (0 without a text)."""
    wanted = content_terms(query)
    if not wanted or not best_keyword_text:
        return 0.0
    present = {_stem(term) for term in keyword.terms(best_keyword_text)}
    return sum(_stem(term) in present for term in wanted) / len(wanted)


def _stem(term: str) -> str:
    return _SUFFIX.sub("", term) if term.isascii() and len(term) > 4 else term


def keyword_weight(query_coverage: float) -> float:
    """The keyword list's weight for a query whose best keyword hit covers this share of it."""
    return KEYWORD_WEIGHT * min(1.0, max(0.0, query_coverage) / FULL_COVERAGE)


def fuse(vector: Sequence[Candidate], keyword_hits: Sequence[Candidate], query_coverage: float) -> list[Candidate]:
    """The union of both lists, best first, scored by the rule in the module docstring (0..1).

    `vector` and `keyword_hits` come best first with their own scores (cosine, bm25);
    `query_coverage` is `coverage(query, text of keyword_hits[0])`. An empty list gives its
    weight to the other, so one list alone keeps its order.
    """
    weight = keyword_weight(query_coverage)
    if not keyword_hits:
        weight = 0.0
    elif not vector:
        weight = 1.0
    fused: dict[int, float] = {}
    for share, ranked in ((1.0 - weight, vector), (weight, keyword_hits)):
        for chunk_id, normalised in _min_max(ranked):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + share * normalised
    return [Candidate(cid, score) for cid, score in sorted(fused.items(), key=lambda item: (-item[1], item[0]))]


def _min_max(ranked: Sequence[Candidate]) -> list[tuple[int, float]]:
    """(chunk id, score scaled to 0..1 over the list); a list of equal scores is all 1."""
    if not ranked:
        return []
    scores = [c.score for c in ranked]
    low, high = min(scores), max(scores)
    span = high - low
    return [(c.chunk_id, (c.score - low) / span if span > 0 else 1.0) for c in ranked]
