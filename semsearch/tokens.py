"""Text measures shared by indexing and search: the CJK character class, the token estimate, sentence ends.

It imports nothing of semsearch, so the query path (context budgets, reranker prompts, snippets,
keyword analysis) uses the same definitions as the chunker without loading the indexing modules.
"""

from __future__ import annotations

import re

__all__ = ["CJK", "CLOSERS", "SENTENCE_END", "SENTENCE_START", "cut_to_tokens", "estimate_tokens"]

# Hangul Jamo, CJK radicals … CJK unified ideographs (incl. CJK punctuation U+3000–303F, kana,
# bopomofo, hangul compatibility jamo, extension A), hangul syllables, compatibility ideographs,
# vertical and compatibility forms, half/full-width forms, and the supplementary ideograph planes.
# Each of these is about one token to a model; the keyword analysis takes the word characters
# among them as its CJK characters (punctuation separates its runs).
CJK = (
    "\u1100-\u11ff\u2e80-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff"
    "\ufe10-\ufe1f\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003ffff"
)
_NON_CJK_RUN = re.compile(f"[^{CJK}]+")

# Closing quotes and brackets that stay with the sentence they end.
CLOSERS = "\"'”’」』）》〉】)\\]"
# A sentence end (a regex for use inside larger ones): .!? before whitespace, or CJK terminators
# (no space follows them), each with the closers after it. Line breaks are left to the user.
_LATIN_END = rf"[.!?]+[{CLOSERS}]*"
_CJK_END = rf"[。！？；…⋯]+[{CLOSERS}]*"
SENTENCE_END = rf"{_LATIN_END}(?=\s)|{_CJK_END}"
# The same ends with the whitespace after them, up to where the next sentence starts. Written flat
# rather than as `(?:SENTENCE_END)\s*`: `re` scans the flat alternatives a fifth faster, and the
# chunker runs this over every text it overlaps.
SENTENCE_START = rf"{_LATIN_END}\s+|{_CJK_END}\s*"


def estimate_tokens(text: str) -> int:
    """The project's one token estimate: 1 per CJK character, ⌈n/4⌉ per run of n other characters.

    Whitespace-only text counts 0. The estimate never decreases when text is appended and costs
    one regex scan (a plain `len` for ASCII), so it can run over every chunk.
    """
    if text.isascii():
        if not text or text.isspace():
            return 0
        return (len(text) + 3) // 4
    if text.isspace():
        return 0
    tokens = 0
    other = 0
    for run in _NON_CJK_RUN.findall(text):
        length = len(run)
        other += length
        tokens += (length + 3) // 4
    return tokens + len(text) - other


def cut_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of `text` whose `estimate_tokens` is at most `max_tokens`.

    For inputs that must fit a model context as a whole (a reranker prompt), where splitting
    is not an option; the estimate only grows as text is appended, so a binary search finds it.
    """
    if estimate_tokens(text) <= max_tokens:
        return text
    low, high = 0, len(text)  # estimate(text[:low]) <= max_tokens < estimate(text[:high])
    while high - low > 1:
        middle = (low + high) // 2
        if estimate_tokens(text[:middle]) <= max_tokens:
            low = middle
        else:
            high = middle
    return text[:low]
