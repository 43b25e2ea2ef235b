"""HTML (.html, .htm, .xhtml): visible text by block, h1–h6 headings, lines mapped back to the file."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

from semsearch.extract.decoding import check_not_binary, decode, normalize_newlines
from semsearch.types import Document, Heading

__all__ = ["parse_html", "parse_html_bytes"]

# Never text a reader sees on the page (or page chrome repeated on every page of a site).
_DROPPED = frozenset(
    {"script", "style", "noscript", "template", "nav", "aside", "head", "svg", "math", "iframe",
     "object", "canvas", "select", "button"}
)
# Site banners and footers; kept inside <article>, where <header> usually holds the article's h1.
_DROPPED_OUTSIDE_ARTICLE = frozenset({"header", "footer"})
# The same chrome built from <div>s, marked with ARIA landmark roles instead of HTML5 elements.
_DROPPED_ROLES = frozenset({"navigation", "search", "complementary", "menu", "menubar"})
_DROPPED_ROLES_OUTSIDE_ARTICLE = frozenset({"banner", "contentinfo"})
_BLOCKS = frozenset(
    {"address", "article", "blockquote", "body", "caption", "center", "dd", "details", "dialog",
     "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup",
     "hr", "html", "legend", "li", "main", "menu", "ol", "p", "pre", "section", "summary", "table",
     "tbody", "tfoot", "thead", "tr", "ul", "h1", "h2", "h3", "h4", "h5", "h6"}
)
_CELLS = frozenset({"td", "th"})
_HEADING_LEVELS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_NOT_TEXT = (Comment, Declaration, Doctype, ProcessingInstruction)
_DECLARED_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)"""
    rb"""|<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""",
    re.IGNORECASE,
)
# What browsers actually use for these labels (WHATWG Encoding Standard).
_CHARSET_ALIASES = {"iso8859-1": "cp1252", "ascii": "cp1252", "gb2312": "gb18030", "gbk": "gb18030"}


def parse_html_bytes(data: bytes, name: str = "") -> Document:
    """Decode HTML bytes (BOM, UTF-8, then the page's declared charset, then GB18030) and parse them.

    Raises ExtractError for binary content or bytes that fit no encoding.
    """
    return parse_html(_decode_html(data), name)


def parse_html(text: str, name: str = "") -> Document:
    """An HTML Document: visible text, one paragraph per block element, headings from h1–h6.

    Title: <title>, else the first h1, else `name`. `source_lines` maps every line of the
    extracted text to its line in the HTML file.
    """
    soup = BeautifulSoup(text, "html.parser")
    title_tag = soup.find("title")
    page_title = " ".join(title_tag.get_text().split()) if title_tag is not None else ""
    builder = _Builder()
    _walk(soup, builder)
    document_text, source_lines, headings = builder.finish()
    title = page_title or next((h.title for h in headings if h.level == 1), "") or name
    return Document(
        text=document_text,
        title=title,
        extractor="html",
        headings=tuple(headings),
        source_lines=tuple(source_lines),
    )


def _decode_html(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return decode(data)
    check_not_binary(data)
    try:
        return normalize_newlines(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    declared = _DECLARED_CHARSET.search(data[:4096])
    if declared is not None:
        label = (declared.group(1) or declared.group(2)).decode("ascii").lower()
        try:
            encoding = codecs.lookup(label).name
        except LookupError:
            encoding = ""
        encoding = _CHARSET_ALIASES.get(encoding, encoding)
        if encoding and not encoding.startswith(("utf-16", "utf-32", "utf-8")):
            try:
                return normalize_newlines(data.decode(encoding))
            except UnicodeDecodeError:
                # The page says what it is; browsers show the odd bad byte as U+FFFD, so do we.
                return normalize_newlines(data.decode(encoding, errors="replace"))
    return decode(data)


@dataclass
class _Block:
    lines: list[list] = field(default_factory=list)  # [text, source line]
    heading_level: int = 0
    preformatted: bool = False


class _Builder:
    """Collects text into blocks and lines while remembering the source line of each line."""

    def __init__(self) -> None:
        self.blocks: list[_Block] = []
        self.block = _Block()
        self.source_line = 1

    def text(self, value: str) -> None:
        parts = value.split("\n")
        for index, part in enumerate(parts):
            if index:
                self.source_line += 1
                self.line_break()
            if part:
                if not self.block.lines:
                    self.block.lines.append(["", self.source_line])
                self.block.lines[-1][0] += part

    def line_break(self) -> None:
        lines = self.block.lines
        if lines and (lines[-1][0].strip() or self.block.preformatted):
            lines.append(["", self.source_line])
        elif lines:
            lines[-1][1] = self.source_line

    def start_block(self, heading_level: int = 0, preformatted: bool = False) -> None:
        self.end_block()
        self.block = _Block(heading_level=heading_level, preformatted=preformatted)

    def end_block(self) -> None:
        block = self.block
        if block.preformatted:
            lines = [[text.rstrip(), line] for text, line in block.lines]
            while lines and not lines[0][0].strip():
                lines.pop(0)
            while lines and not lines[-1][0].strip():
                lines.pop()
        else:
            lines = [[" ".join(text.split()), line] for text, line in block.lines]
            lines = [entry for entry in lines if entry[0]]
        if block.heading_level and lines:
            lines = [[" ".join(text for text, _ in lines), lines[0][1]]]
        if lines:
            block.lines = lines
            self.blocks.append(block)
        self.block = _Block()

    def finish(self) -> tuple[str, list[int], list[Heading]]:
        self.end_block()
        pieces: list[str] = []
        source_lines: list[int] = []
        headings: list[Heading] = []
        offset = 0
        for block in self.blocks:
            if pieces:
                pieces.append("\n\n")
                source_lines.append(source_lines[-1])  # the blank line between blocks
                offset += 2
            if block.heading_level:
                title = block.lines[0][0]
                headings.append(Heading(char_start=offset, level=block.heading_level, title=title))
            body = "\n".join(text for text, _ in block.lines)
            pieces.append(body)
            source_lines.extend(line for _, line in block.lines)
            offset += len(body)
        return "".join(pieces), source_lines, headings


def _walk(soup: BeautifulSoup, builder: _Builder) -> None:
    # Iterative, so deeply nested pages cannot hit the recursion limit.
    stack: list[tuple[object, bool]] = [(child, False) for child in reversed(soup.contents)]
    preformatted_depth = 0
    while stack:
        node, leaving = stack.pop()
        if leaving:
            assert isinstance(node, Tag)
            if node.name == "pre":
                preformatted_depth -= 1
            if node.name in _BLOCKS:
                builder.end_block()
            continue
        if isinstance(node, NavigableString):
            if isinstance(node, _NOT_TEXT):
                builder.source_line += node.count("\n")
            else:
                builder.text(str(node))
            continue
        if not isinstance(node, Tag):
            continue
        if node.sourceline is not None:
            builder.source_line = node.sourceline
        if _is_dropped(node):
            builder.source_line += sum(text.count("\n") for text in node.strings)
            continue
        name = node.name
        if name == "br":
            builder.line_break()
            continue
        if name in _CELLS:
            builder.text(" ")
        if name in _BLOCKS:
            preformatted = name == "pre" or preformatted_depth > 0
            builder.start_block(heading_level=_HEADING_LEVELS.get(name, 0), preformatted=preformatted)
        if name == "pre":
            preformatted_depth += 1
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node.contents))


def _is_dropped(tag: Tag) -> bool:
    if tag.name in _DROPPED or tag.has_attr("hidden") or tag.get("aria-hidden") == "true":
        return True
    role = str(tag.get("role") or "").strip().lower()
    if role in _DROPPED_ROLES:
        return True
    if tag.name in _DROPPED_OUTSIDE_ARTICLE or role in _DROPPED_ROLES_OUTSIDE_ARTICLE:
        return tag.find_parent("article") is None
    return False
