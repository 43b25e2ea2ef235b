"""Document → [Chunk]: cut extracted text into citable pieces that always fit the token budget.

How boundaries are chosen
-------------------------
1. Sections. `Document.headings` are hard boundaries; a chunk never spans two sections and its
   `heading_path` is the stack of enclosing headings. A section holding nothing but its heading
   line is joined to the section that follows when that one is its child ("# Guide" directly
   followed by "## Install"), so no chunk consists of a bare heading that has a body below it
   (unless the budget is too small to hold both).
2. Units. A span that fits the budget is one chunk. A span that does not is cut into units at
   the coarsest level that yields more than one: blank-line paragraphs; then sentence ends
   (。！？；… and .!? before whitespace) and line breaks; then clause punctuation and spaces;
   then characters (the last resort, never inside a combining sequence).
3. Boundaries are local (edit locality, DESIGN §3). Greedy packing from the section start lets
   one grown paragraph shift every later boundary, so every edit would re-embed the rest of the
   file. Instead each gap between units gets a priority — its kind (a sentence end at a line
   end beats one mid-line) and then a CRC of the 32 characters around it — and a gap becomes a
   boundary when its priority beats every other gap within `radius` tokens on either side and it
   lies more than `radius` tokens from the span's edges (local-maximum content-defined
   chunking). Whether a gap is a boundary depends only on text within `radius` tokens of it, so
   an edit leaves all boundaries farther away untouched. Boundaries are more than `radius`
   apart, which packs small paragraphs and list lines together. A stretch between boundaries
   that is still over budget is split at its highest-priority gap near the middle, recursively;
   a single over-budget unit goes down one level.
4. Overlap. A chunk after the first of its section starts with the whole trailing sentences of
   the previous chunk that fit in `overlap_tokens`, if the result still fits `max_tokens`.
   Pieces are cut to a budget that reserves room for it.

Every chunk's text is exactly `document.text[char_start:char_end]`, stripped of surrounding
whitespace by moving the offsets, and `estimate_tokens(text) <= max_tokens` always holds.

Source code (`code=True`)
-------------------------
With `code` true, a code document in a language `semsearch.code_chunks` parses is cut there at
function and class boundaries instead, its heading path being the enclosing class/function names;
code chunks do not overlap (a function is whole, or its pieces carry its name in their path).
Any other document, and a file that does not parse cleanly, goes through the text chunker. This
module is where that choice is made: by `chunk` for a document, by `uses_code_chunker` for a
stored file's name (which files a change of chunker touches).
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from bisect import bisect_left, bisect_right
from pathlib import PurePath

from semsearch.errors import ConfigError
from semsearch.tokens import CLOSERS as _CLOSERS
from semsearch.tokens import SENTENCE_END, SENTENCE_START, cut_to_tokens, estimate_tokens
from semsearch.types import Chunk, Document, Heading

__all__ = ["chunk", "cut_to_tokens", "estimate_tokens", "uses_code_chunker"]

# Levels at which an over-budget span is cut into units, coarsest first.
_PARAGRAPH, _SENTENCE_OR_LINE, _CLAUSE, _CHARACTER = range(4)

_PARAGRAPH_BREAK = re.compile(r"\n(?:[ \t\f\v\r]*\n)+")
_SENTENCE_OR_LINE_BREAK = re.compile(rf"(?:{SENTENCE_END})(?:[ \t\f\v\r]*\n)?|\n")
_CLAUSE_BREAK = re.compile(rf"(?P<clause>[，、,;:：]+[{_CLOSERS}]*)|\s+")
# Where a new sentence (or line) starts: candidates for the start of an overlap.
_SENTENCE_START = re.compile(rf"{SENTENCE_START}|\n\s*")
# A line made of one repeated punctuation character: a setext/rst underline or overline.
_ADORNMENT_LINE = re.compile(r"([!-/:-@\[-`{-~])\1+")

_RANK_SHIFT = 32  # priority = rank << 32 | crc32: the kind of gap first, content second
# Boundary radius as a share of the piece budget. Measured on generated prose (English and
# Chinese, paragraphs and one-paragraph-per-line): 0.35 gives chunks of ~60% of the budget
# (p10 ~40%) and keeps ~97% of single-sentence edits to <= 2 changed chunks; larger radii give
# bigger chunks but more over-long stretches whose middle split moves with edits.
_RADIUS_FRACTION = 0.35


def uses_code_chunker(name: str) -> bool:
    """Whether a file of this name is cut by `semsearch.code_chunks` when code chunks are on.

    Decided by the suffix alone (what `extract` records as a code document's language), so the
    indexer can tell which stored files a change of chunker touches without reading them.
    """
    from semsearch.code_chunks import language_for
    from semsearch.extract import SUFFIXES

    suffix = PurePath(name).suffix.lower()
    return SUFFIXES.get(suffix) == "code" and language_for(suffix) is not None


def chunk(document: Document, *, max_tokens: int = 400, overlap_tokens: int = 40, code: bool = False) -> list[Chunk]:
    """Split `document` into chunks of at most `max_tokens` estimated tokens.

    Returns chunks in text order with ordinals 0..n-1 (an empty list for blank text). Each
    carries exact char offsets into `document.text`, 1-based file line numbers (mapped through
    `document.source_lines` when set) and its heading path. With `code`, source code in a
    language tree-sitter parses is cut at function/class boundaries (see the module docstring).
    Raises ConfigError for a budget below 1 token or a negative overlap, MissingDependencyError
    when `code` is asked for a code document and the `code` extra is not installed.
    """
    if max_tokens < 1:
        raise ConfigError(f"chunk size must be at least 1 token, got {max_tokens}")
    if overlap_tokens < 0:
        raise ConfigError(f"chunk overlap cannot be negative, got {overlap_tokens}")
    text = document.text
    if not text or text.isspace():
        return []
    limit = max_tokens - min(overlap_tokens, max_tokens // 4)
    radius = max(1, int(limit * _RADIUS_FRACTION))
    lines = _LineMap(text, document.source_lines)
    if code and document.extractor == "code" and not document.parts:
        from semsearch.code_chunks import language_for, split_code

        language = language_for(str(document.metadata.get("language", "")))
        spans = split_code(text, language, max_tokens) if language else None
        if spans is not None:
            return _code_chunks(text, spans, max_tokens, lines)
    parts = list(document.parts)
    chunks: list[Chunk] = []
    for section_start, section_end, paths in _split_at_parts(_sections(text, document.headings), parts):
        start, end = _trim(text, section_start, section_end)
        if start >= end:
            continue
        pieces: list[tuple[int, int]] = []
        _split(text, start, end, _PARAGRAPH, limit, radius, pieces)
        previous: tuple[int, int] | None = None
        previous_path: tuple[str, ...] = ()
        for piece_start, piece_end in pieces:
            heading_path = _path_at(paths, piece_end - 1)
            start = piece_start
            if previous is not None and overlap_tokens > 0 and heading_path == previous_path:
                start = _overlap_start(text, previous, (piece_start, piece_end), overlap_tokens, max_tokens)
            body = text[start:piece_end]
            chunks.append(
                Chunk(
                    ordinal=len(chunks),
                    text=body,
                    char_start=start,
                    char_end=piece_end,
                    line_start=lines.line(start),
                    line_end=lines.line(piece_end - 1),
                    heading_path=heading_path,
                    tokens=estimate_tokens(body),
                    part=bisect_right(parts, piece_start) if parts else None,
                )
            )
            previous, previous_path = (piece_start, piece_end), heading_path
    return chunks


def _code_chunks(text: str, spans, max_tokens: int, lines: _LineMap) -> list[Chunk]:
    """Chunks from code spans; a span over budget (one syntax node) is cut by the text chunker."""
    pieces: list[tuple[int, int, tuple[str, ...]]] = []
    for span in spans:
        if span.fits:
            pieces.append((span.start, span.end, span.heading_path))
            continue
        cut: list[tuple[int, int]] = []
        _split(text, span.start, span.end, _PARAGRAPH, max_tokens, max(1, int(max_tokens * _RADIUS_FRACTION)), cut)
        pieces.extend((start, end, span.heading_path) for start, end in cut)
    return [
        Chunk(ordinal=ordinal, text=text[start:end], char_start=start, char_end=end,
              line_start=lines.line(start), line_end=lines.line(end - 1), heading_path=path,
              tokens=estimate_tokens(text[start:end]))
        for ordinal, (start, end, path) in enumerate(pieces)
    ]


_Paths = list[tuple[int, tuple[str, ...]]]  # (offset where it starts, heading path), ascending


def _sections(text: str, headings: tuple[Heading, ...]) -> list[tuple[int, int, _Paths]]:
    """Cut text at heading offsets → (start, end, heading paths inside), covering all of `text`.

    A section has one path, except when heading-only parents were joined to it: then each
    joined heading's path applies from its own offset on.
    """
    length = len(text)
    ordered = sorted((h for h in headings if 0 <= h.char_start < length), key=lambda h: h.char_start)
    sections: list[tuple[int, int, _Paths]] = []
    first = ordered[0].char_start if ordered else length
    if first > 0:
        sections.append((0, first, [(0, ())]))
    stack: list[Heading] = []
    carried: _Paths = []  # heading-only parents waiting for their child section
    for index, heading in enumerate(ordered):
        while stack and stack[-1].level >= heading.level:
            stack.pop()
        stack.append(heading)
        paths = carried + [(heading.char_start, tuple(h.title for h in stack))]
        end = ordered[index + 1].char_start if index + 1 < len(ordered) else length
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        joins_child = following is not None and following.level > heading.level
        if joins_child and _is_heading_only(text, heading.char_start, end):
            carried = paths
            continue
        carried = []
        sections.append((paths[0][0], end, paths))
    return sections


def _split_at_parts(sections: list[tuple[int, int, _Paths]], parts: list[int]) -> list[tuple[int, int, _Paths]]:
    """Cut sections again where a page or cell starts, so no chunk straddles two parts."""
    if not parts:
        return sections
    out: list[tuple[int, int, _Paths]] = []
    for start, end, paths in sections:
        cuts = [p for p in parts if start < p < end]
        for piece_start, piece_end in zip([start, *cuts], [*cuts, end]):
            before = [(piece_start, path) for s, path in paths if s <= piece_start][-1:]
            inside = before + [(s, path) for s, path in paths if piece_start < s < piece_end]
            out.append((piece_start, piece_end, inside))
    return out


def _path_at(paths: _Paths, offset: int) -> tuple[str, ...]:
    found = paths[0][1]
    for start, path in paths:
        if start > offset:
            break
        found = path
    return found


def _is_heading_only(text: str, start: int, end: int) -> bool:
    if end - start > 400:
        return False
    content_lines = 0
    for line in text[start:end].split("\n"):
        line = line.strip()
        if line and not _ADORNMENT_LINE.fullmatch(line):
            content_lines += 1
    return content_lines <= 1


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Offsets of text[start:end] without surrounding whitespace; (start, start) if blank."""
    segment = text[start:end]
    left = segment.lstrip()
    if not left:
        return start, start
    new_start = start + len(segment) - len(left)
    return new_start, new_start + len(left.rstrip())


def _split(
    text: str, start: int, end: int, level: int, limit: int, radius: int, out: list[tuple[int, int]]
) -> None:
    """Append to `out` the pieces of the trimmed span text[start:end], each within `limit`."""
    if estimate_tokens(text[start:end]) <= limit:
        out.append((start, end))
        return
    while level < _CHARACTER:
        starts, ends, priorities = _units(text, start, end, level)
        if len(starts) > 1:
            break
        level += 1
    else:
        _hard_cut(text, start, end, limit, out)
        return
    sizes = [estimate_tokens(text[s:e]) for s, e in zip(starts, ends)]
    first = 0
    for gap in _local_maxima(sizes, priorities, radius) + [len(starts) - 1]:
        _fit(text, starts, ends, sizes, priorities, first, gap, level, limit, radius, out)
        first = gap + 1


def _units(text: str, start: int, end: int, level: int) -> tuple[list[int], list[int], list[int]]:
    """Cut text[start:end] at the separators of `level` → unit starts, unit ends, gap priorities.

    Units are trimmed and never blank; `priorities[i]` belongs to the gap after unit i.
    """
    cuts: list[tuple[int, int]] = []  # (offset, rank)
    if level == _PARAGRAPH:
        cuts = [(m.end(), 0) for m in _PARAGRAPH_BREAK.finditer(text, start, end)]
    elif level == _SENTENCE_OR_LINE:
        matches = list(_SENTENCE_OR_LINE_BREAK.finditer(text, start, end))
        bare_newlines = sum(1 for m in matches if m.group() == "\n")
        mid_line_ends = sum(1 for m in matches if not m.group().endswith("\n"))
        # Code and lists break at lines, prose at sentences; a sentence ending a line beats both.
        lines_first = bare_newlines > mid_line_ends
        for m in matches:
            found = m.group()
            if found == "\n":
                rank = 1 if lines_first else 0
            elif found.endswith("\n"):
                rank = 2
            else:
                rank = 0 if lines_first else 1
            cuts.append((m.end(), rank))
    else:
        cuts = [(m.end(), 1 if m.group("clause") else 0) for m in _CLAUSE_BREAK.finditer(text, start, end)]

    starts: list[int] = []
    ends: list[int] = []
    priorities: list[int] = []
    gap_priority = -1
    previous = start
    for offset, rank in cuts + [(end, -1)]:
        unit_start, unit_end = _trim(text, previous, offset)
        if unit_start < unit_end:
            if starts:
                priorities.append(gap_priority)
            starts.append(unit_start)
            ends.append(unit_end)
            gap_priority = -1
        if rank >= 0:
            context = text[offset : offset + 24].encode("utf-8", "surrogatepass")
            gap_priority = max(gap_priority, (rank << _RANK_SHIFT) | zlib.crc32(context))
        previous = offset
    return starts, ends, priorities


def _local_maxima(sizes: list[int], priorities: list[int], radius: int) -> list[int]:
    """Gaps whose priority beats every gap within `radius` tokens and that are > radius from the edges."""
    positions = []
    total = 0
    for size in sizes[:-1]:
        total += size
        positions.append(total)
    total += sizes[-1]
    chosen = []
    last = len(priorities) - 1
    for gap, (position, priority) in enumerate(zip(positions, priorities)):
        # The edges count as unbeatable gaps. (Always comparing the adjacent gaps too would pair
        # units larger than the radius, but measurably hurts edit locality on long paragraphs.)
        if position <= radius or total - position <= radius:
            continue
        other = gap - 1
        while other >= 0 and position - positions[other] <= radius:
            if priorities[other] >= priority:
                break
            other -= 1
        else:
            other = gap + 1
            while other <= last and positions[other] - position <= radius:
                if priorities[other] >= priority:
                    break
                other += 1
            else:
                chosen.append(gap)
    return chosen


def _fit(
    text: str,
    starts: list[int],
    ends: list[int],
    sizes: list[int],
    priorities: list[int],
    first: int,
    last: int,
    level: int,
    limit: int,
    radius: int,
    out: list[tuple[int, int]],
) -> None:
    """Append units first..last as one piece if they fit, else split them near the middle."""
    if first == last:
        _split(text, starts[first], ends[first], level + 1, limit, radius, out)
        return
    if estimate_tokens(text[starts[first] : ends[last]]) <= limit:
        out.append((starts[first], ends[last]))
        return
    total = sum(sizes[first : last + 1])
    best = -1
    balanced = -1
    imbalance = total + 1
    left = 0
    for gap in range(first, last):
        left += sizes[gap]
        if total <= 4 * left <= 3 * total and (best < 0 or priorities[gap] > priorities[best]):
            best = gap
        if abs(2 * left - total) < imbalance:
            balanced, imbalance = gap, abs(2 * left - total)
    gap = best if best >= 0 else balanced
    _fit(text, starts, ends, sizes, priorities, first, gap, level, limit, radius, out)
    _fit(text, starts, ends, sizes, priorities, gap + 1, last, level, limit, radius, out)


def _hard_cut(text: str, start: int, end: int, limit: int, out: list[tuple[int, int]]) -> None:
    """Cut a span with no usable separator into the longest pieces that fit, by characters."""
    while start < end:
        # n characters estimate at least n/4 tokens, so a fitting piece is at most 4 * limit long.
        high = min(end, start + 4 * limit)
        if estimate_tokens(text[start:high]) <= limit:
            cut = high
        else:
            low = start + 1  # one character is at most one token
            while low < high - 1:
                middle = (low + high) // 2
                if estimate_tokens(text[start:middle]) <= limit:
                    low = middle
                else:
                    high = middle
            cut = low
        while start + 1 < cut < end and _continues_previous(text[cut]):
            cut -= 1
        piece_start, piece_end = _trim(text, start, cut)
        if piece_start < piece_end:
            out.append((piece_start, piece_end))
        start, rest_end = _trim(text, cut, end)
        if start >= rest_end:
            break


def _continues_previous(character: str) -> bool:
    """True for characters that must not start a piece: combining marks, joiners, low surrogates."""
    code = ord(character)
    return (
        0xDC00 <= code <= 0xDFFF
        or code in (0x200D, 0xFE0F, 0xFE0E)
        or 0xFE00 <= code <= 0xFE0F
        or unicodedata.combining(character) != 0
    )


def _overlap_start(
    text: str, previous: tuple[int, int], piece: tuple[int, int], overlap_tokens: int, max_tokens: int
) -> int:
    """Start of the longest run of whole trailing sentences of `previous` that may prefix `piece`."""
    previous_start, previous_end = previous
    piece_start, piece_end = piece
    window = max(previous_start, previous_end - 4 * overlap_tokens - 8)
    for match in _SENTENCE_START.finditer(text, window, previous_end):
        candidate = match.end()
        if candidate >= previous_end or candidate <= previous_start:
            continue
        tail_tokens = estimate_tokens(text[candidate:previous_end])
        if tail_tokens == 0 or tail_tokens > overlap_tokens:
            continue
        if estimate_tokens(text[candidate:piece_end]) <= max_tokens:
            return candidate
    return piece_start


class _LineMap:
    """Offsets in `text` → 1-based line numbers of the original file."""

    def __init__(self, text: str, source_lines: tuple[int, ...] | None):
        self._newlines = [m.start() for m in re.finditer("\n", text)]
        self._source_lines = source_lines or None

    def line(self, offset: int) -> int:
        index = bisect_left(self._newlines, offset)  # newlines before `offset` = 0-based line
        if self._source_lines is None:
            return index + 1
        return self._source_lines[min(index, len(self._source_lines) - 1)]
