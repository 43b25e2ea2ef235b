"""Tests for semsearch.chunking: budget, offsets, coverage, lines, headings, overlap, edit locality."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch.chunking import chunk, estimate_tokens
from semsearch.errors import ConfigError
from semsearch.types import Document, Heading

# ---------------------------------------------------------------------------------------------
# estimate_tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("   \n\t ", 0),
        ("abcd", 1),
        ("abcde", 2),
        ("hello world", 3),
        ("中文", 2),
        ("中a文", 3),  # the Latin run between two Han characters rounds up on its own
        ("。！？", 3),  # CJK punctuation and full-width forms count one each
        ("ひらがなカタカナ", 8),
        ("한국어", 3),
        ("Ｆｕｌｌ", 4),
    ],
)
def test_estimate_tokens_counts_cjk_per_character_and_latin_per_four(text, expected):
    assert estimate_tokens(text) == expected


@given(st.text(max_size=200), st.text(max_size=200))
def test_estimate_tokens_never_drops_when_text_grows(left, right):
    assert estimate_tokens(left + right) >= estimate_tokens(left)
    assert estimate_tokens(left + right) >= estimate_tokens(right)


# ---------------------------------------------------------------------------------------------
# Property tests over random CJK / Latin / mixed text with random newlines and headings

_PIECES = [
    "a", "b", "e", "x", "Word", "the", "1", "-", "_", "/", "(", ")", "'", "é", "\u0301", "😀",
    "中", "文", "字", "詞", "語", "ひ", "カ", "한", "국", "Ｆ",
    " ", " ", " ", "\t", "\u3000",
    ".", "!", "?", ",", "，", "、", "：", ";", "。", "！", "？", "；", "…", "」",
    "\n", "\n", "\n\n", "\r\n",
]
_texts = st.lists(st.sampled_from(_PIECES), max_size=1500).map("".join)
_blocks = st.lists(
    st.one_of(
        _texts.map(lambda text: ("text", text)),
        st.tuples(st.just("heading"), st.integers(1, 4), st.sampled_from(["Intro", "安装", "Usage", "FAQ"])),
    ),
    max_size=8,
)


def _build(blocks) -> Document:
    parts: list[str] = []
    headings: list[Heading] = []
    length = 0
    for block in blocks:
        if block[0] == "heading":
            _, level, title = block
            if parts and not parts[-1].endswith("\n"):
                parts.append("\n")
                length += 1
            headings.append(Heading(char_start=length, level=level, title=title))
            line = "#" * level + " " + title + "\n"
        else:
            line = block[1]
        parts.append(line)
        length += len(line)
    return Document(text="".join(parts), headings=tuple(headings))


def _path_at(document: Document, offset: int) -> tuple[str, ...]:
    stack: list[Heading] = []
    for heading in sorted(document.headings, key=lambda h: h.char_start):
        if heading.char_start > offset:
            break
        while stack and stack[-1].level >= heading.level:
            stack.pop()
        stack.append(heading)
    return tuple(h.title for h in stack)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks=_blocks, max_tokens=st.integers(1, 120), overlap_tokens=st.integers(0, 60))
def test_chunks_fit_budget_are_exact_slices_cover_everything_and_cite_right_lines(blocks, max_tokens, overlap_tokens):
    document = _build(blocks)
    text = document.text
    chunks = chunk(document, max_tokens=max_tokens, overlap_tokens=overlap_tokens)

    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    covered = bytearray(len(text))
    for c in chunks:
        assert c.text, "empty chunk"
        assert c.text == text[c.char_start : c.char_end]
        assert c.text == c.text.strip(), "surrounding whitespace must be trimmed by offsets"
        assert c.tokens == estimate_tokens(c.text) <= max_tokens
        assert c.line_start == text.count("\n", 0, c.char_start) + 1
        assert c.line_end == text.count("\n", 0, c.char_end - 1) + 1
        assert c.heading_path == _path_at(document, c.char_end - 1)
        start_path = _path_at(document, c.char_start)
        assert c.heading_path[: len(start_path)] == start_path, "a chunk spans two sections"
        covered[c.char_start : c.char_end] = b"\x01" * (c.char_end - c.char_start)
    missed = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missed, f"characters not in any chunk: {[text[i] for i in missed[:10]]}"
    for previous, current in zip(chunks, chunks[1:]):
        assert previous.char_start < current.char_start and previous.char_end < current.char_end


@settings(max_examples=60, deadline=None)
@given(text=_texts, max_tokens=st.integers(1, 80), overlap_tokens=st.integers(0, 40))
def test_overlap_is_whole_trailing_sentences_within_overlap_budget(text, max_tokens, overlap_tokens):
    chunks = chunk(Document(text=text), max_tokens=max_tokens, overlap_tokens=overlap_tokens)
    for previous, current in zip(chunks, chunks[1:]):
        if current.char_start >= previous.char_end:
            continue
        shared = text[current.char_start : previous.char_end]
        assert estimate_tokens(shared) <= overlap_tokens
        assert current.char_start > previous.char_start
        before = text[: current.char_start]
        ends_sentence = before.rstrip().rstrip("\"'”’」』）》〉】)]").endswith(tuple(".!?。！？；…⋯"))
        assert ends_sentence or "\n" in before[len(before.rstrip()) :], "overlap starts mid-sentence"


def test_rejects_impossible_budgets():
    with pytest.raises(ConfigError):
        chunk(Document(text="hello"), max_tokens=0)
    with pytest.raises(ConfigError):
        chunk(Document(text="hello"), overlap_tokens=-1)


def test_blank_document_has_no_chunks():
    assert chunk(Document(text="")) == []
    assert chunk(Document(text=" \n\n\t ")) == []


# ---------------------------------------------------------------------------------------------
# Structure


def _markdown_with_headings() -> Document:
    lines = [
        "# Guide",  # 0
        "",
        "This guide explains the tool.",
        "",
        "## Install",  # 4
        "",
        "### On Linux",  # 6
        "",
        "Run the installer. It needs root.",
        "",
        "### On macOS",  # 10
        "",
        "Use Homebrew.",
        "",
        "## Use",  # 14
        "",
        "Point it at a folder.",
    ]
    text = "\n".join(lines) + "\n"
    offsets = [sum(len(line) + 1 for line in lines[:i]) for i in range(len(lines))]
    headings = [
        Heading(offsets[0], 1, "Guide"),
        Heading(offsets[4], 2, "Install"),
        Heading(offsets[6], 3, "On Linux"),
        Heading(offsets[10], 3, "On macOS"),
        Heading(offsets[14], 2, "Use"),
    ]
    return Document(text=text, headings=tuple(headings))


def test_heading_paths_follow_heading_levels():
    chunks = chunk(_markdown_with_headings())
    by_text = {c.heading_path: c for c in chunks}
    assert list(by_text) == [
        ("Guide",),
        ("Guide", "Install", "On Linux"),
        ("Guide", "Install", "On macOS"),
        ("Guide", "Use"),
    ]
    # "## Install" has no body of its own: it opens the chunk of its first subsection.
    linux = by_text[("Guide", "Install", "On Linux")]
    assert linux.text.startswith("## Install\n\n### On Linux")
    assert (linux.line_start, linux.line_end) == (5, 9)
    assert by_text[("Guide", "Use")].text == "## Use\n\nPoint it at a folder."


def test_overlap_never_crosses_a_heading():
    body = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(60))
    text = f"# One\n\n{body}\n\n# Two\n\n{body}\n"
    second = text.index("# Two")
    document = Document(text=text, headings=(Heading(0, 1, "One"), Heading(second, 1, "Two")))
    chunks = chunk(document, max_tokens=80, overlap_tokens=20)
    first_of_two = next(c for c in chunks if c.heading_path == ("Two",))
    assert first_of_two.char_start == second
    assert all(c.char_end <= second for c in chunks if c.heading_path == ("One",))
    overlapping = [b for a, b in zip(chunks, chunks[1:]) if b.char_start < a.char_end]
    assert overlapping, "consecutive chunks of a long section should share trailing sentences"
    for a, b in zip(chunks, chunks[1:]):
        if b.char_start < a.char_end:
            shared = text[b.char_start : a.char_end]
            assert shared.startswith("Sentence number") and shared.endswith(".")
            assert estimate_tokens(shared) <= 20


def test_chinese_paragraph_is_cut_at_sentence_ends():
    rng = random.Random(3)
    han = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经"
    sentences = ["".join(rng.choice(han) for _ in range(rng.randint(10, 30))) + rng.choice("。！？；") for _ in range(120)]
    text = "".join(sentences)  # one paragraph, no newline at all
    chunks = chunk(Document(text=text), max_tokens=100, overlap_tokens=0)
    assert len(chunks) >= 15
    for c in chunks:
        assert c.tokens <= 100
        assert c.text[-1] in "。！？；", f"chunk cut mid-sentence: …{c.text[-10:]}"
        assert c.tokens >= 25, "sentences should be packed, not emitted one by one"


def test_chinese_overlap_repeats_the_previous_sentence():
    text = "".join(f"第{i}句话讲的是一个很长的故事情节。" for i in range(80))
    chunks = chunk(Document(text=text), max_tokens=120, overlap_tokens=20)
    shared = [text[b.char_start : a.char_end] for a, b in zip(chunks, chunks[1:]) if b.char_start < a.char_end]
    assert shared
    assert all(s.startswith("第") and s.endswith("。") and estimate_tokens(s) <= 20 for s in shared)


def test_short_list_lines_are_packed_together():
    text = "\n".join(f"- item {i}: short" for i in range(300))
    chunks = chunk(Document(text=text), max_tokens=100, overlap_tokens=0)
    assert all(c.tokens <= 100 for c in chunks)
    assert len(chunks) <= 30  # ~1,300 tokens in ~5-token lines: no chunk per line
    assert all(c.text.startswith("- item") and c.text.endswith("short") for c in chunks), "cut inside a line"


def test_huge_single_line_is_hard_cut_within_budget():
    words = " ".join(f"word{i}" for i in range(8000))  # one line, no sentence end
    chunks = chunk(Document(text=words), max_tokens=50, overlap_tokens=0)
    assert all(c.tokens <= 50 for c in chunks)
    assert "".join(c.text + " " for c in chunks).split() == words.split()
    assert all(re.fullmatch(r"word\d+( word\d+)*", c.text) for c in chunks), "a word was split"

    han = "汉字" * 5000 + "x" * 9000  # no separator of any kind
    chunks = chunk(Document(text=han), max_tokens=64, overlap_tokens=10)
    assert all(c.tokens <= 64 for c in chunks)
    assert "".join(c.text for c in chunks) == han
    assert all(c.tokens >= 32 for c in chunks[:-1]), "hard cuts should fill most of the budget"


def test_hard_cut_keeps_combining_marks_with_their_letter():
    text = "e\u0301" * 400  # é as e + combining acute, no separators
    chunks = chunk(Document(text=text), max_tokens=7, overlap_tokens=0)
    assert "".join(c.text for c in chunks) == text
    assert not any(c.text[0] == "\u0301" for c in chunks)


def test_lines_are_mapped_through_source_lines():
    text = "Title\n\nFirst paragraph.\n\nSecond paragraph."
    document = Document(text=text, source_lines=(10, 10, 14, 14, 20))
    chunks = chunk(document, max_tokens=5, overlap_tokens=0)
    assert [(c.text, c.line_start, c.line_end) for c in chunks] == [
        ("Title", 10, 10),
        ("First paragraph.", 14, 14),
        ("Second paragraph.", 20, 20),
    ]


def test_crlf_text_keeps_line_numbers():
    text = "one\r\ntwo\r\n\r\nthree four five six seven eight nine ten\r\n"
    chunks = chunk(Document(text=text), max_tokens=4, overlap_tokens=0)
    assert chunks[0].text == "one\r\ntwo" and (chunks[0].line_start, chunks[0].line_end) == (1, 2)
    assert chunks[-1].line_end == 4


# ---------------------------------------------------------------------------------------------
# Edit locality: editing one paragraph re-embeds about one chunk, not the rest of the file

_WORDS = (
    "index search folder vector chunk model query answer passage citation embedding server local "
    "engine result rank score paragraph sentence document heading token budget overlap cache file "
    "reader writer update change boundary stable edit locality structure section language"
).split()


def _prose(rng: random.Random, paragraphs: int) -> list[list[str]]:
    def sentence() -> str:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 22))]
        return " ".join(words).capitalize() + rng.choice(".!?")

    return [[sentence() for _ in range(rng.randint(1, 6))] for _ in range(paragraphs)]


def _render(intro, sections, long_section) -> str:
    parts = ["# Handbook", "\n\n".join(" ".join(p) for p in intro)]
    for index, section in enumerate(sections):
        parts.append(f"## Part {index}")
        parts.append("\n\n".join(" ".join(p) for p in section))
    parts.append("## Notes")  # the long section: ~40 paragraphs under one heading
    parts.append("\n\n".join(" ".join(p) for p in long_section))
    return "\n\n".join(parts) + "\n"


def _markdown(text: str) -> Document:
    headings = []
    offset = 0
    for line in text.split("\n"):
        found = re.match(r"(#+) (.*)", line)
        if found:
            headings.append(Heading(offset, len(found.group(1)), found.group(2)))
        offset += len(line) + 1
    return Document(text=text, headings=tuple(headings))


def _changed(before: list, after: list) -> tuple[int, int]:
    old = Counter(c.text for c in before)
    new = Counter(c.text for c in after)
    return sum((old - new).values()), sum((new - old).values())


def test_editing_a_sentence_in_the_middle_changes_at_most_two_chunks():
    rng = random.Random(11)
    intro = _prose(rng, 4)
    sections = [_prose(rng, 5) for _ in range(3)]
    long_section = _prose(rng, 44)
    before_text = _render(intro, sections, long_section)
    before = chunk(_markdown(before_text))
    assert len(before) >= 12
    assert sum(1 for c in before if c.heading_path == ("Handbook", "Notes")) >= 8

    # Replace a middle sentence of a middle paragraph of the long section with a longer one.
    long_section[22][len(long_section[22]) // 2] = "This replacement sentence is quite a bit longer than the one it replaces, on purpose."
    after_text = _render(intro, sections, long_section)
    after = chunk(_markdown(after_text))
    removed, added = _changed(before, after)
    assert 1 <= added <= 2 and removed <= 2, (removed, added)


def test_growing_an_early_paragraph_does_not_shift_later_boundaries():
    rng = random.Random(5)
    paragraphs = _prose(rng, 70)  # one heading-less section of ~70 paragraphs
    before_text = "\n\n".join(" ".join(p) for p in paragraphs)
    before = chunk(Document(text=before_text))
    assert len(before) >= 12
    paragraphs[4].append("An extra closing sentence grows this paragraph by a dozen words or so, and then some more.")
    after_text = "\n\n".join(" ".join(p) for p in paragraphs)
    after = chunk(Document(text=after_text))
    removed, added = _changed(before, after)
    assert 1 <= added <= 2 and removed <= 2, (removed, added)


def test_editing_chinese_lines_changes_at_most_two_chunks():
    rng = random.Random(8)
    han = (
        "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所"
        "民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日"
        "那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道"
    )

    def sentence() -> str:
        return "".join(rng.choice(han) for _ in range(rng.randint(8, 30))) + rng.choice("。。！？")

    lines = ["".join(sentence() for _ in range(rng.randint(1, 5))) for _ in range(120)]  # one paragraph per line
    before = chunk(Document(text="\n".join(lines)))
    assert len(before) >= 12
    lines[60] = lines[60][:-1] + "，这是后来补充的一句话。"
    after = chunk(Document(text="\n".join(lines)))
    removed, added = _changed(before, after)
    assert 1 <= added <= 2 and removed <= 2, (removed, added)


def test_most_single_sentence_edits_touch_at_most_two_chunks():
    rng = random.Random(2024)
    paragraphs = _prose(rng, 80)
    before = chunk(Document(text="\n\n".join(" ".join(p) for p in paragraphs)))
    counts = []
    for _ in range(30):  # 30 different edits, each on a fresh copy
        edited = [list(p) for p in paragraphs]
        paragraph = edited[rng.randrange(10, 70)]
        paragraph[rng.randrange(len(paragraph))] = _prose(rng, 1)[0][0]
        after = chunk(Document(text="\n\n".join(" ".join(p) for p in edited)))
        counts.append(max(_changed(before, after)))
    # A boundary sits where the gap's neighbourhood hashes highest, so an edit right at a
    # boundary can move it (3 chunks); anything more is a cascade.
    assert max(counts) <= 3, counts
    assert sum(1 for n in counts if n <= 2) >= 27, counts
