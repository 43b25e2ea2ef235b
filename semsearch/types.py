"""The typed values that cross stage boundaries: SourceFile → Document → Chunk → Hit, and reports.

Every stage of the pipeline takes and returns these frozen dataclasses, never positional tuples,
so a reader can follow the data flow (DESIGN §1) by type names alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

EmbedKind = Literal["query", "document"]


@dataclass(frozen=True)
class SourceFile:
    """A file found by the walk: where it is and its cheap-to-read stat fields."""

    path: Path  # absolute
    root: Path  # absolute root folder it was found under
    relpath: str  # POSIX-style path relative to root; the document key within the root
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Heading:
    """A heading inside extracted text: where it starts and how deep it is (1 = top level)."""

    char_start: int
    level: int
    title: str


@dataclass(frozen=True)
class Document:
    """Text extracted from one source, with the structure the chunker needs.

    `headings` mark section starts inside `text`. `source_lines`, when set, maps each line of
    `text` (0-based index) to its 1-based line number in the original file, for formats whose
    extracted text is not the file itself (HTML); when None, lines of `text` are file lines.
    """

    text: str
    title: str = ""
    extractor: str = "text"
    headings: tuple[Heading, ...] = ()
    source_lines: tuple[int, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document small enough to embed, with everything needed to cite it."""

    ordinal: int
    text: str
    char_start: int  # offsets into Document.text, end exclusive
    char_end: int
    line_start: int  # 1-based, inclusive, in the original file
    line_end: int
    heading_path: tuple[str, ...] = ()
    tokens: int = 0  # token estimate (semsearch.chunking.estimate_tokens)

    @property
    def heading(self) -> str:
        return " › ".join(self.heading_path)


@dataclass(frozen=True)
class TextItem:
    """A caller-supplied text (not a file) for `Index.add_texts`."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)
    title: str = ""


@dataclass(frozen=True)
class Hit:
    """One search result: a chunk, its score, and where it came from."""

    rank: int
    score: float
    text: str
    path: str  # absolute file path, or the caller's id for texts added with add_texts
    document_id: int
    chunk_id: int
    line_start: int
    line_end: int
    char_start: int
    char_end: int
    heading_path: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)
    title: str = ""
    is_file: bool = True

    @property
    def heading(self) -> str:
        return " › ".join(self.heading_path)

    @property
    def citation(self) -> str:
        """`path:line-line` (or the caller id) for showing where a passage comes from."""
        if not self.is_file:
            return self.path
        if self.line_start == self.line_end:
            return f"{self.path}:{self.line_start}"
        return f"{self.path}:{self.line_start}-{self.line_end}"

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape of a hit (the `search --json` contract)."""
        return {
            "rank": self.rank,
            "score": self.score,
            "path": self.path,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "heading": self.heading,
            "heading_path": list(self.heading_path),
            "title": self.title,
            "text": self.text,
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class FileProblem:
    """A file that was skipped or failed, and why (shown to the user, never fatal)."""

    path: str
    reason: str


@dataclass(frozen=True)
class IndexReport:
    """What one indexing run did."""

    files_added: int = 0
    files_updated: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    files_failed: int = 0
    files_skipped: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    problems: tuple[FileProblem, ...] = ()
    interrupted: bool = False

    @property
    def chunks_per_second(self) -> float:
        done = self.chunks_embedded + self.chunks_reused
        return done / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "files_added": self.files_added,
            "files_updated": self.files_updated,
            "files_unchanged": self.files_unchanged,
            "files_removed": self.files_removed,
            "files_failed": self.files_failed,
            "files_skipped": self.files_skipped,
            "chunks_embedded": self.chunks_embedded,
            "chunks_reused": self.chunks_reused,
            "chunks_total": self.chunks_total,
            "seconds": round(self.seconds, 3),
            "chunks_per_second": round(self.chunks_per_second, 1),
            "problems": [{"path": p.path, "reason": p.reason} for p in self.problems],
            "interrupted": self.interrupted,
        }


@dataclass(frozen=True)
class IndexStatus:
    """What `semsearch status` shows."""

    path: str
    provider: str
    model: str
    dimensions: int
    query_instruction: str
    document_prefix: str
    chunk_tokens: int
    chunk_overlap: int
    documents: int
    chunks: int
    index_type: str
    bytes_on_disk: int
    generation: int
    faiss_generation: int
    faiss_vectors: int
    in_sync: bool
    schema_version: int
    faiss_type: str = "flat"  # the concrete type of vectors.faiss (index_type may be "auto")
    tombstones: int = 0  # deleted vectors an HNSW file still holds, hidden from search

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
