"""The typed values that cross stage boundaries: SourceFile → Document → Chunk → Hit, and reports.

Every stage of the pipeline takes and returns these frozen dataclasses, never positional tuples,
so a reader can follow the data flow (DESIGN §1) by type names alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from semsearch.errors import InvalidInputError

if TYPE_CHECKING:
    from semsearch.stores import StoreStatus

EmbedKind = Literal["query", "document"]


@dataclass(frozen=True)
class SourceFile:
    """A file found by the walk: where it is and its cheap-to-read stat fields."""

    path: Path  # absolute
    root: Path  # absolute root folder it was found under
    relpath: str  # POSIX-style path relative to root, what include/exclude globs match
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
    For paged formats `parts` holds the offsets in `text` where part 1, 2, ... starts (PDF
    pages, notebook cells; `part_kind` says which) and `source_lines` counts lines within each
    part. An empty part starts where the next one does. Chunks never straddle two parts.
    """

    text: str
    title: str = ""
    extractor: str = "text"
    headings: tuple[Heading, ...] = ()
    source_lines: tuple[int, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)
    parts: tuple[int, ...] = ()
    part_kind: str = ""  # "page" | "cell" when `parts` is set


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
    tokens: int = 0  # token estimate (semsearch.tokens.estimate_tokens)
    part: int | None = None  # 1-based page or cell number for paged documents

    @property
    def heading(self) -> str:
        return " › ".join(self.heading_path)


@dataclass(frozen=True)
class TextItem:
    """A caller-supplied text (not a file) for `Index.add_texts`.

    Checked when made, so a bad item is refused before anything is written: `id` is a non-empty
    string, `text` and `title` are strings, every string is valid Unicode (no lone surrogates),
    and `metadata` is a dict with string keys whose values JSON can hold (None, bool, int, finite
    float, str, lists and dicts of those). Raises InvalidInputError otherwise.
    """

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)
    title: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise InvalidInputError(f"a text's id must be a non-empty string, not {self.id!r}")
        name = f"text {self.id!r}" if _is_unicode(self.id) else "a text"
        _check_string(self.id, f"{name}: its id")
        _check_string(self.text, f"{name}: its text")
        _check_string(self.title, f"{name}: its title")
        if not isinstance(self.metadata, dict):
            raise InvalidInputError(f"{name}: metadata must be a dict, not {type(self.metadata).__name__}")
        check_json_value(self.metadata, f"{name}: metadata")


def check_json_value(value: Any, where: str) -> None:
    """Raise InvalidInputError unless `value` is plain JSON (SQLite's JSON functions must read it back).

    Python's json module writes NaN and Infinity, which are not JSON: SQLite then calls the
    whole stored object malformed, and every metadata filter fails on it.
    """
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{where} is {value}, which JSON cannot hold — use a finite number, "
                                    "a string or null")
        return
    if isinstance(value, str):
        _check_string(value, where)
        return
    if isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            check_json_value(item, f"{where}[{position}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"{where} has the key {key!r}: metadata keys must be strings")
            _check_string(key, f"{where} key")
            check_json_value(item, f"{where}[{key!r}]")
        return
    raise InvalidInputError(f"{where} is a {type(value).__name__} value, which JSON cannot hold — use null, "
                            "true/false, a number, a string, a list or a dict")


def _is_unicode(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_string(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise InvalidInputError(f"{where} must be a string, not {type(value).__name__}")
    if not _is_unicode(value):
        raise InvalidInputError(f"{where} holds a lone surrogate (invalid Unicode) — send valid UTF-8 text")


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
    # `score` is whichever of these decided the order: the rerank score when reranked.
    retrieval_score: float | None = None  # the vector, keyword or fused score; set on every hit
    rerank_score: float | None = None  # None unless a reranker scored this hit
    part_kind: str = ""  # "page" (PDF) or "cell" (notebook) when the document is paged
    part: int | None = None
    stale: bool = False  # the file changed or vanished since it was indexed (checked when the hit is returned)
    # What `score` measures: "cosine" (vector), "bm25" (keyword), "fused" (hybrid, 0..1) or "rerank".
    score_kind: str = ""
    # The rank of this hit's document among the documents of the hits, by each one's best hit (1 = best).
    document_rank: int | None = None

    @property
    def heading(self) -> str:
        return " › ".join(self.heading_path)

    @property
    def page(self) -> int | None:
        """The 1-based page of a paged document (PDF); lines then count within the page."""
        return self.part if self.part_kind == "page" else None

    @property
    def cell(self) -> int | None:
        """The 1-based cell of a notebook; lines then count within the cell."""
        return self.part if self.part_kind == "cell" else None

    @property
    def citation(self) -> str:
        """`path:line-line`, `file.pdf#page=3:line-line`, `nb.ipynb#cell=4:line-line`, or the caller id."""
        if not self.is_file:
            return self.path
        return cite(self.path, self.line_start, self.line_end, self.part_kind, self.part)

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
            "retrieval_score": self.retrieval_score,
            "rerank_score": self.rerank_score,
            "page": self.page,
            "cell": self.cell,
            "stale": self.stale,
            "score_kind": self.score_kind,
            "document_rank": self.document_rank,
        }


def cite(path: str, line_start: int, line_end: int, part_kind: str = "", part: int | None = None) -> str:
    """The one citation format: `path:12-18`, or `path#page=3:12-18` with lines inside the part."""
    where = f"{path}#{part_kind}={part}" if part_kind and part is not None else path
    lines = str(line_start) if line_start == line_end else f"{line_start}-{line_end}"
    return f"{where}:{lines}"



def embed_text(item: Chunk | Hit) -> str:
    """The text a model sees for a chunk (embedder) or hit (reranker): its heading path as context, then its text."""
    if item.heading_path:
        return " › ".join(item.heading_path) + "\n" + item.text
    return item.text

@dataclass(frozen=True)
class StageTimings:
    """Seconds one search spent in each stage (a stage that did not run counts 0)."""

    embed: float = 0.0  # embedding the query
    retrieve: float = 0.0  # FAISS and/or FTS5 candidate lists
    fuse: float = 0.0  # fusion (hybrid) and joining candidates with their chunk rows
    rerank: float = 0.0  # the reranker's requests, including a failed attempt before a fallback

    @property
    def total(self) -> float:
        return self.embed + self.retrieve + self.fuse + self.rerank

    def to_dict(self) -> dict[str, float]:
        return {"embed": self.embed, "retrieve": self.retrieve, "fuse": self.fuse, "rerank": self.rerank,
                "total": self.total}


@dataclass(frozen=True)
class SearchResult:
    """The hits of one search with how long each stage took.

    `reranked` says whether the hits are in reranker order; `rerank_fallback` holds the reason
    when reranking was asked for but failed and the hits are in retrieval order instead.
    """

    hits: tuple[Hit, ...]
    timings: StageTimings
    reranked: bool = False
    rerank_fallback: str | None = None
    # Of the index's `chunks`, those still waiting for their vector: vector search cannot find them
    # yet (keyword search can); hybrid fuses the keyword list with the vectors there are.
    pending_chunks: int = 0
    chunks: int = 0


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
    # How `chunks_total` adds up: chunks_embedded + chunks_reused + chunks_kept. `chunks_reused`
    # (given a vector without embedding) splits into chunks_duplicate (the same text as another
    # chunk of this run, embedded once) and chunks_cached (text already in the index before).
    chunks_duplicate: int = 0
    chunks_kept: int = 0  # chunks of documents this run did not write (unchanged files, other folders)
    # Left out by .gitignore / .semsearchignore, unread: files, and folders not entered.
    files_ignored: int = 0
    folders_ignored: int = 0
    # Chunks searchable by keyword still waiting for their vector (the embedder failed, or Ctrl-C);
    # the next run embeds them. Counted apart from the three above: they add up to chunks_total.
    chunks_pending: int = 0

    @property
    def chunks_cached(self) -> int:
        return self.chunks_reused - self.chunks_duplicate

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
            "files_ignored": self.files_ignored,
            "folders_ignored": self.folders_ignored,
            "chunks_embedded": self.chunks_embedded,
            "chunks_reused": self.chunks_reused,
            "chunks_total": self.chunks_total,
            "chunks_cached": self.chunks_cached,
            "chunks_duplicate": self.chunks_duplicate,
            "chunks_kept": self.chunks_kept,
            "chunks_pending": self.chunks_pending,
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
    base_url: str = ""  # the OpenAI-compatible server an openai: index was built with
    files_changed: int = 0  # indexed files whose size or mtime differs now (not re-indexed yet)
    files_missing: int = 0  # indexed files that no longer exist
    code_chunker: str = ""  # what cut source files at function/class boundaries ("" = the text chunker)
    pending_chunks: int = 0  # chunks searchable by keyword, still waiting for their vector
    store: StoreStatus | None = None  # the store searched (local or Milvus) and whether it agrees with SQLite

    def to_dict(self) -> dict[str, Any]:
        values = dict(self.__dict__)
        if self.store is not None:
            values["store"] = {k: v for k, v in self.store.__dict__.items() if k != "problem" or v}
        return values


@dataclass(frozen=True)
class DocumentText:
    """The indexed text of one document, or of a line range of it (`Index.get`), with its citation."""

    path: str  # absolute file path (as search hits show it), or the caller's id for added texts
    citation: str  # `path:12-30` (`file.pdf#page=3:1-20`); the bare path for a whole multi-page document, the id for a text
    text: str
    line_start: int
    line_end: int
    last_line: int  # the document's (or page's) last line, so a caller can ask for the rest
    document_id: int
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)
    is_file: bool = True
    part_kind: str = ""  # "page" or "cell" when the text is one part of a paged document
    part: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def text_item(item: TextItem | dict[str, Any]) -> TextItem:
    """A `TextItem`, or one made from a dict with the keys id, text and optionally metadata and title."""
    if isinstance(item, TextItem):
        return item
    if not isinstance(item, dict):
        raise InvalidInputError(f"add_texts takes TextItem objects or dicts, not {type(item).__name__}")
    unknown = sorted(set(item) - {"id", "text", "metadata", "title"}, key=str)
    if unknown or "id" not in item or "text" not in item:
        raise InvalidInputError(f"a text item needs the keys id and text (metadata and title are optional); "
                                f"got {sorted(item, key=str)}")
    return TextItem(**item)


@dataclass(frozen=True)
class IndexSource:
    """A folder or file the index remembers (`Index.sources`), with what decides which of its files
    are indexed; `semsearch index` with no path (`Index.refresh`) indexes each again with these."""

    path: Path  # absolute
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    use_ignore_files: bool = True  # .gitignore / .semsearchignore respected (`--no-ignore` turns it off)
    documents: int = 0  # indexed files under it when listed

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "include": list(self.include),
            "exclude": list(self.exclude),
            "use_ignore_files": self.use_ignore_files,
            "documents": self.documents,
            "exists": self.exists,
        }
