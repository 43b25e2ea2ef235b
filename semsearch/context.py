"""Context assembly: a query's best passages packed into a token budget as a prompt-ready block.

Ranked hits (from `search`, so fused or reranked when asked) become passages: runs of adjacent
chunks of one document, merged by char offsets so the text that overlapping chunks share appears
once. The block numbers each passage with its citation (`[1] path:line-line`, or the caller's id
for added texts) and is never longer than `max_tokens` by `tokens.estimate_tokens` counted over
the whole block, citation lines and separators included.

How the budget is filled:
1. Hits in rank order: a hit's chunk is taken if the block still fits with it (a chunk whose
   text repeats one already taken, e.g. a copied file, is skipped). A chunk next to one already
   taken joins that passage.
2. Expansion: while room remains, the chunk after and then the one before each taken hit are
   added (up to `neighbours` steps away), best hits first, which may join two passages of one
   document into one.
3. When not even the best hit fits, its passage is cut at the end to fit (marked `truncated`),
   so a small budget still gets the best evidence rather than nothing.

`Index.context` first drops the hits that score far below the best one (a relative score
threshold, `semsearch.relevance`), so an unrelated passage never fills the budget just because
there was room; the block says how many it left out (`below_threshold`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semsearch.errors import ConfigError
from semsearch.tokens import estimate_tokens
from semsearch.types import Hit, cite

if TYPE_CHECKING:
    from semsearch.store import ChunkRow, Store

DEFAULT_MAX_TOKENS = 2000
DEFAULT_NEIGHBOURS = 1
ELLIPSIS = " …"


@dataclass(frozen=True)
class Source:
    """One numbered passage of a context block and where it comes from."""

    number: int
    citation: str  # `path:line-line` (`file.pdf#page=3:line-line`), or the caller's id for added texts
    path: str  # absolute file path, or the caller's id
    text: str
    score: float  # the best score of the hits in the passage
    line_start: int
    line_end: int
    char_start: int
    char_end: int
    chunk_ids: tuple[int, ...]  # in document order, hits and neighbours alike
    hit_chunk_ids: tuple[int, ...]  # the chunks that search returned, best first
    document_id: int
    heading_path: tuple[str, ...] = ()
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)
    is_file: bool = True
    truncated: bool = False
    part_kind: str = ""  # "page" (PDF) or "cell" (notebook): lines then count within the part
    part: int | None = None

    @property
    def heading(self) -> str:
        return " › ".join(self.heading_path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "citation": self.citation,
            "path": self.path,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "score": self.score,
            "heading": self.heading,
            "heading_path": list(self.heading_path),
            "title": self.title,
            "text": self.text,
            "chunk_ids": list(self.chunk_ids),
            "hit_chunk_ids": list(self.hit_chunk_ids),
            "document_id": self.document_id,
            "metadata": self.metadata,
            "truncated": self.truncated,
            "part_kind": self.part_kind,
            "part": self.part,
        }


@dataclass(frozen=True)
class Context:
    """A prompt-ready block of cited passages (`text`) and the structured list of its `sources`."""

    query: str
    text: str
    sources: tuple[Source, ...]
    tokens: int  # estimate_tokens(text), always <= max_tokens
    max_tokens: int
    min_relative: float | None = None  # the relative score threshold hits had to reach (semsearch.relevance)
    below_threshold: int = 0  # search hits left out because their relative score was below it
    pending_chunks: int = 0  # of the index's `chunks`, those vector search cannot see yet (no embedding)
    chunks: int = 0

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "text": self.text,
            "tokens": self.tokens,
            "max_tokens": self.max_tokens,
            "min_relative": self.min_relative,
            "below_threshold": self.below_threshold,
            "sources": [source.to_dict() for source in self.sources],
            "pending_chunks": self.pending_chunks,
        }


def check_budget(max_tokens: int, neighbours: int = 0) -> None:
    """Raise ConfigError for a budget or neighbour count that cannot work."""
    if max_tokens < 1:
        raise ConfigError(f"max_tokens must be at least 1, not {max_tokens}")
    if neighbours < 0:
        raise ConfigError(f"neighbours must be 0 or more, not {neighbours}")


def assemble(
    query: str,
    hits: Sequence[Hit],
    store: Store,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    neighbours: int = DEFAULT_NEIGHBOURS,
    relative_to: str | Path | None = None,
) -> Context:
    """Pack `hits` (best first) and, budget permitting, their neighbouring chunks into a Context.

    Citations show file paths relative to `relative_to` when a file lies inside it (keeps home
    directories out of prompts), else absolute; `Source.path` is always absolute.
    """
    check_budget(max_tokens, neighbours)
    rows = store.chunk_neighbourhood([hit.chunk_id for hit in hits], neighbours)
    base = Path(relative_to).resolve() if relative_to is not None else None
    packer = _Packer(query, [hit for hit in hits if hit.chunk_id in rows], rows, max_tokens, base)
    packer.take_hits()
    if packer.selected:
        packer.expand(neighbours)
    else:
        packer.take_truncated_best()
    pending = store.count_pending()
    return replace(packer.context(), pending_chunks=pending, chunks=store.counts()[1] if pending else 0)


@dataclass
class _Passage:
    rows: list[ChunkRow]  # adjacent chunks of one document, in ordinal order
    hits: list[Hit]  # the hits among them, best first


class _Packer:
    """Chooses chunks greedily; every choice is checked by rendering and estimating the whole block."""

    def __init__(self, query: str, hits: list[Hit], rows: dict[int, ChunkRow], max_tokens: int,
                 relative_to: Path | None):
        self.query = query
        self.relative_to = relative_to
        self.hit_by_id: dict[int, Hit] = {}
        for hit in hits:
            self.hit_by_id.setdefault(hit.chunk_id, hit)
        self.hits = list(self.hit_by_id.values())  # best first, each chunk once
        self.rank = {hit.chunk_id: position for position, hit in enumerate(self.hits)}
        self.rows = rows
        self.by_ordinal = {(row.document_id, row.ordinal): row for row in rows.values()}
        self.max_tokens = max_tokens
        self.selected: set[int] = set()
        self.cut: dict[int, str] = {}  # chunk id -> shortened text (only the truncated best hit)

    # -- choosing ------------------------------------------------------------------------------

    def _try(self, chunk_id: int) -> bool:
        trial = self.selected | {chunk_id}
        if estimate_tokens(self._render(trial, self.cut)[0]) <= self.max_tokens:
            self.selected = trial
            return True
        return False

    def take_hits(self) -> None:
        taken_texts: set[str] = set()
        for hit in self.hits:
            key = " ".join(self.rows[hit.chunk_id].text.split())
            if key in taken_texts:
                continue
            if self._try(hit.chunk_id):
                taken_texts.add(key)

    def expand(self, neighbours: int) -> None:
        for step in range(1, neighbours + 1):
            for hit in self.hits:
                if hit.chunk_id not in self.selected:
                    continue
                row = self.rows[hit.chunk_id]
                for direction in (1, -1):
                    inner = self.by_ordinal.get((row.document_id, row.ordinal + direction * (step - 1)))
                    outer = self.by_ordinal.get((row.document_id, row.ordinal + direction * step))
                    if inner is None or outer is None or inner.chunk_id not in self.selected:
                        continue
                    if not _adjacent(*sorted((inner, outer), key=lambda r: r.ordinal)):
                        continue
                    if outer.chunk_id not in self.selected:
                        self._try(outer.chunk_id)

    def take_truncated_best(self) -> None:
        if not self.hits:
            return
        best = self.hits[0].chunk_id
        text = self.rows[best].text
        low, high = 0, len(text)  # find the longest prefix that fits
        while low < high:
            middle = (low + high + 1) // 2
            cut = {best: text[:middle].rstrip() + ELLIPSIS}
            if estimate_tokens(self._render({best}, cut)[0]) <= self.max_tokens:
                low = middle
            else:
                high = middle - 1
        if low > 0:
            self.cut = {best: text[:low].rstrip() + ELLIPSIS}
            self.selected = {best}

    # -- rendering -----------------------------------------------------------------------------

    def _passages(self, selected: set[int]) -> list[_Passage]:
        by_document: dict[int, list[ChunkRow]] = {}
        for chunk_id in selected:
            row = self.rows[chunk_id]
            by_document.setdefault(row.document_id, []).append(row)
        passages: list[_Passage] = []
        for document_rows in by_document.values():
            document_rows.sort(key=lambda r: r.ordinal)
            run = [document_rows[0]]
            for row in document_rows[1:]:
                if _adjacent(run[-1], row):
                    run.append(row)
                else:
                    passages.append(self._passage(run))
                    run = [row]
            passages.append(self._passage(run))
        passages.sort(key=lambda p: self.rank[p.hits[0].chunk_id])
        return passages

    def _passage(self, run: list[ChunkRow]) -> _Passage:
        hits = sorted((self.hit_by_id[r.chunk_id] for r in run if r.chunk_id in self.hit_by_id),
                      key=lambda h: self.rank[h.chunk_id])
        return _Passage(run, hits)

    def _render(self, selected: set[int], cut: dict[int, str]) -> tuple[str, list[Source]]:
        sources = [self._source(number, passage, cut)
                   for number, passage in enumerate(self._passages(selected), start=1)]
        blocks = []
        for source in sources:
            header = f"[{source.number}] {source.citation}"
            if source.heading:
                header += f" — {source.heading}"
            blocks.append(f"{header}\n{source.text}")
        return "\n\n".join(blocks), sources

    def _source(self, number: int, passage: _Passage, cut: dict[int, str]) -> Source:
        rows, best = passage.rows, passage.hits[0]
        text = merge_texts(rows, cut)
        line_start = min(r.line_start for r in rows)
        line_end = max(r.line_end for r in rows)
        truncated = any(r.chunk_id in cut for r in rows)
        if truncated:
            line_end = min(line_end, line_start + text.count("\n"))
        part_kind = best.part_kind if best.part is not None else ""
        citation = (cite(self._shown_path(best.path), line_start, line_end, part_kind, best.part)
                    if best.is_file else best.path)
        return Source(
            number=number, citation=citation, path=best.path, text=text,
            score=max(hit.score for hit in passage.hits), line_start=line_start, line_end=line_end,
            char_start=rows[0].char_start, char_end=max(r.char_end for r in rows),
            chunk_ids=tuple(r.chunk_id for r in rows), hit_chunk_ids=tuple(h.chunk_id for h in passage.hits),
            document_id=best.document_id, heading_path=rows[0].heading_path, title=best.title,
            metadata=best.metadata, is_file=best.is_file, truncated=truncated, part_kind=part_kind, part=best.part,
        )

    def _shown_path(self, path: str) -> str:
        if self.relative_to is None:
            return path
        try:
            return Path(path).relative_to(self.relative_to).as_posix()
        except ValueError:
            return path

    def context(self) -> Context:
        text, sources = self._render(self.selected, self.cut) if self.selected else ("", [])
        return Context(self.query, text, tuple(sources), estimate_tokens(text), self.max_tokens)


def _adjacent(before: ChunkRow, after: ChunkRow) -> bool:
    """Consecutive chunks of one part: lines of a paged document count within a page, so a
    passage never spans two."""
    return after.ordinal == before.ordinal + 1 and (after.part_kind, after.part) == (before.part_kind, before.part)


def merge_texts(rows: Sequence[ChunkRow], cut: dict[int, str] | None = None) -> str:
    """The text of adjacent chunks (in ordinal order) with their overlaps written once.

    Each chunk's text is `document.text[char_start:char_end]`, so the part of a chunk before the
    previous chunk's end is the overlap; a gap between chunks held only whitespace, rendered as a
    blank line, a line break or a space according to the line numbers.
    """
    cut = cut or {}
    text, end, line_end = "", None, 0
    for row in rows:
        piece = cut.get(row.chunk_id, row.text)
        if end is None:
            text = piece
        elif row.char_start < end:
            text += piece[end - row.char_start:]
        else:
            gap = row.line_start - line_end
            text += ("\n\n" if gap > 1 else "\n" if gap == 1 else " ") + piece
        end = row.char_end if end is None else max(end, row.char_end)
        line_end = max(line_end, row.line_end)
    return text
