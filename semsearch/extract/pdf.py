"""PDF (.pdf) through pypdf: text page by page, the outline as headings, pages as citable parts.

Lines of a hit count within its page (`report.pdf#page=3:12-14`). A PDF that opens with the empty
password (owner-password-only "protected" files) is read; one that needs a password, or whose
pages carry no text layer (scans), raises NoTextError so it is reported and skipped.
"""

from __future__ import annotations

import io
import re
from typing import Any

from semsearch.errors import ExtractError, NoTextError
from semsearch.extract.decoding import normalize_newlines
from semsearch.optional import install_hint, require
from semsearch.types import Document, Heading

__all__ = ["parse_pdf"]

_PAGE_SEPARATOR = "\n\n"
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_MAX_OUTLINE_DEPTH = 3


def parse_pdf(data: bytes, name: str = "") -> Document:
    """A Document with one part per page; raises NoTextError for encrypted or image-only PDFs."""
    pypdf = require("pypdf", "pdf", error=ExtractError)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
            raise NoTextError("encrypted PDF: it needs a password to open, so its text cannot be indexed")
        pages, unreadable = [], []
        for number, page in enumerate(reader.pages, start=1):
            try:
                pages.append(_page_text(page))
            except (pypdf.errors.FileNotDecryptedError, pypdf.errors.DependencyError):
                raise
            except Exception:  # one malformed content stream must not cost the other pages
                pages.append("")
                unreadable.append(number)
    except pypdf.errors.FileNotDecryptedError as exc:
        raise NoTextError("encrypted PDF: it needs a password to open, so its text cannot be indexed") from exc
    except pypdf.errors.DependencyError as exc:
        raise ExtractError(f"encrypted PDF needs the cryptography package to decrypt — {install_hint('pdf')}") from exc
    except pypdf.errors.PdfReadError as exc:
        raise ExtractError(f"not a readable PDF: {exc}") from exc
    if not any(page.strip() for page in pages):
        raise NoTextError(
            f"no text layer in {len(pages)} page(s): an image-only (scanned) PDF — run OCR on it "
            "(for example ocrmypdf) to make it searchable"
        )

    starts: list[int] = []
    source_lines: list[int] = []
    pieces: list[str] = []
    offset = 0
    for text in pages:
        if text and pieces:
            pieces.append(_PAGE_SEPARATOR)
            offset += len(_PAGE_SEPARATOR)
            source_lines.append(source_lines[-1])  # the blank line between pages
        starts.append(offset)
        if text:
            pieces.append(text)
            offset += len(text)
            source_lines.extend(range(1, text.count("\n") + 2))
    full_text = "".join(pieces)

    info = _metadata(reader)
    headings = _outline_headings(reader, pypdf, pages, starts)
    title = info.get("title") or next((h.title for h in headings if h.level == 1), "") or name
    return Document(
        text=full_text,
        title=title,
        extractor="pdf",
        headings=tuple(headings),
        source_lines=tuple(source_lines),
        metadata={**info, "pages": len(pages), **({"unreadable_pages": unreadable} if unreadable else {})},
        parts=tuple(starts),
        part_kind="page",
    )


def _page_text(page: Any) -> str:
    text = normalize_newlines(page.extract_text() or "")
    return _TRAILING_SPACE.sub("\n", text).strip("\n")


def _metadata(reader: Any) -> dict[str, str]:
    try:
        meta = reader.metadata
    except Exception:  # a broken info dictionary must not cost the text
        return {}
    if meta is None:
        return {}
    found = {}
    for key in ("title", "author", "subject"):
        value = getattr(meta, key, None)
        if isinstance(value, str) and value.strip():
            found[key] = " ".join(value.split())
    return found


def _outline_headings(reader: Any, pypdf: Any, pages: list[str], starts: list[int]) -> list[Heading]:
    """Bookmarks → headings at the bookmark title on its page (else the page start)."""
    headings: list[Heading] = []
    try:
        outline = reader.outline
    except Exception:
        return headings

    def visit(items: list[Any], level: int) -> None:
        for item in items:
            if isinstance(item, list):
                if level < _MAX_OUTLINE_DEPTH:
                    visit(item, level + 1)
                continue
            try:
                page_index = reader.get_destination_page_number(item)
            except Exception:
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            if title and page_index is not None and 0 <= page_index < len(pages):
                found = pages[page_index].find(title)
                offset = starts[page_index] + (found if found >= 0 else 0)
                headings.append(Heading(char_start=offset, level=level, title=title))

    visit(list(outline or []), 1)
    return sorted(headings, key=lambda h: h.char_start)
