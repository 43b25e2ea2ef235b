"""Snippets: the sentence(s) of a hit that best match the query, where they are, and what to highlight.

A chunk is a few hundred tokens; a person scanning results wants the one or two sentences that
answer the query and the line they are on. Sentences are scored by how many distinct query
terms they contain (the keyword analysis: words, CJK bigrams and single characters), the best
window of up to `max_sentences` consecutive sentences within `max_chars` wins, and a chunk with
no query term (a purely semantic match) shows its opening sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from semsearch import keyword

# A sentence ends at CJK terminators, or at .!? followed by whitespace, or at a line break.
_SENTENCE_END = re.compile(r"[。！？；…]+[”’」』）)]*|[.!?]+[\"')\]]*(?=\s)|\n+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Snippet:
    """A passage of a hit's text: `text == hit.text[char_start:char_end]`, on line `line`."""

    text: str
    char_start: int  # offsets within the hit's text
    char_end: int
    line: int  # 1-based line of the snippet's start in the source (the hit's line_start counts the first)
    highlights: tuple[tuple[int, int], ...]  # (start, end) within `text` of query terms


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in `text`, whitespace trimmed, empty ones dropped."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    out = []
    for begin, end in spans:
        while begin < end and text[begin].isspace():
            begin += 1
        while end > begin and text[end - 1].isspace():
            end -= 1
        if begin < end:
            out.append((begin, end))
    return out


def snippet(text: str, query: str, *, line_start: int = 1, max_chars: int = 240, max_sentences: int = 2) -> Snippet:
    """The best-matching sentence(s) of `text` for `query` (see the module docstring)."""
    query_terms = set(keyword.terms(query))
    spans = sentences(text) or [(0, len(text))]
    # A Markdown heading line repeats what the hit's header already shows.
    spans = [(a, b) for a, b in spans if not text.startswith("#", a)] or spans
    terms_of = [query_terms.intersection(keyword.terms(text[a:b])) for a, b in spans]
    # Most distinct query terms wins; then fewer sentences; then the earlier window.
    best = (0, -1, 0)  # (terms covered, -sentences, -first)
    for first in range(len(spans)):
        covered: set[str] = set()
        for count in range(1, max_sentences + 1):
            last = first + count - 1
            if last >= len(spans) or (count > 1 and spans[last][1] - spans[first][0] > max_chars):
                break
            covered |= terms_of[last]
            best = max(best, (len(covered), -count, -first))
    covered_terms, count, first = best[0], -best[1], -best[2]
    if covered_terms == 0:  # no query term anywhere (a purely semantic match): the opening
        first, count = 0, 1
        while count < max_sentences and count < len(spans) and spans[count][1] - spans[0][0] <= max_chars:
            count += 1
    start, end = spans[first][0], spans[first + count - 1][1]
    if end - start > max_chars:
        end = _cut(text, start, max_chars)
    piece = text[start:end]
    return Snippet(piece, start, end, line_start + text.count("\n", 0, start), highlights(piece, query))


def _cut(text: str, start: int, max_chars: int) -> int:
    """An end offset at most `max_chars` after `start`, at a space when one is near."""
    end = start + max_chars
    space = text.rfind(" ", start + max_chars // 2, end)
    return space if space != -1 else end


def highlights(text: str, query: str) -> tuple[tuple[int, int], ...]:
    """Spans of `text` to highlight for `query`: its words (prefix match, so plurals and other
    inflections light up) and its CJK runs' characters, merged and sorted."""
    folded = text.lower()
    spans: list[tuple[int, int]] = []
    for term in set(keyword.terms(query, for_query=True)):
        if keyword.is_cjk(term):
            for match in re.finditer(re.escape(term), folded):
                spans.append(match.span())
            continue
        stem = term[: max(4, len(term) - 4)]
        for match in _WORD.finditer(folded):
            word = match.group()
            if word == term or (len(term) > 4 and word.startswith(stem)):
                spans.append(match.span())
    spans.sort()
    merged: list[tuple[int, int]] = []
    for begin, end in spans:
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return tuple(merged)
