"""SourceFile → Document: read a file, pick the extractor for its format, return its text and structure.

One module per format family (text.py: plain text and code, markdown.py, rst.py, html.py,
pdf.py, docx.py, notebook.py), joined here by a registry keyed by file suffix (and by file name
for README, Makefile, ...). PDF and DOCX need optional extras; their modules import the library
only when a file is read and raise ExtractError with the install hint when it is missing, so
the file is reported and the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Callable

from semsearch.errors import ConfigError, ExtractError
from semsearch.extract.decoding import BINARY, decode, looks_binary, normalize_newlines
from semsearch.extract.docx import parse_docx
from semsearch.extract.markdown import parse_markdown
from semsearch.extract.notebook import parse_notebook
from semsearch.extract.pdf import parse_pdf
from semsearch.extract.rst import parse_rst
from semsearch.extract.text import parse_code, parse_text
from semsearch.types import Document, SourceFile

__all__ = ["FILENAMES", "SUFFIXES", "Extractor", "extract", "extract_text", "is_supported", "register"]


@dataclass(frozen=True)
class Extractor:
    """One format family: the files it claims and how it turns their content into a Document.

    `parse_text(text, name)` handles already-decoded text (None for binary formats such as PDF);
    `parse_bytes(data, name)` handles file bytes and defaults to `decode` + `parse_text`.
    `name` is the file name, the title of last resort. Both raise ExtractError on bad input.
    """

    name: str
    suffixes: tuple[str, ...] = ()
    filenames: tuple[str, ...] = ()  # exact file names, compared lowercased (README, Makefile)
    parse_text: Callable[[str, str], Document] | None = None
    parse_bytes: Callable[[bytes, str], Document] | None = None

    def read(self, data: bytes, name: str) -> Document:
        if self.parse_bytes is not None:
            return self.parse_bytes(data, name)
        assert self.parse_text is not None, f"extractor {self.name} can parse nothing"
        return self.parse_text(decode(data), name)


def _parse_html(text: str, name: str) -> Document:
    from semsearch.extract.html import parse_html  # BeautifulSoup loads only when HTML is met

    return parse_html(text, name)


def _parse_html_bytes(data: bytes, name: str) -> Document:
    from semsearch.extract.html import parse_html_bytes

    return parse_html_bytes(data, name)


SUFFIXES: dict[str, str] = {}  # ".md" → "markdown"
FILENAMES: dict[str, str] = {}  # "makefile" → "code"
_EXTRACTORS: dict[str, Extractor] = {}


def register(extractor: Extractor) -> None:
    """Add (or replace) an extractor and claim its suffixes and file names for it."""
    _EXTRACTORS[extractor.name] = extractor
    for suffix in extractor.suffixes:
        SUFFIXES[suffix.lower()] = extractor.name
    for filename in extractor.filenames:
        FILENAMES[filename.lower()] = extractor.name


register(
    Extractor(
        name="text",
        suffixes=(".txt", ".text", ".log"),
        filenames=("readme", "license", "licence", "copying", "notice", "authors", "contributors",
                   "changelog", "changes", "history", "news", "install", "todo", "thanks"),
        parse_text=parse_text,
    )
)
register(
    Extractor(
        name="code",
        suffixes=(".py", ".js", ".ts", ".tsx", ".jsx", ".go", ".rs", ".java", ".c", ".h", ".cpp",
                  ".hpp", ".cs", ".rb", ".php", ".swift", ".kt", ".scala", ".sh", ".bash", ".zsh",
                  ".sql", ".lua", ".r", ".m", ".pl", ".toml", ".yaml", ".yml", ".json", ".ini",
                  ".cfg", ".css", ".scss", ".tex", ".csv", ".tsv"),
        filenames=("makefile", "gnumakefile", "dockerfile", "containerfile", "vagrantfile",
                   "gemfile", "rakefile", "procfile", "jenkinsfile", "justfile"),
        parse_text=parse_code,
    )
)
register(Extractor(name="markdown", suffixes=(".md", ".markdown", ".mdx"), parse_text=parse_markdown))
register(Extractor(name="rst", suffixes=(".rst",), parse_text=parse_rst))
register(
    Extractor(
        name="html", suffixes=(".html", ".htm", ".xhtml"), parse_text=_parse_html, parse_bytes=_parse_html_bytes
    )
)
register(Extractor(name="pdf", suffixes=(".pdf",), parse_bytes=parse_pdf))
register(Extractor(name="docx", suffixes=(".docx",), parse_bytes=parse_docx))
register(Extractor(name="notebook", suffixes=(".ipynb",), parse_bytes=parse_notebook))


def is_supported(path: Path) -> bool:
    """True if `extract` knows the format of `path` (by suffix, or by name for suffix-less files)."""
    return _extractor_for(PurePath(path)) is not None


def extract(source: SourceFile, data: bytes | None = None) -> Document:
    """Read `source` (or use `data`, its bytes, when the caller already has them) → Document.

    Raises ExtractError with a short reason: "cannot read: permission denied" (and other read
    failures), "unsupported file type", "binary content", "not valid UTF-8, UTF-16 or GB18030
    text", or a parser failure. An empty file gives a Document with empty text.
    """
    path = PurePath(source.path)
    extractor = _extractor_for(path)
    if extractor is None:
        # Named on the command line or by --include: say what the file is when we can tell.
        if looks_binary(data if data is not None else _read(Path(source.path))):
            raise ExtractError(BINARY)
        raise ExtractError(f"unsupported file type: {path.suffix or path.name}")
    if data is None:
        data = _read(Path(source.path))
    try:
        return extractor.read(data, path.name)
    except ExtractError:
        raise
    except Exception as exc:  # a third-party parser choking on one file must not end the run
        raise ExtractError(f"cannot extract {extractor.name} text: {type(exc).__name__}: {exc}") from exc


def extract_text(text: str, *, kind: str = "text", name: str = "") -> Document:
    """Parse caller-supplied text as `kind` → Document.

    `kind` is an extractor name ("text", "code", "markdown", "rst", "html") or a file suffix
    ("md", ".html"); `name` is the title of last resort. Newlines are normalised to "\\n" as for
    files. Raises ConfigError for an unknown kind or one that only reads binary files.
    """
    lowered = kind.lower()
    extractor = _EXTRACTORS.get(lowered)
    if extractor is None:
        suffix = lowered if lowered.startswith(".") else "." + lowered
        extractor = _EXTRACTORS.get(SUFFIXES.get(suffix, ""))
    if extractor is None or extractor.parse_text is None:
        choices = ", ".join(sorted(n for n, e in _EXTRACTORS.items() if e.parse_text is not None))
        raise ConfigError(f"unknown text kind {kind!r}: use one of {choices} or a file suffix")
    return extractor.parse_text(normalize_newlines(text), name)


def _extractor_for(path: PurePath) -> Extractor | None:
    name = SUFFIXES.get(path.suffix.lower()) if path.suffix else None
    if name is None:
        name = FILENAMES.get(path.name.lower())
    return _EXTRACTORS.get(name) if name else None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError as exc:
        raise ExtractError("cannot read: permission denied") from exc
    except FileNotFoundError as exc:
        raise ExtractError("cannot read: the file disappeared") from exc
    except IsADirectoryError as exc:
        raise ExtractError("cannot read: it is a directory") from exc
    except OSError as exc:
        raise ExtractError(f"cannot read: {(exc.strerror or str(exc)).lower()}") from exc
