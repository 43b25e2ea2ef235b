"""Markdown (.md, .markdown, .mdx): ATX and setext headings outside code; the text is kept unchanged.

Front matter (YAML between `---` lines, or TOML between `+++` lines) becomes the document's
metadata, usable in search filters (`where={"tags": "python"}`, `--where tags=python`).
"""

from __future__ import annotations

import datetime
import re
import sys
from typing import Any

import yaml

from semsearch.extract.text import line_offsets
from semsearch.types import Document, Heading

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["parse_markdown"]

_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_SETEXT_UNDERLINE = re.compile(r" {0,3}(=+|-+)[ \t]*")
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_NOT_PARAGRAPH = re.compile(r" {0,3}(?:[-*+][ \t]|\d{1,9}[.)][ \t]|>|\||<|[-*_](?:[ \t]*[-*_]){2,}[ \t]*$)")
_FRONT_MATTER_TITLE = re.compile(r"title[ \t]*[:=][ \t]*(.+)", re.IGNORECASE)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_ATTRIBUTES = re.compile(r"[ \t]*\{[#.][^}]*\}[ \t]*$")


def parse_markdown(text: str, name: str = "") -> Document:
    """A Markdown Document: `text` unchanged, headings at their line offsets, skipping code.

    Title: the front matter `title:` if present, else the first level-1 heading, else `name`.
    """
    lines, offsets = line_offsets(text)

    headings: list[Heading] = []
    front_title = ""
    metadata: dict[str, Any] = {}
    index = 0
    if lines and lines[0].strip() in ("---", "+++"):
        marker = lines[0].strip()
        for end in range(1, len(lines)):
            if lines[end].strip() in (marker, "..."):
                metadata = front_matter("\n".join(lines[1:end]), toml=marker == "+++")
                if isinstance(metadata.get("title"), str):
                    front_title = " ".join(metadata["title"].split())
                for line in lines[1:end]:
                    found = _FRONT_MATTER_TITLE.fullmatch(line.strip())
                    if found and not front_title:
                        front_title = found.group(1).strip().strip("\"'")
                index = end + 1
                break

    fence = ""  # the opening fence while inside a fenced code block
    # First line of the paragraph being read; -1 after a blank line, -2 inside a list item,
    # quote, table or HTML block (whose "---" is a rule, not a setext underline).
    paragraph_start = -1
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                fence = ""
            index += 1
            continue
        opened = _FENCE_OPEN.fullmatch(line)
        if opened and not (opened.group(1)[0] == "`" and "`" in opened.group(2)):
            fence = opened.group(1)
            paragraph_start = -1
        elif not stripped:
            paragraph_start = -1
        elif paragraph_start == -1 and line.startswith(("    ", "\t")):
            pass  # indented code block
        elif (atx := _ATX.fullmatch(line)) is not None:
            title = _clean(atx.group(2) or "")
            if title:
                headings.append(Heading(char_start=offsets[index], level=len(atx.group(1)), title=title))
            paragraph_start = -1
        elif paragraph_start >= 0 and (underline := _SETEXT_UNDERLINE.fullmatch(line)) is not None:
            title = _clean(" ".join(part.strip() for part in lines[paragraph_start:index]))
            level = 1 if underline.group(1)[0] == "=" else 2
            if title:
                headings.append(Heading(char_start=offsets[paragraph_start], level=level, title=title))
            paragraph_start = -1
        elif paragraph_start == -1:
            paragraph_start = -2 if _NOT_PARAGRAPH.match(line) else index
        index += 1

    title = front_title or next((h.title for h in headings if h.level == 1), "") or name
    return Document(text=text, title=title, extractor="markdown", headings=tuple(headings), metadata=metadata)


def front_matter(block: str, *, toml: bool = False) -> dict[str, Any]:
    """Front matter text → a JSON-safe dict (dates as ISO strings); {} when it is not a mapping.

    Front matter that does not parse is not an error: the Markdown is still indexed, without
    metadata (the `title:` line is still recognised).
    """
    try:
        data = tomllib.loads(block) if toml else yaml.safe_load(block)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(key): _json_safe(value) for key, value in data.items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _clean(title: str) -> str:
    """Heading text without inline markup: links → their text, no emphasis or code markers."""
    title = _ATTRIBUTES.sub("", title)
    title = _LINK.sub(r"\1", title)
    title = title.replace("**", "").replace("__", "").replace("`", "")
    return " ".join(title.split())
