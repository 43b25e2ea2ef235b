"""Search filters: `where` expressions parsed into conditions, and which documents pass them.

One expression per `--where` option or list item:

    KEY=VALUE  KEY!=VALUE               equal / not equal (as text, as always; lists contain)
    KEY<VALUE  KEY<=VALUE  KEY>VALUE  KEY>=VALUE
    has:KEY    -has:KEY                 the document has / lacks the metadata key

KEY is a metadata key (Markdown front matter, PDF and Word title/author, `add_texts` metadata)
or one of the built-in document fields `size` (bytes; `10k`, `2M`), `mtime` (the file's
modification time: an ISO date or date-time, or an age such as `7d` meaning that long before
now; an added text's is when it was added) and `suffix` (`.md`; `=` and `!=` only). A built-in
name shadows a metadata key of the same name. Ordering comparisons are typed: numbers compare
as numbers, ISO dates and date-times as instants (naive ones in local time), anything else as
text; a value of a type the key never holds (`year>=abc` where `year` holds numbers) is a
FilterError naming the key and the type it holds. `=` conditions on one key are OR-ed (any of
the values); everything else is AND-ed. `!=` and `-has:` pass documents without the key.

The store decides every condition in SQL except ordering comparisons on metadata, whose type is
only known from the stored values: `compare` decides those over the values the SQL part let
through. Importable without numpy or faiss.
"""

from __future__ import annotations

import datetime
import math
import operator
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, Union

from semsearch.errors import FilterError

# A `where` as callers give it: {key: value or [values]} (equality), one expression, or several.
Where = Union[Mapping[str, Any], str, Sequence[str]]
T = TypeVar("T")

ORDERING = ("<", "<=", ">", ">=")
EQUALITY = ("=", "!=")
PRESENCE = ("has", "-has")
BUILTIN_FIELDS = ("mtime", "size", "suffix")
SYNTAX = "KEY=VALUE, KEY!=VALUE, KEY<VALUE (or <=, >, >=), has:KEY or -has:KEY"

_EXPRESSION = re.compile(r"^\s*(?P<key>[^=!<>]*?)\s*(?P<op><=|>=|!=|=|<|>)\s*(?P<value>.*?)\s*$", re.DOTALL)
_PRESENCE = re.compile(r"^\s*(?P<op>-?has):\s*(?P<key>.*?)\s*$", re.DOTALL)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$", re.IGNORECASE)
_AGE_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdwy])")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_KIND_NAMES = {"number": "numbers", "time": "dates", "boolean": "true/false", "text": "text"}
_KIND_EXAMPLES = {"number": "a number (2020)", "time": "an ISO date (2024-06-01)", "boolean": "true or false"}

# `--type NAME`: ripgrep's type names for the formats semsearch reads; any other name is a suffix.
FILE_TYPES: dict[str, tuple[str, ...]] = {
    "md": (".md", ".markdown", ".mdx"), "markdown": (".md", ".markdown", ".mdx"),
    "txt": (".txt",), "rst": (".rst",), "html": (".html", ".htm", ".xhtml"), "pdf": (".pdf",),
    "docx": (".docx",), "ipynb": (".ipynb",), "py": (".py", ".pyi"), "js": (".js", ".jsx", ".mjs", ".cjs"),
    "ts": (".ts", ".tsx", ".mts", ".cts"), "rust": (".rs",), "go": (".go",), "java": (".java",),
    "c": (".c", ".h"), "cpp": (".cpp", ".cc", ".cxx", ".hpp", ".hh", ".hxx", ".h"),
}


@dataclass(frozen=True)
class Condition:
    """One filter: `key op value`; `=` may carry several values (any of), presence none."""

    key: str
    op: str
    values: tuple[Any, ...] = ()

    @property
    def builtin(self) -> bool:
        """Whether it tests a built-in document field rather than metadata."""
        return self.key in BUILTIN_FIELDS and self.op not in PRESENCE

    def __str__(self) -> str:
        if self.op in PRESENCE:
            return f"{self.op}:{self.key}"
        return " or ".join(f"{self.key}{self.op}{value}" for value in self.values)


def parse(expression: str) -> Condition:
    """One expression → a Condition; raises FilterError when it is not one (see the module docstring)."""
    if not isinstance(expression, str):
        raise FilterError(f"a filter expression must be text such as 'year>=2020', not {expression!r}")
    presence = _PRESENCE.match(expression)
    if presence:
        if not presence["key"]:
            op = presence["op"]
            raise FilterError(f"{expression!r} names no key — write {op}:KEY, e.g. {op}:author")
        return Condition(presence["key"], presence["op"])
    match = _EXPRESSION.match(expression)
    if not match or not match["key"] or match["value"][:1] in ("=", "<", ">"):
        raise FilterError(f"{expression!r} is not a filter — write {SYNTAX}")
    key, op, value = match["key"], match["op"], match["value"]
    if op in ORDERING and not value:
        raise FilterError(f"{expression!r} compares {key} with nothing — give a value, e.g. {key}{op}2020")
    condition = Condition(key, op, (value,))
    check(condition)
    return condition


def conditions(where: Where | None) -> tuple[Condition, ...]:
    """The conditions of a `where`: a {key: value or [values]} dict (equality, as before operators
    existed), one expression, or a list of them. `=` conditions on the same key merge into one
    (any of their values). Raises FilterError for a malformed expression or a built-in field
    given a value of the wrong kind."""
    if not where:
        return ()
    if isinstance(where, Mapping):
        for key, value in where.items():
            if isinstance(value, Mapping):
                raise FilterError(f"the filter on {key!r} is an object; a dict `where` holds values to equal — "
                                  f"give comparisons as expressions, e.g. where=['{key}>=2020']")
        parsed = [Condition(str(key), "=", tuple(value) if isinstance(value, (list, tuple, set)) else (value,))
                  for key, value in where.items()]
        for condition in parsed:
            check(condition)
    elif isinstance(where, str):
        parsed = [parse(where)]
    else:
        parsed = [parse(item) for item in where]
    out: list[Condition] = []
    equal_at: dict[str, int] = {}  # key → position in `out` of its `=` condition
    for condition in parsed:
        if condition.op == "=" and condition.key in equal_at:
            at = equal_at[condition.key]
            out[at] = Condition(condition.key, "=", out[at].values + condition.values)
            continue
        if condition.op == "=":
            equal_at[condition.key] = len(out)
        out.append(condition)
    return tuple(out)


def in_sql(condition: Condition) -> bool:
    """Whether the store decides `condition` in SQL alone: all but ordering comparisons on
    metadata, whose type is only known from the values (`compare` decides those)."""
    return condition.builtin or condition.op not in ORDERING


def required_keys(where: Where | None) -> list[str]:
    """The metadata keys a document must have to pass `where` (for "no document has key X")."""
    return list(dict.fromkeys(c.key for c in conditions(where)
                              if not c.builtin and c.op not in ("!=", "-has")))


def check(condition: Condition) -> None:
    """Raise FilterError when a built-in field is compared the wrong way or with a value of the
    wrong kind (metadata types are only known from the documents: see `compare`)."""
    text = str(condition)
    if condition.key == "suffix" and condition.op in ORDERING:
        raise FilterError(f"filter {text!r}: suffix can only be compared with = or != (e.g. suffix=.md)")
    if condition.key == "mtime" and condition.op in EQUALITY:
        raise FilterError(f"filter {text!r}: compare mtime with <, <=, > or >= (e.g. mtime>=2026-01-01, mtime>=7d)")
    for value in condition.values if condition.builtin else ():
        if condition.key == "size" and _size(value) is None:
            raise FilterError(f"filter {text!r}: size is a number of bytes, and {str(value)!r} is not one — "
                              "give e.g. size>10k (k, M, G: 1024, 1024², 1024³ bytes)")
        if condition.key == "mtime" and _moment(str(value)) is None:
            raise FilterError(f"filter {text!r}: mtime is a time, and {str(value)!r} is not one — give an ISO "
                              "date or date-time (2026-01-01, 2026-01-01T09:30) or an age (30m, 2h, 7d, 2w)")


def builtin_values(condition: Condition, now: float | None = None) -> list[Any]:
    """The values a built-in field's condition compares with, as stored: bytes for size, POSIX
    seconds for mtime (an age counted back from `now`), lower-case suffixes with their dot."""
    if condition.key == "suffix":
        return [_suffix(str(value)) for value in condition.values]
    if condition.key == "size":
        return [_size(value) for value in condition.values]
    return [_moment(str(value), now) for value in condition.values]


def compare(condition: Condition, values: Iterable[tuple[Any, T]]) -> list[T]:
    """The tags of the metadata values (or list values with a member) that satisfy an ordering
    comparison, from (stored value, tag) pairs — the store tags each distinct value with the
    documents holding it. Raises FilterError when the value compared with is of a type the key
    never holds among these values."""
    text = str(condition)
    kind, wanted = _typed(condition.values[0])
    if kind == "boolean":
        raise FilterError(f"filter {text!r}: true and false have no order — use {condition.key}=... or "
                          f"{condition.key}!=...")
    held: dict[str, None] = {}
    typed: list[tuple[T, list[tuple[str, Any]]]] = []
    for value, tag in values:
        items = [item for item in map(_typed, _members(value)) if item is not None]
        held.update(dict.fromkeys(item_kind for item_kind, _ in items))
        typed.append((tag, items))
    if held and kind not in held:
        if "text" not in held:
            names = " and ".join(_KIND_NAMES[k] for k in held)
            expected = " or ".join(_KIND_EXAMPLES[k] for k in held)
            raise FilterError(f"filter {text!r}: {condition.key} holds {names}, and {str(condition.values[0])!r} "
                              f"is not — compare it with {expected}")
        kind, wanted = "text", str(condition.values[0])
    return [tag for tag, items in typed
            if any(item_kind == kind and _holds(condition.op, item, wanted) for item_kind, item in items)]


# -- built-in fields ---------------------------------------------------------------------------

def _suffix(value: str) -> str:
    value = value.strip().lower()
    return value if not value or value.startswith(".") else "." + value


def _size(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _SIZE.match(str(value).strip())
    return float(match[1]) * _SIZE_UNITS[match[2].lower()] if match else None


def _moment(value: str, now: float | None = None) -> float | None:
    """An ISO date/date-time or an age before `now` as POSIX seconds, or None."""
    moment = _time(value)
    return moment if moment is not None else _age(value, time.time() if now is None else now)


def _age(value: str, now: float) -> float | None:
    value = value.strip().lower().replace(" ", "")
    parts = _AGE_PART.findall(value)
    if not value or "".join(number + unit for number, unit in parts) != value:
        return None
    return now - sum(float(number) * _AGE_UNITS[unit] for number, unit in parts)


# -- metadata ------------------------------------------------------------------------------------

def _members(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _typed(value: Any) -> tuple[str, Any] | None:
    """(kind, comparable) of a literal or a stored value: boolean, number, time or text; None for
    what cannot be compared (null, objects, NaN)."""
    if isinstance(value, bool):
        return "boolean", value
    if isinstance(value, (int, float)):
        return ("number", value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    if stripped.lower() in ("true", "false"):
        return "boolean", stripped.lower() == "true"
    if _NUMBER.match(stripped):
        return "number", float(stripped)
    moment = _time(stripped)
    if moment is not None:
        return "time", moment
    return "text", value


def _time(value: str) -> float | None:
    """An ISO 8601 date or date-time as POSIX seconds (naive ones in local time), or None."""
    value = value.strip()
    if not _ISO_DATE.match(value):
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp()


def _holds(op: str, actual: Any, wanted: Any) -> bool:
    return _ORDER[op](actual, wanted)
