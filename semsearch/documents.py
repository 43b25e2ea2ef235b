"""Reading back what was indexed: a document, or a line range of it, by path or citation (`Index.get`).

The text comes from the stored chunks, not the file, so it is what search answered from even if
the file changed or went away since. Each chunk is `document.text[char_start:char_end]`, so
overlaps are written once and a gap between chunks (whitespace only) is rebuilt with as many line
breaks as the line numbers say, which keeps line N of the result at line N of the document.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from semsearch.errors import ConfigError, DocumentNotFoundError
from semsearch.store import ChunkRow, Store
from semsearch.types import DocumentText, cite

# `path`, `path:12`, `path:12-30`, `file.pdf#page=3:12-30`, `nb.ipynb#cell=4` — the format of `types.cite`.
_CITATION = re.compile(r"^(?P<path>.+?)(?:#(?P<kind>page|cell)=(?P<part>\d+))?(?::(?P<start>\d+)(?:-(?P<end>\d+))?)?$")


@dataclass(frozen=True)
class Citation:
    """A parsed `path[#page=N][:start[-end]]`."""

    path: str
    part_kind: str = ""
    part: int | None = None
    line_start: int | None = None
    line_end: int | None = None


def parse_citation(text: str) -> Citation:
    """Split a citation into its path, part and lines; a string without them is all path."""
    match = _CITATION.match(text.strip())
    if match is None:
        return Citation(text)
    start = int(match["start"]) if match["start"] else None
    end = int(match["end"]) if match["end"] else start
    return Citation(match["path"], match["kind"] or "", int(match["part"]) if match["part"] else None, start, end)


def find_document_text(store: Store, index_path: Path, path_or_citation: str, *, line_start: int | None = None,
                       line_end: int | None = None) -> DocumentText:
    """The indexed text of the document `path_or_citation` names in the index at `index_path` (see `Index.get`).

    Explicit `line_start`/`line_end` override the citation's. Raises DocumentNotFoundError when
    the index holds no such document or lines, ConfigError for a line number below 1.
    """
    wanted = path_or_citation.strip()
    document_id = _document_for(store, index_path, wanted)
    citation = Citation(wanted)  # the whole string names a document, even one that looks like a citation
    if document_id is None:
        citation = parse_citation(wanted)
        document_id = _document_for(store, index_path, citation.path)
    rows = store.document_chunks(document_id) if document_id is not None else []
    if not rows:
        raise DocumentNotFoundError(
            f"no document {citation.path!r} in the index at {index_path} — give a path as search results "
            "show it (absolute, or relative to the current directory), or an id given to add_texts"
        )
    if line_start is not None or line_end is not None:
        start = line_start if line_start is not None else citation.line_start or 1
        end = line_end if line_end is not None else citation.line_end if line_start is None else None
        citation = dataclasses.replace(citation, line_start=start, line_end=end)
    if citation.line_start is not None and citation.line_start < 1:
        raise ConfigError(f"line numbers start at 1, not {citation.line_start}")
    return read(rows, rows[0].path, citation)


def _document_for(store: Store, index_path: Path, path: str) -> int | None:
    """The id of the document a user named by path (or text id); None when it is not indexed.

    The one place that maps what a user typed to a stored document: a relative path is tried
    against the current directory, then the index's home directory.
    """
    if not path:
        return None
    given = Path(path).expanduser()
    bases = [Path("/")] if given.is_absolute() else [Path.cwd(), index_path.resolve().parent]
    candidates = []
    for base in bases:
        absolute = Path(os.path.abspath(base / given))
        candidates.append(absolute.as_posix())
        try:
            candidates.append(absolute.resolve().as_posix())
        except OSError:
            pass
    return store.find_document(candidates, path)


def read(rows: Sequence[ChunkRow], path: str, citation: Citation) -> DocumentText:
    """The text of a document's chunks `rows` (in order), or of the part and lines `citation` names."""
    first = rows[0]
    is_file = first.kind == "file"
    parts = sorted({row.part for row in rows if row.part is not None})
    if citation.part is not None:
        if not first.part_kind or (citation.part_kind and citation.part_kind != first.part_kind):
            raise DocumentNotFoundError(f"{path} has no {citation.part_kind or 'part'}s — cite it without #…=N")
        rows = [row for row in rows if row.part == citation.part]
        if not rows:
            raise DocumentNotFoundError(
                f"{path} has no {first.part_kind} {citation.part} in the index "
                f"(it has {first.part_kind}s {parts[0]}-{parts[-1]})"
            )
    elif parts and len(parts) > 1:
        if citation.line_start is not None:
            raise ConfigError(
                f"lines of {path} count within each {first.part_kind}: name one, e.g. "
                f"{cite(path, citation.line_start, citation.line_end or citation.line_start, first.part_kind, parts[0])}"
            )
        text = "\n\n".join(_join(group) for group in _by_part(rows))
        return DocumentText(path=path, citation=path, text=text, line_start=1, line_end=text.count("\n") + 1,
                            last_line=text.count("\n") + 1, document_id=first.document_id, title=first.title,
                            metadata=first.metadata, is_file=is_file)
    part = rows[0].part if rows[0].part_kind and rows[0].part is not None else None
    part_kind = rows[0].part_kind if part is not None else ""
    text = _join(rows)
    top = rows[0].line_start
    lines = text.split("\n")
    last = top + len(lines) - 1
    start = citation.line_start or top
    end = min(citation.line_end or last, last)
    if start > last or end < start:
        where = cite(path, start, citation.line_end or start, part_kind, part)
        raise DocumentNotFoundError(f"{where} is outside the indexed text, which has lines {top}-{last}")
    chosen = "\n".join(lines[max(start, top) - top:end - top + 1])
    whole = citation.line_start is None
    shown = path if whole and not is_file else cite(path, max(start, top), end, part_kind, part)
    return DocumentText(path=path, citation=shown, text=chosen, line_start=max(start, top), line_end=end,
                        last_line=last, document_id=first.document_id, title=first.title, metadata=first.metadata,
                        is_file=is_file, part_kind=part_kind, part=part)


def _by_part(rows: Sequence[ChunkRow]) -> list[list[ChunkRow]]:
    groups: dict[int | None, list[ChunkRow]] = {}
    for row in rows:
        groups.setdefault(row.part, []).append(row)
    return list(groups.values())


def _join(rows: Sequence[ChunkRow]) -> str:
    text, end, line_end = "", None, 0
    for row in rows:
        if end is None:
            text = row.text
        elif row.char_start < end:
            text += row.text[end - row.char_start:]
        else:
            text += ("\n" * (row.line_start - line_end) if row.line_start > line_end else " ") + row.text
        end = row.char_end if end is None else max(end, row.char_end)
        line_end = max(line_end, row.line_end)
    return text
