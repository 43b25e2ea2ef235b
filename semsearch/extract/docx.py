"""Word documents (.docx) through python-docx: paragraphs, headings into the heading path, tables as text.

The body is read in document order (paragraphs and tables interleaved). Each paragraph and each
table row is one block; a hit's "line" is the number of that block in the document (a Word file
has no lines of its own). Headers, footers, comments and text boxes are not indexed.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from semsearch.errors import ExtractError
from semsearch.extract.limits import max_file_bytes, too_large
from semsearch.optional import require
from semsearch.types import Document, Heading

__all__ = ["parse_docx"]

_HEADING_STYLE = re.compile(r"heading\s*(\d)", re.IGNORECASE)
_OUTLINE_LEVEL = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}outlineLvl"
_VAL = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}val"


def parse_docx(data: bytes, name: str = "") -> Document:
    """A Document of the body's paragraphs and tables; Heading/Title styles become headings."""
    docx = require("docx", "docx", package="python-docx", error=ExtractError)
    _check_unpacked_size(data)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises zipfile/lxml/KeyError kinds for broken files
        raise ExtractError(f"not a readable Word document: {type(exc).__name__}: {exc}") from exc

    blocks: list[tuple[str, int]] = []  # (text, heading level or 0)
    for item in document.iter_inner_content():
        if hasattr(item, "rows"):
            blocks.extend((row, 0) for row in _table_rows(item))
        else:
            text = item.text.strip()
            if text:
                blocks.append((text, _heading_level(item)))

    pieces: list[str] = []
    source_lines: list[int] = []
    headings: list[Heading] = []
    offset = 0
    for number, (text, level) in enumerate(blocks, start=1):
        if pieces:
            pieces.append("\n\n")
            offset += 2
            source_lines.append(number - 1)
        if level:
            headings.append(Heading(char_start=offset, level=level, title=" ".join(text.split())))
        pieces.append(text)
        offset += len(text)
        source_lines.extend([number] * (text.count("\n") + 1))

    properties = document.core_properties
    metadata = {key: value.strip() for key, value in
                (("title", properties.title), ("author", properties.author), ("subject", properties.subject))
                if isinstance(value, str) and value.strip()}
    title = metadata.get("title") or next((h.title for h in headings if h.level == 1), "") or name
    return Document(text="".join(pieces), title=title, extractor="docx", headings=tuple(headings),
                    source_lines=tuple(source_lines), metadata=metadata)


def _check_unpacked_size(data: bytes) -> None:
    """Refuse a Word file whose parts unpack to more than the file size limit (a zip bomb).

    python-docx reads every part into memory. The sizes come from the zip directory; a part that
    lies about its size cannot unpack to more than it declares (zipfile stops there and fails the
    CRC), so the sum bounds the memory.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(item.file_size for item in archive.infolist())
    except (zipfile.BadZipFile, ValueError):
        return  # python-docx reports the broken file in its own words
    limit = max_file_bytes()
    if unpacked > limit:
        raise ExtractError(too_large(unpacked, limit, "too large once unpacked"))


def _heading_level(paragraph: Any) -> int:
    """1–9 for Title/Heading N styles (or an explicit outline level), 0 for body text."""
    style = paragraph.style
    while style is not None:
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 1
        found = _HEADING_STYLE.fullmatch(name) or _HEADING_STYLE.fullmatch(style.style_id or "")
        if found:
            return max(1, int(found.group(1)))
        style = style.base_style
    p_pr = paragraph._p.pPr
    outline = p_pr.find(_OUTLINE_LEVEL) if p_pr is not None else None
    if outline is not None and (outline.get(_VAL) or "").isdigit() and int(outline.get(_VAL)) < 9:
        return int(outline.get(_VAL)) + 1
    return 0


def _table_rows(table: Any) -> list[str]:
    """One line per row, cells joined by " | "; a merged cell is written once; nested tables inline."""
    rows = []
    for row in table.rows:
        cells = []
        seen = set()
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            parts = [p.text.strip() for p in cell.paragraphs if p.text.strip()]
            for nested in cell.tables:
                parts.extend(_table_rows(nested))
            cells.append(" ".join(" ".join(parts).split()))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows
