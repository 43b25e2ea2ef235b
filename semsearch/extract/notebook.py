"""Jupyter notebooks (.ipynb): markdown, code and raw cells as citable parts; outputs are left out.

Cells are numbered from 1 in notebook order, counting every cell, so `nb.ipynb#cell=4:2-3` is the
fourth cell, lines 2–3 of its source. Markdown headings feed the heading path of the cells below
them. Outputs (tables, images, tracebacks) are not indexed: they are generated, often huge, and
rarely what a reader searches for.
"""

from __future__ import annotations

import json

from semsearch.errors import ExtractError
from semsearch.extract.decoding import decode
from semsearch.extract.markdown import parse_markdown
from semsearch.types import Document, Heading

__all__ = ["parse_notebook"]

_CELL_SEPARATOR = "\n\n"


def parse_notebook(data: bytes, name: str = "") -> Document:
    """A Document with one part per cell (nbformat 4, and the worksheets of nbformat 3)."""
    try:
        notebook = json.loads(decode(data))
    except json.JSONDecodeError as exc:
        raise ExtractError(f"not a valid notebook: JSON error at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(notebook, dict):
        raise ExtractError("not a valid notebook: the top level is not a JSON object")
    cells = notebook.get("cells")
    if cells is None:  # nbformat 3
        cells = [cell for sheet in notebook.get("worksheets") or [] for cell in sheet.get("cells") or []]
    if not isinstance(cells, list):
        raise ExtractError("not a valid notebook: `cells` is not a list")

    pieces: list[str] = []
    starts: list[int] = []
    source_lines: list[int] = []
    headings: list[Heading] = []
    offset = 0
    for cell in cells:
        source, first_line = _source(cell)
        if source and pieces:
            pieces.append(_CELL_SEPARATOR)
            offset += len(_CELL_SEPARATOR)
            source_lines.append(source_lines[-1])
        starts.append(offset)
        if not source:
            continue
        if cell.get("cell_type") == "markdown":
            parsed = parse_markdown(source)
            headings.extend(Heading(offset + h.char_start, h.level, h.title) for h in parsed.headings)
        pieces.append(source)
        offset += len(source)
        source_lines.extend(range(first_line, first_line + source.count("\n") + 1))

    metadata = notebook.get("metadata") if isinstance(notebook.get("metadata"), dict) else {}
    language = ((metadata.get("kernelspec") or {}).get("language")
                or (metadata.get("language_info") or {}).get("name") or "")
    title = (metadata.get("title") if isinstance(metadata.get("title"), str) else "") or next(
        (h.title for h in headings if h.level == 1), "") or name
    return Document(
        text="".join(pieces),
        title=title,
        extractor="notebook",
        headings=tuple(headings),
        source_lines=tuple(source_lines),
        metadata={"language": language} if isinstance(language, str) and language else {},
        parts=tuple(starts),
        part_kind="cell",
    )


def _source(cell: object) -> tuple[str, int]:
    """A cell's source without outer blank lines, and the cell line its first line is."""
    if not isinstance(cell, dict):
        return "", 1
    source = cell.get("source", cell.get("input", ""))  # nbformat 3 code cells call it "input"
    if isinstance(source, list):
        source = "".join(str(line) for line in source)
    if not isinstance(source, str) or not source.strip():
        return "", 1
    source = source.replace("\r\n", "\n").replace("\r", "\n").rstrip()
    body = source.lstrip("\n")
    return body, 1 + len(source) - len(body)
