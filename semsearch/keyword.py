"""Keyword analysis for SQLite FTS5: CJK character bigrams plus single characters, words elsewhere.

FTS5's `unicode61` tokenizer keeps a run of Chinese characters as one token, and `trigram`
cannot match 1–2 character terms (DESIGN §6). So, like Lucene's CJK analyzer, we rewrite text
before FTS5 sees it: each CJK run becomes its overlapping bigrams plus its single characters,
other text becomes lower-cased words. Queries go through the same analysis, so a 1-character
query matches the single-character terms and a longer Chinese query matches bigrams.
"""

from __future__ import annotations

import re
import unicodedata

from semsearch.tokens import CJK

# CJK characters are word characters to `\w`, so the word alternative must exclude them: else
# "2013年于乐" would be one word and never match "于乐". A CJK run is made of the word characters
# among `CJK` (ideographs, kana, hangul, 々, 〇); CJK punctuation separates runs as spaces do.
_CJK_CHARACTER = rf"[{CJK}](?<=[^\W_])"
# Words first: the two alternatives start with different characters, so the order changes no
# match, and a run of Latin text is then matched without the CJK lookbehind at each character
# (a sixth fewer instructions in keyword analysis, callgrind).
_TOKEN = re.compile(rf"([^\W_{CJK}]+)|((?:{_CJK_CHARACTER})+)", re.UNICODE)

# The FTS5 tokenizer over the analysed terms: CJK terms pass through porter unchanged (it only
# rewrites ASCII suffixes); English words are stemmed, as BM25 baselines do.
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"
# Names the analysis stored in an index; an index analysed differently is re-analysed from its
# chunk texts (no embedding needed). /3: CJK runs take hangul jamo, bopomofo and 々〆〇 and are
# split at CJK punctuation such as ・ (the CJK class the chunker's token estimate uses).
ANALYSIS = "cjk-bigram-unigram/3;" + FTS_TOKENIZER


_CJK_TERM = re.compile(rf"(?:{_CJK_CHARACTER})+")


def is_cjk(term: str) -> bool:
    """Whether a term is made of CJK characters (a bigram or a single character)."""
    return bool(_CJK_TERM.fullmatch(term))
_WORD = re.compile(r"[^\W_]+")


def _cjk_terms(run: str, *, with_singles: bool) -> list[str]:
    if len(run) == 1:
        return [run]
    bigrams = [run[i : i + 2] for i in range(len(run) - 1)]
    return bigrams + list(run) if with_singles else bigrams


def terms(text: str, *, for_query: bool = False) -> list[str]:
    """The FTS terms of `text`.

    Documents get bigrams and single characters for every CJK run; a query gets only the bigrams
    of runs longer than one character (a single character only when the run is one character),
    so a two-character query is one exact term rather than two common characters.
    """
    if text.isascii():  # NFKC leaves ASCII alone and it holds no CJK: words only (the common case)
        return _WORD.findall(text.lower())
    normalized = unicodedata.normalize("NFKC", text).lower()
    out: list[str] = []
    for word, cjk in _TOKEN.findall(normalized):
        if cjk:
            out.extend(_cjk_terms(cjk, with_singles=not for_query))
        else:
            out.append(word)
    return out


def analyze(text: str) -> str:
    """Text as stored in the FTS5 column: its terms separated by spaces."""
    return " ".join(terms(text))


def match_expression(query: str) -> str | None:
    """An FTS5 MATCH expression OR-ing the query's distinct terms (BM25 ranks by how many match).

    Returns None when the query has no searchable terms.
    """
    seen: dict[str, None] = {}
    for term in terms(query, for_query=True):
        seen.setdefault(term, None)
    if not seen:
        return None
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in seen)
