"""The Milvus store's keyword ranking: SQLite FTS5's bm25() over the rows a Milvus BM25 search retrieves.

Milvus does the retrieval (the collection, possibly shared by several machines, is the keyword
index), but its BM25 is not FTS5's: it weighs a term by Lucene's log(1 + (N - n + 0.5) / (n + 0.5))
where FTS5 takes log((N - n + 0.5) / (n + 0.5)), floored at 1e-6 for a term in half the rows or
more, and milvus-lite counts N and n per segment. A common word then counts for more in Milvus
and reorders the hits. So a keyword search here

1. asks Milvus for the best `max(4k, CANDIDATES)` rows holding any query term (with the search's
   filter), with their `keywords`: fewer than that came back means every matching row did;
2. scores each exactly as FTS5's bm25() does, with the same constants and arithmetic:
   sum over the query terms of idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)),
   tf and dl (the row's term count) read from the row's own `keywords`, N the collection's row
   count, avgdl the collection's term total (each row's `terms` field) over N, and n(t) the rows
   holding t: counted among the candidates when an unfiltered search returned every matching
   row, else by `TEXT_MATCH` on `keywords` (a field with `enable_match`), one request a term.

avgdl's term total is what each ledger's writer records in the collection's properties
(`semsearch.<ledger>.terms`, kept by `LedgerTerms` as rows are sent and deleted), so a query
costs three requests (properties, count, search) however large the collection; only a
collection holding a ledger that recorded no total is scanned (its `terms` field, once until
the next write). N, avgdl and each n(t) are kept until the row count or a recorded
generation or total changes. Rows deleted but not yet compacted
are counted by neither (Milvus's count(*) and query leave them out). As in the local store, N
counts every row (every ledger's), a filter only narrows which rows are returned, and a query
term repeated after stemming ("run running") counts twice. The ranking is FTS5's exactly when
the candidates hold every matching row (below `max(4k, CANDIDATES)` matches, or when Milvus's
own order puts the best rows among them); beyond that a row Milvus ranks lower can be missed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from semsearch import keyword
from semsearch.stores.milvus_terms import encode_term, fts_tokens

BM25_K1, BM25_B = 1.2, 0.75  # as SQLite FTS5's bm25()
CANDIDATES = 100  # at least this many rows are scored, so a filtered or short query sees every match
COMMON_IDF = 1e-6  # FTS5's idf of a term in half the rows or more
TERMS_SUFFIX = ".terms"  # `semsearch.<ledger>.terms`: the term total of a ledger's rows


def query_terms(query: str) -> list[str]:
    """The encoded tokens FTS5 scores a query by: those of each distinct analysed term, in order
    (two terms that stem alike stay two phrases, as in the local store's MATCH expression)."""
    return [encode_term(token) for term in dict.fromkeys(keyword.terms(query, for_query=True))
            for token in fts_tokens(term)]


@dataclass
class _Statistics:
    state: tuple = ()  # the row count and the ledgers' recorded generations and totals they were read at
    rows: int = 0
    terms: int = 0
    holding: dict[str, int] = field(default_factory=dict)  # term → rows holding it


class KeywordRanker:
    """FTS5's bm25() ranking of one collection's rows (see the module docstring). `call` runs a
    request with the store's retries and error mapping; `client` gives the pymilvus client."""

    def __init__(self, call: Callable[[Callable[[], Any]], Any], client: Callable[[], Any], collection: str):
        self._call = call
        self._client = client
        self._collection = collection
        self._statistics = _Statistics()

    def search(self, terms: Sequence[str], k: int, expression: str | None, output_fields: list[str], *,
               skip_common: bool = False, skip_common_rows: int = 0) -> list[tuple[dict[str, Any], float]]:
        """The best `k` rows (Milvus hits) for the encoded `terms` with their FTS5 bm25 score, best
        first; `skip_common` leaves out terms in half the rows or more once the collection holds
        `skip_common_rows` (as the local store does)."""
        statistics = self._read_statistics()
        if not statistics.rows:
            return []
        if skip_common and statistics.rows >= skip_common_rows:
            self._count_holding(statistics, terms)
            terms = [t for t in terms if 2 * statistics.holding[t] < statistics.rows]
            if not terms:
                return []
        client = self._client()
        limit = max(4 * k, CANDIDATES)
        options = {"filter": expression} if expression else {}
        found = self._call(lambda: client.search(
            self._collection, data=[" ".join(dict.fromkeys(terms))], anns_field="sparse", limit=limit,
            output_fields=[*output_fields, "keywords"], search_params={"metric_type": "BM25"}, **options))
        hits = list(found[0]) if found else []
        held = [_entity(hit).get("keywords", "").split() for hit in hits]
        counts = [Counter(row) for row in held]
        if expression is None and len(hits) < limit:
            # Every row holding a query term came back: count them here, not by a request per term.
            for term in dict.fromkeys(terms):
                statistics.holding.setdefault(term, sum(1 for row in counts if term in row))
        else:
            self._count_holding(statistics, terms)
        idf = [_idf(statistics.rows, statistics.holding[t]) for t in terms]
        average = statistics.terms / statistics.rows
        scored = []
        for hit, row, count in zip(hits, held, counts):
            score = bm25(count, len(row), terms, idf, average)
            if score > 0:
                scored.append((hit, score))
        # Equal scores in FTS5's order: by rowid, which for this ledger's rows is the chunk id.
        scored.sort(key=lambda item: (-item[1], _entity(item[0]).get("ledger", ""),
                                      int(_entity(item[0]).get("chunk", 0))))
        return scored[:k]

    def _read_statistics(self) -> _Statistics:
        """N and the term total, read again when the row count or a ledger's recorded generation
        or term total moved."""
        client = self._client()
        properties = self._call(lambda: client.describe_collection(self._collection)).get("properties") or {}
        recorded = tuple(sorted((key, value) for key, value in properties.items()
                                if key.endswith((".generation", TERMS_SUFFIX))))
        count = self._count("")
        state = (count, recorded)
        if self._statistics.state != state:
            ledgers = {key.rsplit(".", 1)[0] for key, _ in recorded}
            totals = {key.rsplit(".", 1)[0]: int(value) for key, value in recorded if key.endswith(TERMS_SUFFIX)}
            if ledgers and set(totals) == ledgers:
                self._statistics = _Statistics(state, count, sum(totals.values()))
            else:  # a ledger that recorded no total: count the terms row by row
                rows, total = self._term_total()
                # A writer between the count and the scan: use the scan, read it all again next time.
                self._statistics = _Statistics(state if rows == count else (), rows, total)
        return self._statistics

    def _count_holding(self, statistics: _Statistics, terms: Sequence[str]) -> None:
        for term in dict.fromkeys(terms):
            if term not in statistics.holding:
                statistics.holding[term] = self._count(f'TEXT_MATCH(keywords, "{term}")')

    def _count(self, expression: str) -> int:
        client = self._client()
        rows = self._call(lambda: client.query(self._collection, filter=expression, output_fields=["count(*)"],
                                               consistency_level="Strong"))
        return int(rows[0]["count(*)"]) if rows else 0

    def _term_total(self) -> tuple[int, int]:
        """(rows, their terms in all): the collection's row count and the sum of its `terms` field."""
        terms = field_values(self._call, self._client(), self._collection, "", "terms")
        return len(terms), sum(terms)


class LedgerTerms:
    """The term total of one ledger's rows (the sum of their `terms`), kept by its writer while it
    sends and deletes rows and recorded in the collection's properties (`recorded`), so searches
    read avgdl from there instead of scanning every row."""

    def __init__(self, call: Callable[[Callable[[], Any]], Any], client: Callable[[], Any], collection: str):
        self._call = call
        self._client = client
        self._collection = collection
        self.total: int | None = None  # None: not kept (a collection without `terms`, or catching up)

    def start(self, prefix: str, properties: dict[str, str], *, recount: bool) -> None:
        """Take the recorded total, or count it from the rows when none is recorded or `recount`
        (the last writer stopped before recording what it sent)."""
        recorded = properties.get(f"semsearch.{prefix}{TERMS_SUFFIX}")
        if recorded is not None and not recount:
            self.total = int(recorded)
            return
        self.total = sum(field_values(self._call, self._client(), self._collection, f'ledger == "{prefix}"', "terms"))

    def sent(self, rows: Sequence[dict[str, Any]]) -> None:
        if self.total is not None:
            self.total += sum(int(row["terms"]) for row in rows)

    def deleting(self, ids: Sequence[str]) -> None:
        """Before `ids` are deleted: take their terms off the total (ids the collection lacks count 0)."""
        if self.total is not None and ids:
            client = self._client()
            rows = self._call(lambda: client.query(self._collection, ids=list(ids), output_fields=["terms"],
                                                   consistency_level="Strong"))
            self.total -= sum(int(row["terms"]) for row in rows)

    def recorded(self, prefix: str) -> dict[str, str]:
        """The collection property that records the total (none when it is not kept)."""
        return {} if self.total is None else {f"semsearch.{prefix}{TERMS_SUFFIX}": str(self.total)}


def field_values(call: Callable[[Callable[[], Any]], Any], client: Any, collection: str, expression: str,
                 field_name: str) -> list[int]:
    """The integer `field_name` of every row `expression` selects ("": all), read in batches."""
    iterator = call(lambda: client.query_iterator(collection, filter=expression, output_fields=[field_name],
                                                  batch_size=10_000))
    values: list[int] = []
    while batch := call(iterator.next):
        values.extend(int(row[field_name]) for row in batch)
    iterator.close()
    return values


def _entity(hit: dict[str, Any]) -> dict[str, Any]:
    return hit.get("entity", hit)


def _idf(rows: int, holding: int) -> float:
    idf = math.log((rows - holding + 0.5) / (holding + 0.5))
    return idf if idf > 0 else COMMON_IDF


def bm25(counts: Counter[str], length: int, terms: Sequence[str], idf: Sequence[float], average: float) -> float:
    """FTS5's bm25() of one row (larger is better): the same operations in the same order as
    fts5Bm25Function, so equal inputs give the same double."""
    score = 0.0
    for term, weight in zip(terms, idf):
        frequency = float(counts.get(term, 0))
        score += weight * ((frequency * (BM25_K1 + 1.0)) /
                           (frequency + BM25_K1 * (1 - BM25_B + BM25_B * float(length) / average)))
    return score
