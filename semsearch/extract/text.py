"""Plain text and source code: the file text as is, no headings, titled by the file name."""

from __future__ import annotations

from pathlib import PurePath

from semsearch.types import Document

__all__ = ["line_offsets", "parse_code", "parse_text"]


def parse_text(text: str, name: str = "") -> Document:
    """A plain-text Document: `text` unchanged (so lines are file lines), title = `name`."""
    return Document(text=text, title=name, extractor="text")


def parse_code(text: str, name: str = "") -> Document:
    """A source-code or data-file Document; `metadata["language"]` is the file suffix without the dot."""
    language = PurePath(name).suffix.lstrip(".").lower() if name else ""
    if not language and name:
        language = name.lower()  # Makefile, Dockerfile, ...
    metadata = {"language": language} if language else {}
    return Document(text=text, title=name, extractor="code", metadata=metadata)


def line_offsets(text: str) -> tuple[list[str], list[int]]:
    """The lines of `text` (split on "\\n") and the character offset where each starts."""
    lines = text.split("\n")
    offsets = []
    offset = 0
    for line in lines:
        offsets.append(offset)
        offset += len(line) + 1
    return lines, offsets
