"""reStructuredText (.rst): underlined and overlined section titles as headings; text unchanged."""

from __future__ import annotations

import re
import unicodedata

from semsearch.extract.text import line_offsets
from semsearch.types import Document, Heading

__all__ = ["parse_rst"]

# A line of one repeated punctuation character (docutils' adornment characters).
_ADORNMENT = re.compile(r"([!-/:-@\[-`{-~])\1+")
_INLINE_MARKUP = re.compile(r"\*\*|``|`_*|\*")


def parse_rst(text: str, name: str = "") -> Document:
    """A reStructuredText Document: `text` unchanged, one Heading per section title.

    Levels follow docutils: each adornment style (character, with or without overline) gets the
    next level the first time it appears. Title: the first top-level section title, else `name`.
    """
    lines, offsets = line_offsets(text)

    styles: dict[tuple[str, bool], int] = {}
    headings: list[Heading] = []
    index = 0
    while index < len(lines):
        previous_blank = index == 0 or not lines[index - 1].strip()
        found = _title_at(lines, index) if previous_blank else None
        if found is None:
            index += 1
            continue
        style, title_index, consumed = found
        level = styles.setdefault(style, len(styles) + 1)
        title = _clean(lines[title_index])
        if title:
            headings.append(Heading(char_start=offsets[index], level=level, title=title))
        index += consumed

    title = next((h.title for h in headings if h.level == 1), "") or name
    return Document(text=text, title=title, extractor="rst", headings=tuple(headings))


def _title_at(lines: list[str], index: int) -> tuple[tuple[str, bool], int, int] | None:
    """If a section title starts at line `index`: (style, line of the title text, lines used)."""
    line = lines[index].rstrip()
    over = _ADORNMENT.fullmatch(line)
    if over is not None and index + 2 < len(lines):
        text_line = lines[index + 1].rstrip()
        under = lines[index + 2].rstrip()
        if text_line.strip() and not _ADORNMENT.fullmatch(text_line.strip()) and under == line:
            if len(line) >= _width(text_line.strip()) or len(line) >= 4:
                return (line[0], True), index + 1, 3
        return None
    if over is not None or not _is_title_text(line) or index + 1 >= len(lines):
        return None
    under = lines[index + 1].rstrip()
    if _ADORNMENT.fullmatch(under) is None:
        return None
    if len(under) >= _width(line) or len(under) >= 4:
        return (under[0], False), index, 2
    return None


def _is_title_text(line: str) -> bool:
    # Titles start in column 0 (indented text is a block quote or a literal block); explicit
    # markup (".. directive::", comments) is never a title.
    return bool(line) and not line[0].isspace() and not line.startswith("..")


def _width(text: str) -> int:
    """Display columns: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _clean(title: str) -> str:
    return " ".join(_INLINE_MARKUP.sub("", title).split())
