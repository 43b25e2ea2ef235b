"""Tests for semsearch.extract: every format family, every encoding, every way a file can be bad."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from semsearch.chunking import chunk
from semsearch.errors import ConfigError, ExtractError
from semsearch.extract import SUFFIXES, extract, extract_text, is_supported
from semsearch.extract.decoding import decode
from semsearch.types import SourceFile


def _write(tmp_path: Path, name: str, content: bytes | str) -> SourceFile:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    stat = path.stat()
    return SourceFile(path=path, root=tmp_path, relpath=name, size=stat.st_size, mtime_ns=stat.st_mtime_ns)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


# ---------------------------------------------------------------------------------------------
# Markdown

MARKDOWN = """\
---
layout: post
tags: [a, b]
---

Intro before any heading.

# Getting started

Some text.

```bash
# this is a shell comment, not a heading
echo hi
```

## Install ##

~~~
## also not a heading
~~~

    # indented code, not a heading

Configuration
-------------

Setext heading above.

- a list item
---

安装指南
========

中文内容。
"""


def test_markdown_headings_skip_code_and_keep_the_text_unchanged(tmp_path):
    document = extract(_write(tmp_path, "guide.md", MARKDOWN))
    assert document.extractor == "markdown"
    assert document.text == MARKDOWN
    assert document.title == "Getting started"
    found = [(h.level, h.title, _line_of(document.text, h.char_start)) for h in document.headings]
    assert found == [
        (1, "Getting started", 8),
        (2, "Install", 17),
        (2, "Configuration", 25),
        (1, "安装指南", 33),
    ]
    chunks = chunk(document, max_tokens=40, overlap_tokens=0)
    setext = next(c for c in chunks if "Setext heading above." in c.text)
    assert setext.heading_path == ("Getting started", "Configuration")
    assert setext.line_start == 25


def test_markdown_title_prefers_front_matter_then_file_name(tmp_path):
    document = extract(_write(tmp_path, "post.markdown", '---\ntitle: "My Post"\n---\n# Other\n'))
    assert document.title == "My Post"
    assert document.headings[0].title == "Other"  # front matter "---" is not a setext underline
    assert extract(_write(tmp_path, "notes.mdx", "no headings here\n")).title == "notes.mdx"


def test_markdown_heading_titles_lose_inline_markup():
    document = extract_text("## The `chunk()` **function** and [docs](https://x.y) {#id}\n", kind="md")
    assert document.headings[0].title == "The chunk() function and docs"


# ---------------------------------------------------------------------------------------------
# reStructuredText

RST = """\
=========
 Manual
=========

Intro paragraph.

Installation
============

Run it::

    Not a title
    ===========

From source
-----------

Build it.

Usage
=====

Done.
"""


def test_rst_titles_get_levels_by_first_appearance_of_their_adornment(tmp_path):
    document = extract(_write(tmp_path, "manual.rst", RST))
    assert document.extractor == "rst"
    assert document.text == RST
    assert document.title == "Manual"
    found = [(h.level, h.title, _line_of(document.text, h.char_start)) for h in document.headings]
    assert found == [(1, "Manual", 1), (2, "Installation", 7), (3, "From source", 15), (2, "Usage", 20)]
    build = next(c for c in chunk(document) if "Build it." in c.text)
    assert build.heading_path == ("Manual", "Installation", "From source")


def test_rst_chinese_title_with_short_underline_counts_display_width():
    document = extract_text("安装\n====\n\n正文。\n", kind="rst")
    assert [h.title for h in document.headings] == ["安装"]


# ---------------------------------------------------------------------------------------------
# HTML

HTML = """\
<!DOCTYPE html>
<html>
<head>
  <title>  Release   notes </title>
  <style>
    body { color: red; }
  </style>
  <script>var secret = "do not index";</script>
</head>
<body>
<nav><a href="/">Home</a> | <a href="/docs">Docs</a></nav>
<h1>Version 2.0</h1>
<p>First paragraph
continues here.</p>
<!-- a comment
spanning lines -->
<script>
  console.log("still not text");
</script>
<h2>Changes</h2>
<ul>
  <li>Faster <b>search</b></li>
  <li>Chinese 支持</li>
</ul>
<pre>line one
  line two</pre>
<footer>Copyright footer</footer>
</body>
</html>
"""


def test_html_keeps_visible_text_by_block_and_maps_lines_to_the_file(tmp_path):
    document = extract(_write(tmp_path, "notes.html", HTML))
    text = document.text
    assert document.extractor == "html"
    assert document.title == "Release notes"
    for hidden in ("color: red", "do not index", "still not text", "Home", "Copyright", "a comment"):
        assert hidden not in text
    assert text.split("\n\n") == [
        "Version 2.0",
        "First paragraph\ncontinues here.",
        "Changes",
        "Faster search",
        "Chinese 支持",
        "line one\n  line two",
    ]
    assert [(h.level, h.title) for h in document.headings] == [(1, "Version 2.0"), (2, "Changes")]
    assert all(text[h.char_start :].startswith(h.title) for h in document.headings)

    html_lines = HTML.split("\n")

    def source_line(fragment: str) -> int:
        return document.source_lines[_line_of(text, text.index(fragment)) - 1]

    for fragment in ("Version 2.0", "First paragraph", "continues here.", "Changes", "Faster", "支持", "line one", "line two"):
        assert fragment in html_lines[source_line(fragment) - 1], fragment

    cited = {c.text: (c.line_start, c.line_end) for c in chunk(document, max_tokens=10, overlap_tokens=0)}
    assert cited["First paragraph\ncontinues here."] == (13, 14)


def test_html_respects_declared_charset_when_bytes_are_not_utf8(tmp_path):
    page = '<html><head><meta charset="gbk"><title>中文页面</title></head><body><p>你好，世界。</p></body></html>'
    document = extract(_write(tmp_path, "zh.htm", page.encode("gbk")))
    assert document.title == "中文页面"
    assert document.text == "你好，世界。"

    page = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"></head><body><p>Café “quoted”</p></body></html>'
    document = extract(_write(tmp_path, "fr.xhtml", page.encode("cp1252")))
    assert document.text == "Café “quoted”"


def test_html_article_header_is_kept_but_page_header_dropped():
    document = extract_text(
        "<header>Site banner</header><article><header><h1>Post title</h1></header><p>Body.</p></article>",
        kind="html",
    )
    assert document.text == "Post title\n\nBody."
    assert document.title == "Post title"


def test_html_chrome_marked_with_aria_landmark_roles_is_dropped():
    document = extract_text(
        '<div role="banner">Site banner</div><div role="navigation"><a>Home</a></div>'
        '<div role="search"><input> Search this site</div><main><h1>Tides</h1><p>High water at noon.</p></main>'
        '<div role="contentinfo">Copyright</div>',
        kind="html",
    )
    assert document.text == "Tides\n\nHigh water at noon."


# ---------------------------------------------------------------------------------------------
# Plain text, code and encodings


def test_text_and_code_files_keep_their_text_and_are_titled_by_name(tmp_path):
    code = "def main():\n    # comment\n    return 1\n"
    document = extract(_write(tmp_path, "tool.py", code))
    assert (document.text, document.title, document.extractor, document.headings) == (code, "tool.py", "code", ())
    assert extract(_write(tmp_path, "Makefile", "all:\n\techo hi\n")).extractor == "code"
    assert extract(_write(tmp_path, "README", "Read me.\n")).text == "Read me.\n"


def test_gb18030_chinese_file_is_decoded(tmp_path):
    text = "中文文档\n\n这是用 GBK 编码保存的段落，包含标点符号。第二句话！\n"
    document = extract(_write(tmp_path, "zh.txt", text.encode("gb18030")))
    assert document.text == text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig"])
def test_byte_order_marks_are_honoured_and_dropped(tmp_path, encoding):
    text = "BOM text 带中文\nsecond line\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    document = extract(_write(tmp_path, "bom.txt", data))
    assert document.text == text


def test_crlf_newlines_become_lf_and_lines_stay_right(tmp_path):
    document = extract(_write(tmp_path, "dos.md", b"# Title\r\n\r\nfirst\r\nsecond\r\n\rthird\r\n"))
    assert document.text == "# Title\n\nfirst\nsecond\n\nthird\n"
    third = next(c for c in chunk(document, max_tokens=2, overlap_tokens=0) if c.text == "third")
    assert third.line_start == 6


def test_binary_file_is_refused(tmp_path):
    with pytest.raises(ExtractError, match="^binary content$"):
        extract(_write(tmp_path, "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"))


@pytest.mark.parametrize(
    "data",
    [
        "Café au lait, naïve résumé, über große Straße.".encode("latin-1"),
        b"broken \xc3\x28 utf-8 \x81",
        "Grüße aus Köln".encode("cp1252"),
    ],
)
def test_undecodable_file_is_refused_instead_of_turned_into_mojibake(tmp_path, data):
    with pytest.raises(ExtractError, match="^not valid UTF-8, UTF-16 or GB18030 text$"):
        extract(_write(tmp_path, "latin.txt", data))


def test_decode_accepts_utf8_and_rejects_lone_utf16_surrogates():
    assert decode("plain ascii".encode()) == "plain ascii"
    with pytest.raises(ExtractError):
        decode(b"\xff\xfe" + b"\x00\xd8")  # UTF-16 LE BOM, then an unpaired high surrogate


def _extract_error_as_nobody(source: SourceFile) -> str:
    """Run `extract` in a forked child that dropped root privileges; returns the error text."""
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        try:
            os.close(read_end)
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            try:
                extract(source)
                message = "no error"
            except ExtractError as exc:
                message = str(exc)
            os.write(write_end, message.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    return message


def test_unreadable_file_is_reported():
    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o755)  # traversable by anyone, so only the file's own mode can refuse the read
    try:
        source = _write(folder, "secret.txt", "top secret")
        os.chmod(source.path, 0)
        if os.access(source.path, os.R_OK):  # root reads any file whatever its mode
            assert _extract_error_as_nobody(source) == "cannot read: permission denied"
        else:
            with pytest.raises(ExtractError, match="^cannot read: permission denied$"):
                extract(source)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_vanished_and_directory_paths_are_reported(tmp_path):
    source = _write(tmp_path, "gone.txt", "bye")
    source.path.unlink()
    with pytest.raises(ExtractError, match="^cannot read"):
        extract(source)
    (tmp_path / "folder.md").mkdir()
    folder = SourceFile(path=tmp_path / "folder.md", root=tmp_path, relpath="folder.md", size=0, mtime_ns=0)
    with pytest.raises(ExtractError, match="^cannot read"):
        extract(folder)


def test_empty_file_gives_empty_document(tmp_path):
    for name in ("empty.txt", "empty.md", "empty.rst", "empty.html"):
        document = extract(_write(tmp_path, name, b""))
        assert document.text == ""
        assert chunk(document) == []


def test_extract_uses_bytes_the_caller_already_read(tmp_path):
    source = _write(tmp_path, "a.txt", "on disk")
    assert extract(source, data=b"already read").text == "already read"


# ---------------------------------------------------------------------------------------------
# Registry


def test_supported_file_types():
    expected = (
        ".txt .text .log .py .js .ts .tsx .jsx .go .rs .java .c .h .cpp .hpp .cs .rb .php .swift .kt "
        ".scala .sh .bash .zsh .sql .lua .r .m .pl .toml .yaml .yml .json .ini .cfg .css .scss .tex "
        ".csv .tsv .md .markdown .mdx .rst .html .htm .xhtml"
    ).split()
    assert set(expected) <= set(SUFFIXES)
    for name in ["a.md", "B.PY", "README", "readme", "LICENSE", "Makefile", "Dockerfile", "x/y/page.HTML"]:
        assert is_supported(Path(name)), name
    for name in ["photo.png", "archive.tar.gz", "program.exe", "noext", ".bashrc"]:
        assert not is_supported(Path(name)), name


def test_unsupported_file_is_refused_with_its_type(tmp_path):
    with pytest.raises(ExtractError, match=r"unsupported file type: \.png"):
        extract(_write(tmp_path, "photo.png", b"..."))


def test_extract_text_parses_caller_text_by_kind():
    assert extract_text("# Hello\r\nworld", kind="markdown").text == "# Hello\nworld"
    assert extract_text("# Hello\nworld", kind=".md").headings[0].title == "Hello"
    assert extract_text("# Hello\nworld").headings == ()  # plain text by default
    assert extract_text("<p>x</p>", kind="html").text == "x"
    with pytest.raises(ConfigError, match="unknown text kind"):
        extract_text("x", kind="pdf")
