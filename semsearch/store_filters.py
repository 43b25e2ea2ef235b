"""Filtered chunk ids: the path-glob, metadata and built-in field filters of a search, answered in SQL.

Part of the store layer with `semsearch.store` and its other `store_*` modules: SQL lives in these
modules only. `Store` inherits `FilterQueries`, which uses its connection plumbing (`_query`,
`home`); the filter expressions themselves are parsed and compared in `semsearch.filters`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from semsearch import filters

if TYPE_CHECKING:
    import numpy as np


class FilterQueries:
    """The filter queries of `semsearch.store.Store`."""

    def chunk_ids_where(self, path_globs: Sequence[str] = (), metadata: filters.Where | None = None) -> np.ndarray:
        """Ids of chunks whose document matches every filter (path globs OR-ed, `metadata`
        conditions AND-ed; see `semsearch.filters` for the expressions and the dict form).

        A metadata key matches `=` when the document's value equals the wanted one, or is a list
        that contains it; a list of wanted values matches any of them. Equality compares as text,
        so `year=2024` from the command line matches a YAML number and `draft=false` a boolean.
        Raises FilterError for a malformed expression or a comparison of the wrong type.
        """
        import numpy as np

        conditions = filters.conditions(metadata)
        clauses: list[str] = []
        params: list[Any] = []
        if path_globs:
            # A glob matches the stored path (relative to the home, or absolute outside it; a
            # text's id) or the file's absolute path under the home's current location.
            absolute = "(CASE WHEN d.kind = 'file' AND substr(d.path, 1, 1) != '/' THEN ? || d.path ELSE d.path END)"
            ors = []
            for glob in path_globs:
                ors.append(f"(d.path GLOB ? OR {absolute} GLOB ?)")
                params.extend([glob, self.home.as_posix().rstrip("/") + "/", glob])
            clauses.append("(" + " OR ".join(ors) + ")")
        now = time.time()
        for condition in filter(filters.in_sql, conditions):
            clause, values = _filter_clause(condition, now)
            clauses.append(clause)
            params.extend(values)
        for condition in (c for c in conditions if not filters.in_sql(c)):
            json_path = _json_path(condition.key)
            # Each distinct value once, with the documents holding it: typing a value costs more
            # than comparing it, and keys such as year or status repeat a few values many times.
            rows = self._query("SELECT json_type(d.metadata, ?), json_extract(d.metadata, ?), json_group_array(d.id) "
                               "FROM documents d WHERE json_type(d.metadata, ?) IS NOT NULL AND "
                               f"{' AND '.join(clauses) or '1'} GROUP BY 1, 2",
                               [json_path, json_path, json_path, *params])
            passing = filters.compare(condition, ((_json_value(kind, value), ids) for kind, value, ids in rows))
            clauses.append("d.id IN (SELECT value FROM json_each(?))")
            params.append("[" + ",".join(ids[1:-1] for ids in passing if ids != "[]") + "]")
        where = " AND ".join(clauses) or "1"
        rows = self._query(f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE {where}", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


# A document's modification time for filters: a file's mtime when indexed, a text's last addition.
_MODIFIED = "(CASE WHEN d.kind = 'file' THEN d.mtime_ns / 1e9 ELSE d.indexed_at END)"


def _filter_clause(condition: filters.Condition, now: float) -> tuple[str, list[Any]]:
    """The SQL (over `documents d`) and parameters of a condition the store decides alone."""
    json_path = _json_path(condition.key)
    if condition.op in filters.PRESENCE:
        return f"json_type(d.metadata, ?) IS {'NOT ' if condition.op == 'has' else ''}NULL", [json_path]
    negate = "NOT " if condition.op == "!=" else ""
    if condition.builtin:
        values = filters.builtin_values(condition, now)
        if condition.key == "suffix":
            ors = " OR ".join("substr(lower(d.path), -?) = ?" for _ in values)
            return f"{negate}(d.kind = 'file' AND ({ors}))", [v for s in values for v in (len(s), s)]
        column = "d.size" if condition.key == "size" else _MODIFIED
        if condition.op in filters.ORDERING:
            return f"{column} {condition.op} ?", values
        return f"{negate}({column} IN ({','.join('?' * len(values))}))", values
    wanted = [_filter_text(v) for v in condition.values]
    return (f"{negate}EXISTS (SELECT 1 FROM json_each(d.metadata, ?) AS item WHERE "
            "(CASE item.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN 'null' "
            f"ELSE CAST(item.value AS TEXT) END) IN ({','.join('?' * len(wanted))}))", [json_path, *wanted])


def _json_path(key: str) -> str:
    """The JSON path of a top-level metadata key, quoted so that dots and spaces stay in the key."""
    return f"$.{json.dumps(key, ensure_ascii=False)}"


def _json_value(kind: str, value: Any) -> Any:
    """A value json_extract returned, as Python: booleans from 1/0, lists parsed, objects and null as None."""
    if kind in ("true", "false"):
        return kind == "true"
    if kind == "array":
        return json.loads(value)
    return None if kind in ("object", "null") else value


def _filter_text(value: Any) -> str:
    """A wanted metadata value as the text SQLite shows for the stored JSON value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)
