"""The Milvus store's keyword terms and filter expressions: pure functions, no pymilvus.

`keywords` holds OUR analyser's terms (`semsearch.keyword`: CJK bigrams and single characters,
words) as the local store's FTS5 tokenizer indexes them (`fts_tokens`: folded, Porter-stemmed),
each encoded so that any word tokenizer keeps it whole (`encode_term`); a query's terms are
encoded the same (`query_text`).
`translate_filter` turns a search's filters into a Milvus expression for other ledgers' rows.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any

from semsearch import filters, keyword
from semsearch.errors import FilterError

# Terms of these characters pass through any word tokenizer (Milvus `standard`, Unicode word
# boundaries) whole and unchanged; every other term, and any term that starts with the reserved
# prefix, is spelled as the prefix + the hex of its UTF-8 bytes, which is such a term too.
_PLAIN_TERM = re.compile(r"[a-z0-9]+")
TERM_PREFIX = "u0"


# -- keyword terms ---------------------------------------------------------------------------------

def encode_term(term: str) -> str:
    """A term as a word tokenizer will keep it: itself when it is plain lower-case ASCII letters
    and digits, else `TERM_PREFIX` + the hex of its UTF-8 bytes (`decode_term` reverses it)."""
    if _PLAIN_TERM.fullmatch(term) and not term.startswith(TERM_PREFIX):
        return term
    return TERM_PREFIX + term.encode("utf-8").hex()


def decode_term(encoded: str) -> str:
    """The term `encode_term` spelled as `encoded`."""
    if encoded.startswith(TERM_PREFIX):
        return bytes.fromhex(encoded[len(TERM_PREFIX):]).decode("utf-8")
    return encoded


@functools.lru_cache(maxsize=1)
def _tokenizer() -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    connection.execute(f"CREATE VIRTUAL TABLE text USING fts5(terms, tokenize = '{keyword.FTS_TOKENIZER}')")
    connection.execute("CREATE VIRTUAL TABLE tokens USING fts5vocab(text, instance)")
    return connection


_TOKENIZER_LOCK = threading.Lock()


def fts_tokens(analysed: str) -> list[str]:
    """The tokens the local store's FTS5 table indexes for `analysed` (terms joined by spaces), in
    order: FTS5's own tokenizer (`porter unicode61 remove_diacritics 2`) on an in-memory table.
    Its porter passes words under 3 bytes through and stems "technology" to "technolog", which
    no other Porter stemmer quite matches, and every token counts in FTS5's bm25()."""
    with _TOKENIZER_LOCK:
        connection = _tokenizer()
        connection.execute("BEGIN")
        try:
            connection.execute("INSERT INTO text (rowid, terms) VALUES (1, ?)", (analysed,))
            return [token for (token,) in connection.execute("SELECT term FROM tokens ORDER BY offset")]
        finally:
            connection.execute("ROLLBACK")


def keyword_text(heading_path: Sequence[str], text: str) -> str:
    """What a chunk's `keywords` field holds: the encoded tokens the local store's FTS5 table
    indexes for its headings and text."""
    return " ".join(encode_term(t) for t in fts_tokens(keyword.analyze(" ".join((*heading_path, text)))))


def query_text(query: str) -> str:
    """A query's distinct tokens encoded like `keyword_text` ("" when it has none)."""
    terms = dict.fromkeys(encode_term(t) for t in fts_tokens(" ".join(keyword.terms(query, for_query=True))))
    return " ".join(terms)


# -- filters ---------------------------------------------------------------------------------------

def translate_filter(paths: Sequence[str], where: filters.Where | None, now: float | None = None) -> str | None:
    """The filters of a search as a Milvus expression over the collection's fields, for rows of
    other ledgers (the ledger's own rows are filtered by the ids SQLite lets through). None when
    some condition has no translation (ordering on non-numeric metadata, `[...]` globs).

    Path globs match the stored path (`*` → `%`, `?` → `_`); metadata `=` matches the value as
    text or number, or a list holding it; `!=` and `-has:` pass rows without the key.
    """
    clauses: list[str] = []
    if paths:
        likes = [_glob_like(glob) for glob in paths]
        if any(like is None for like in likes):
            return None
        clauses.append("(" + " or ".join(f'path like "{like}"' for like in likes) + ")")
    try:
        conditions = filters.conditions(where)
    except FilterError:
        return None
    now = time.time() if now is None else now
    for condition in conditions:
        clause = _condition_expression(condition, now)
        if clause is None:
            return None
        clauses.append(clause)
    return " and ".join(clauses) if clauses else ""


def _glob_like(glob: str) -> str | None:
    if any(c in glob for c in '[]"\\'):
        return None
    escaped = glob.replace("%", "\\\\%").replace("_", "\\\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _condition_expression(condition: filters.Condition, now: float) -> str | None:
    if any(c in condition.key for c in '"\\') or not condition.key:
        return None
    field = f'metadata["{condition.key}"]'
    if condition.op == "has":
        return f"exists {field}"
    if condition.op == "-has":
        return f"not exists {field}"
    if condition.builtin:
        values = filters.builtin_values(condition, now)
        if condition.key == "suffix":
            inner = " or ".join(f'path like "%{_glob_like(v) or v}"' for v in values)
        else:
            column = "size" if condition.key == "size" else "mtime"
            if condition.op in filters.ORDERING:
                return f"{column} {condition.op} {values[0]!r}"
            inner = " or ".join(f"{column} == {v!r}" for v in values)
        return f"not ({inner})" if condition.op == "!=" else f"({inner})"
    if condition.op in filters.ORDERING:
        number = _number(condition.values[0])
        return None if number is None else f"{field} {condition.op} {number!r}"
    options: list[str] = []
    for value in condition.values:
        text = "true" if value is True else "false" if value is False else str(value)
        options += [f"{field} == {_literal(text)}", f"json_contains({field}, {_literal(text)})"]
        number = _number(value)
        if number is not None:
            options += [f"{field} == {number!r}", f"json_contains({field}, {number!r})"]
        if text in ("true", "false"):
            options.append(f"{field} == {text}")
    inner = " or ".join(options)
    return f"(not exists {field} or not ({inner}))" if condition.op == "!=" else f"({inner})"


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if number.is_integer() else number
