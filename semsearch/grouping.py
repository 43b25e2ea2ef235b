"""Chunk hits grouped by document: one result per document, ranked by its best chunk.

Search ranks chunks, so a long document that matches in many places can fill a whole page of
results. Grouping shows each document once: its best hit (the one that ranks it) and the line
ranges of its other retrieved chunks. `semsearch search` prints groups by default, `eval` ranks
documents the same way (`group_by_document`), and every search result carries each hit's
`document_rank` so a client can group the chunk hits itself.

`first_documents` makes `k` mean documents: it asks search for more chunks, growing the count,
until the hits span `k` documents or the index has no more passing the filters and floor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from semsearch.types import Hit, SearchResult

# Chunks asked for per wanted document on the first try, and the growth factor when the hits
# span too few documents: most queries need one try, a corpus of one long file a few.
CHUNKS_PER_DOCUMENT = 3
GROWTH = 4


@dataclass(frozen=True)
class LineRange:
    """Lines `line_start`..`line_end` of a document, within page/cell `part` when it is paged."""

    line_start: int
    line_end: int
    part_kind: str = ""
    part: int | None = None

    def __str__(self) -> str:
        lines = str(self.line_start) if self.line_start == self.line_end else f"{self.line_start}-{self.line_end}"
        return f"{self.part_kind} {self.part} lines {lines}" if self.part_kind and self.part is not None \
            else f"lines {lines}"


@dataclass(frozen=True)
class DocumentHit:
    """One document among the results: its best hit and the other retrieved hits in it."""

    document_rank: int
    best: Hit
    others: tuple[Hit, ...] = ()  # best first

    @property
    def score(self) -> float:
        return self.best.score

    @property
    def path(self) -> str:
        return self.best.path

    @property
    def hits(self) -> tuple[Hit, ...]:
        return (self.best, *self.others)

    def other_ranges(self) -> list[LineRange]:
        """The lines of the other hits in document order, overlapping or touching ranges joined."""
        spans = sorted((h.part_kind, h.part or 0, h.line_start, h.line_end) for h in self.others)
        merged: list[list[Any]] = []
        for part_kind, part, start, end in spans:
            last = merged[-1] if merged else None
            if last is not None and (last[0], last[1]) == (part_kind, part) and start <= last[3] + 1:
                last[3] = max(last[3], end)
            else:
                merged.append([part_kind, part, start, end])
        return [LineRange(start, end, part_kind, part if part_kind else None)
                for part_kind, part, start, end in merged]

    def to_dict(self) -> dict[str, Any]:
        return {
            "document_rank": self.document_rank,
            "score": self.score,
            "path": self.path,
            "best": self.best.to_dict(),
            "others": [hit.to_dict() for hit in self.others],
        }


def group_by_document(hits: Iterable[Hit], limit: int | None = None) -> list[DocumentHit]:
    """Hits (best first) grouped by document, documents ranked by their best hit; at most `limit`.

    Hits come best first, so a document's first hit is its best (max aggregation, as BEIR
    evaluations of passage retrieval rank documents).
    """
    groups: dict[int, list[Hit]] = {}
    for hit in hits:
        if hit.document_id not in groups:
            if limit is not None and len(groups) == limit:
                continue
            groups[hit.document_id] = []
        groups[hit.document_id].append(hit)
    return [DocumentHit(rank, found[0], tuple(found[1:]))
            for rank, found in enumerate(groups.values(), start=1)]


def with_document_ranks(hits: Sequence[Hit]) -> tuple[Hit, ...]:
    """The hits with `document_rank` set: their document's place among the hits' documents."""
    ranks: dict[int, int] = {}
    for hit in hits:
        ranks.setdefault(hit.document_id, len(ranks) + 1)
    return tuple(replace(hit, document_rank=ranks[hit.document_id]) for hit in hits)


def first_documents(run: Callable[[int], SearchResult], k: int) -> SearchResult:
    """The hits of the best `k` documents: `run(n)` (a search for n chunk hits) with n grown
    until the hits span `k` documents or fewer than n come back (nothing more passes).

    Every hit of those documents that came back is kept, so a document's other passages can
    be shown beside its best one. `run` should reuse its query embedding between calls.
    """
    wanted = k * CHUNKS_PER_DOCUMENT
    while True:
        result = run(wanted)
        documents = len({hit.document_id for hit in result.hits})
        if documents >= k or len(result.hits) < wanted:
            break
        wanted *= GROWTH
    hits = with_document_ranks(result.hits)
    return replace(result, hits=tuple(hit for hit in hits if hit.document_rank is not None
                                      and hit.document_rank <= k))
