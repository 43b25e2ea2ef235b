"""Snippets: the sentence(s) of a hit that best match the query, where they are, and what to highlight.

A chunk is a few hundred tokens; a person scanning results wants the one or two sentences that
answer the query and the line they are on. Sentences are scored by how many distinct query
terms they contain (the keyword analysis: words, CJK bigrams and single characters), the best
window of up to `max_sentences` consecutive sentences within `max_chars` wins, and a chunk with
no query term (a purely semantic match) shows its opening sentences. Stopwords count for
nothing. `display` turns a snippet into the one line a person reads: Markdown markup removed,
a heading joined to its paragraph by " — ".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from semsearch import keyword
from semsearch.tokens import SENTENCE_END

# Words that match almost every passage: never highlighted, never the reason a sentence is
# picked (unless the query has nothing else). CJK entries are single characters and bigrams,
# the units of the keyword analysis.
STOPWORDS = frozenset("""
a an the of to in on at by for from with and or nor not no is are was were be been being am it its
this that these those as do does did doing how what which who whom whose why when where i me my we
our you your he him his she her they them their there here can could should would will shall may
might must has have had having than then so if but about into onto over under up down out off
very just also only such each any all some more most other own same too s t
的 了 是 在 和 与 也 就 都 而 及 着 或 被 把 吗 呢 吧 啊 之 这 那 个
什么 怎么 哪些 哪个 如何 为什 可以 一个 这个 那个 我们 你们 他们 没有 就是 还是 但是 因为 所以 如果
""".split())

# A sentence ends where the chunker's sentences end, or at a line break.
_SENTENCE_END = re.compile(rf"{SENTENCE_END}|\n+")
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
    query_terms = set(without_stopwords(keyword.terms(query)))
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


def without_stopwords(terms: Iterable[str]) -> list[str]:
    """The distinct terms, in order, that are not stopwords; all of them when every one is (a
    query of "the"). Snippets and hybrid fusion both weigh a query by these."""
    found = list(dict.fromkeys(terms))
    return [term for term in found if term not in STOPWORDS] or found


def _cut(text: str, start: int, max_chars: int) -> int:
    """An end offset at most `max_chars` after `start`, at a space when one is near."""
    end = start + max_chars
    space = text.rfind(" ", start + max_chars // 2, end)
    return space if space != -1 else end


def highlights(text: str, query: str) -> tuple[tuple[int, int], ...]:
    """Spans of `text` to highlight for `query`: its words (prefix match, so plurals and other
    inflections light up) and its CJK runs' characters, merged and sorted; stopwords are not
    highlighted."""
    folded = text.lower()
    spans: list[tuple[int, int]] = []
    for term in set(without_stopwords(keyword.terms(query, for_query=True))):
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


# A heading and the paragraph under it read as one line: "Heading — paragraph"; other blocks
# (paragraphs, list items) are joined by " · ". A plain newline inside a block is a space.
HEADING_SEPARATOR = " — "
BLOCK_SEPARATOR = " · "
_BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")
_SPACES = re.compile(r"\s+")


def display(text: str, query: str, *, markdown: bool = False, headings: tuple[str, ...] = ()) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A snippet's text as one line to show, and the spans of it to highlight for `query`.

    With `markdown`, the text is parsed as Markdown (markdown-it) and shown without its markup:
    `**bold**`, `*it*`, `_x_` and `` `code` `` keep their text, a link `[t](u)` becomes t, an
    image its alt text, a `#` heading its title. A heading (a Markdown one, or a block equal to
    one of `headings`, the hit's heading path) is joined to what follows by " — ", other blocks
    by " · ".
    """
    blocks = _markdown_blocks(text) if markdown else None
    if not blocks:
        blocks = [(_SPACES.sub(" ", part).strip(), False) for part in _BLANK_LINE.split(text)]
    titles = {title.strip() for title in headings}
    line = ""
    after_heading = False
    for block, is_heading in blocks:
        if not block:
            continue
        if line:
            line += HEADING_SEPARATOR if after_heading else BLOCK_SEPARATOR
        line += block
        after_heading = is_heading or block in titles
    return line, highlights(line, query)


def _markdown_blocks(text: str) -> list[tuple[str, bool]]:
    """(plain text, is a heading) of each Markdown block in `text`, markup removed."""
    from markdown_it import MarkdownIt

    blocks: list[tuple[str, bool]] = []
    in_heading = False
    for token in MarkdownIt("commonmark").parse(text):
        if token.type == "heading_open":
            in_heading = True
        elif token.type == "heading_close":
            in_heading = False
        elif token.type == "inline":
            blocks.append((_SPACES.sub(" ", _inline_text(token.children or [])).strip(), in_heading))
        elif token.type in ("fence", "code_block"):
            blocks.append((_SPACES.sub(" ", token.content).strip(), False))
    return blocks


def _inline_text(children) -> str:
    pieces = []
    for child in children:
        if child.type in ("text", "code_inline"):
            pieces.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            pieces.append(" ")
        elif child.type == "image":
            pieces.append(_inline_text(child.children or []))
    return "".join(pieces)
