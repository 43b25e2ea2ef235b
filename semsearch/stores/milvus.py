"""The Milvus store: vectors and keyword terms in a Milvus collection, SQLite still the ledger.

`--store milvus://HOST:PORT/COLLECTION` (a Milvus server; token from SEMSEARCH_MILVUS_TOKEN) or
`milvus:PATH.db` (milvus-lite in a local file). pymilvus loads on first use; without the
`milvus` extra the error names `pip install 'semsearch[milvus]'`.

The collection (one row per chunk that has a vector; `FIELDS` below):

- `id`: the chunk id made globally unique, `<ledger prefix>-<chunk id>`. Each ledger (each
  indexing machine's SQLite database) draws a random prefix once and records it in its meta, so
  several machines indexing their own sources into one collection never collide; each writes,
  deletes and counts only rows of its own prefix (`ledger`).
- `vector` (FLOAT_VECTOR, inner product: FLAT for a `flat` index, IVF_FLAT / IVF_SQ8 for the
  `ivf` types, HNSW otherwise), `text`, `path` (the document key: relative to the indexing
  machine's home, or absolute, or a text's id), `part`, `line_start`/`line_end`, `size`,
  `mtime`, `metadata` (JSON) and `details` (JSON: title, headings, offsets), so a hit from
  another ledger can be shown without that ledger.
- `keywords`: OUR analyser's terms (`semsearch.keyword`: CJK bigrams and single characters,
  words folded and Porter-stemmed as FTS5's porter tokenizer does), each term encoded so that
  any word tokenizer keeps it whole (`encode_term`), feeding a BM25 function into `sparse`.
  Milvus's own Chinese analysis is never relied on, and the query's terms are encoded the same.

Search: dense ANN with the filters as a Milvus expression — the ledger's own chunks by the ids
SQLite lets through (exactly the local store's filter semantics), other ledgers' rows by the
filters translated to field expressions (`translate_filter`; a filter that cannot be translated
leaves other ledgers' rows out) — retried with a wider search when fewer than k came back;
keyword: Milvus BM25 retrieves, FTS5's bm25() formula ranks (`milvus_keyword`), so the hits come
in the local store's order; hybrid is fused by `semsearch.fusion` over the two lists as for the
local store. The ledger's generation and chunk count are written into the collection's
properties after every writer finishes; a writer that finds them behind the ledger (a run
stopped by a Milvus outage) first re-sends what the collection lacks and deletes what it should
no longer hold. Transient gRPC failures (UNAVAILABLE, DEADLINE_EXCEEDED) are retried with
backoff; every other failure is a StoreError subclass with one line saying what to do.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semsearch.config import IndexState, store_ledger_meta
from semsearch.errors import (StoreAuthError, StoreError, StoreMismatchError, StoreNotFoundError,
                              StoreUnavailableError)
from semsearch.stores import TOKEN_ENV, Retrieved, StoreFilter, StoreStatus, StoreURL
from semsearch.stores.milvus_keyword import BM25_B, BM25_K1, KeywordRanker, LedgerTerms, field_values, query_terms
from semsearch.stores.milvus_terms import keyword_text, query_text, translate_filter

if TYPE_CHECKING:
    import numpy as np

    from semsearch.options import SearchTuning
    from semsearch.store import ChunkRow, Store, WriteResult

# Milvus VARCHAR lengths are in bytes.
TEXT_BYTES = 65_535
PATH_BYTES = 4_096
SEND_BATCH = 500  # rows per insert/delete request: well under gRPC's message limit at 4096 dimensions
RETRY_DELAYS = (0.5, 1.0, 2.0)  # seconds between attempts at a transient failure
WIDER_SEARCH = 8  # a filtered search that came back short is tried again with this many times the ef
SCHEMA_PROPERTY = "semsearch.schema"
SCHEMA = "2"  # 2: `keywords` with enable_match and `terms`, so keyword hits rank as FTS5 ranks them
SCHEMA_WITHOUT_TERMS = "1"  # still searched; Milvus's own BM25 ranks its keyword hits
TIMEOUT = 30.0  # seconds for one request


FIELDS = ("id", "ledger", "chunk", "document", "vector", "text", "keywords", "terms", "sparse", "path", "kind",
          "part", "part_kind", "line_start", "line_end", "size", "mtime", "metadata", "details")
_ROW_FIELDS = [f for f in FIELDS if f not in ("vector", "sparse", "keywords", "terms")]
_SCHEMA_FIELDS = {SCHEMA: set(FIELDS), SCHEMA_WITHOUT_TERMS: set(FIELDS) - {"terms"}}


# -- ids -------------------------------------------------------------------------------------------

def row_id(ledger: str, chunk_id: int) -> str:
    return f"{ledger}-{chunk_id}"


def foreign_id(key: str) -> int:
    """A negative id for another ledger's chunk or document, stable across searches (so the
    vector and keyword lists of one hybrid search agree), never equal to a ledger id."""
    return -1 - int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=7).digest(), "big")


def _clip(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


# -- errors ----------------------------------------------------------------------------------------

_TRANSIENT_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED")


def _grpc_code(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if callable(code):
        try:
            return str(getattr(code(), "name", code()))
        except Exception:  # noqa: BLE001 - an error without a gRPC status
            return ""
    return ""


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from (pymilvus wraps gRPC's errors in its own)."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def _refused(exc: BaseException) -> bool:
    """Whether the server refused the credentials (also when pymilvus reports it as a failed connect)."""
    for cause in _causes(exc):
        text = str(getattr(cause, "message", "") or cause).lower()
        if (_grpc_code(cause) in ("UNAUTHENTICATED", "PERMISSION_DENIED") or getattr(cause, "code", None) in (1800, 2200)
                or any(s in text for s in ("auth check fail", "unauthenticated", "credential", "permission denied"))):
            return True
    return False


def is_transient(exc: BaseException) -> bool:
    """Whether a failure may pass if the request is sent again: the server unreachable or slow."""
    if _refused(exc):
        return False
    if _grpc_code(exc) in _TRANSIENT_CODES:
        return True
    text = str(exc).lower()
    return getattr(exc, "code", None) == 2 or any(s in text for s in (
        "fail connecting", "server unavailable", "connection refused", "deadline exceeded", "unavailable",
        "connection reset", "socket closed", "failed to connect"))


def store_error(exc: BaseException, where: str) -> StoreError:
    """A pymilvus/gRPC failure as the StoreError a user reads (one line: what happened, what to do)."""
    text = str(getattr(exc, "message", "") or exc)
    lower = text.lower()
    if _refused(exc):
        return StoreAuthError(f"Milvus at {where} refused the credentials — set {TOKEN_ENV} to a valid token "
                              "(user:password, or an API key) and run the command again")
    if is_transient(exc):
        return StoreUnavailableError(f"cannot reach Milvus at {where} — start it (or check the address), then "
                                     "run the command again; `semsearch index` re-sends what did not arrive")
    if getattr(exc, "code", None) == 100 or "does not exist" in lower or "not found" in lower:
        return StoreNotFoundError(f"the collection of {where} does not exist — `semsearch rebuild` fills it "
                                  "again from the vectors the index keeps")
    return StoreError(f"Milvus at {where} failed: {text.strip().splitlines()[0] if text.strip() else type(exc).__name__}")


class MilvusStore:
    """One Milvus collection, following the ledger `ledger` (see the module docstring)."""

    kind = "milvus"

    def __init__(self, url: StoreURL, ledger: Store, dimensions: Callable[[], int],
                 index_type: Callable[[], str | None] = lambda: None):
        self.url = url
        self._index_type = index_type
        self.location = url.url
        self._ledger = ledger
        self._dimensions = dimensions
        self._client_object = None
        self._checked = False  # the collection was found (or made) with our schema and dimensions
        self._schema = SCHEMA  # the schema version of the collection found
        self._ranker = KeywordRanker(self._call, self._client, url.collection)
        self._terms = LedgerTerms(self._call, self._client, url.collection)
        self._refilling = False

    # -- connection ----------------------------------------------------------------------------

    def _client(self):
        if self._client_object is None:
            from semsearch.optional import require

            # gRPC's C core prints connection chatter (keepalive GOAWAYs) on stderr unless told not to.
            os.environ.setdefault("GRPC_VERBOSITY", "NONE")
            pymilvus = require("pymilvus", "milvus")
            # pymilvus logs each failed call with its traceback, and configures its logger on import:
            # quiet it here, so a failure reaches the user as the one line of its StoreError.
            logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
            if self.url.is_file:
                require("milvus_lite", "milvus", package="milvus-lite")
                Path(self.url.uri).parent.mkdir(parents=True, exist_ok=True)
                options: dict[str, Any] = {"uri": self.url.uri}
            else:
                options = {"uri": self.url.uri, "token": os.environ.get(TOKEN_ENV, ""), "timeout": TIMEOUT}
            self._client_object = self._call(lambda: pymilvus.MilvusClient(**options))
        return self._client_object

    def _call(self, request: Callable[[], Any]) -> Any:
        """`request()`, retried with backoff while it fails transiently; failures as StoreError."""
        for attempt in range(len(RETRY_DELAYS) + 1):
            try:
                return request()
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - pymilvus and grpc raise many types; all are mapped
                if is_transient(exc) and attempt < len(RETRY_DELAYS):
                    time.sleep(RETRY_DELAYS[attempt])
                    continue
                raise store_error(exc, self.location) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        client, self._client_object = self._client_object, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a connection to a server that went away
                pass

    # -- the collection ------------------------------------------------------------------------

    def _ledger_prefix(self, *, create: bool = False) -> str:
        """This ledger's prefix in the collection ("" before it ever wrote; made when `create`)."""
        prefix = IndexState.from_meta(self._ledger.meta()).store_ledger
        if not prefix and create:
            prefix = uuid.uuid4().hex[:12]
            self._ledger.set_meta(store_ledger_meta(prefix))
        return prefix

    def _check_collection(self, *, create: bool) -> None:
        """Find the collection and check its dimensions, or make it when `create` (or the ledger
        holds no vector yet); raises StoreNotFoundError / StoreMismatchError."""
        if self._checked:
            return
        client = self._client()
        name = self.url.collection
        dimensions = self._dimensions()
        if not self._call(lambda: client.has_collection(name)):
            if not create and self._ledger.count_vectors() > 0:
                raise StoreNotFoundError(
                    f"the collection {name!r} does not exist on {self.location} — `semsearch rebuild` fills it "
                    "again from the vectors the index keeps")
            self._create_collection(client, name, dimensions)
        described = self._call(lambda: client.describe_collection(name))
        fields = {f["name"]: f for f in described.get("fields", [])}
        held = int((fields.get("vector", {}).get("params") or {}).get("dim", 0))
        if "vector" in fields and held != dimensions:
            raise StoreMismatchError(
                f"the collection {name!r} on {self.location} holds {held}-dimension vectors, and this index's "
                f"model makes {dimensions} — give another collection name in --store")
        schema = described.get("properties", {}).get(SCHEMA_PROPERTY)
        if set(fields) != _SCHEMA_FIELDS.get(schema):
            raise StoreMismatchError(
                f"the collection {name!r} on {self.location} was not made by semsearch (fields "
                f"{', '.join(sorted(fields)) or 'none'}) — give another collection name in --store")
        self._load()
        self._schema = schema
        self._checked = True

    def _load(self) -> None:
        """Load the collection for search: a server that restarted holds it released."""
        client = self._client()
        state = self._call(lambda: client.get_load_state(self.url.collection))
        if "Loaded" not in str(state.get("state", "")):
            self._call(lambda: client.load_collection(self.url.collection))

    def _create_collection(self, client, name: str, dimensions: int) -> None:
        vector_index = self._vector_index()
        self._call(lambda: create_collection(client, name, dimensions, vector_index))
        self._call(lambda: client.alter_collection_properties(name, properties={SCHEMA_PROPERTY: SCHEMA}))

    def _vector_index(self) -> tuple[str, dict[str, Any]]:
        """The Milvus index type matching the index's recorded type: FLAT for flat, IVF_FLAT /
        IVF_SQ8 for the ivf types, HNSW for hnsw, hnsw-sq8 and auto (a shared collection grows)."""
        from semsearch.vectors import HNSW_EF_CONSTRUCTION, HNSW_M

        kind = self._index_type() or "auto"
        if kind == "flat":
            return "FLAT", {}
        if kind.startswith("ivf"):
            return ("IVF_SQ8" if kind.endswith("sq8") else "IVF_FLAT"), {"nlist": 1024}
        return "HNSW", {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}

    def _properties(self) -> dict[str, str]:
        client = self._client()
        described = self._call(lambda: client.describe_collection(self.url.collection))
        return dict(described.get("properties") or {})

    def _stored_count(self, prefix: str) -> int:
        if not prefix:
            return 0
        client = self._client()
        rows = self._call(lambda: client.query(self.url.collection, filter=f'ledger == "{prefix}"',
                                               output_fields=["count(*)"], consistency_level="Strong"))
        return int(rows[0]["count(*)"]) if rows else 0

    # -- writing -------------------------------------------------------------------------------

    def prepare(self, *, create: bool = False) -> None:
        """Reach the server and find (or make) the collection before the ledger changes."""
        self._check_collection(create=create)
        self._ledger_prefix(create=True)
        self._refilling = create  # `refill` sends everything: no catching up first

    @contextmanager
    def updating(self) -> Iterator[None]:
        """Catch up with the ledger first if the last writer stopped midway; afterwards record the
        ledger's generation and chunk count in the collection's properties (not after a failure,
        so the next writer catches up again)."""
        self._check_collection(create=False)
        prefix = self._ledger_prefix(create=True)
        caught_up = not self._refilling and not self._agrees(prefix)
        if caught_up:
            self._catch_up(prefix)
        if self._schema == SCHEMA:
            self._terms.start(prefix, self._properties(), recount=caught_up)
        try:
            yield
        finally:
            self._refilling = False
        self._record(prefix)
        self._terms.total = None

    def _agrees(self, prefix: str) -> bool:
        properties = self._properties()
        return (properties.get(f"semsearch.{prefix}.generation") == str(self._ledger.generation())
                and self._stored_count(prefix) == self._ledger.count_vectors())

    def _record(self, prefix: str) -> None:
        client = self._client()
        properties = {f"semsearch.{prefix}.generation": str(self._ledger.generation()),
                      f"semsearch.{prefix}.chunks": str(self._ledger.count_vectors()), **self._terms.recorded(prefix)}
        self._call(lambda: client.alter_collection_properties(self.url.collection, properties=properties))

    def _catch_up(self, prefix: str) -> None:
        """Send the vectors the collection lacks and delete the rows the ledger no longer has."""
        import numpy as np

        stored = self._stored_chunks(prefix)
        kept: list[np.ndarray] = []
        for ids, vectors in self._ledger.iter_vectors():
            missing = ~np.isin(ids, stored)
            if missing.any():
                self._send(prefix, ids[missing], vectors[missing])
            kept.append(ids)
        extra = np.setdiff1d(stored, np.concatenate(kept) if kept else np.zeros(0, np.int64))
        self._delete(prefix, extra)

    def _stored_chunks(self, prefix: str) -> np.ndarray:
        import numpy as np

        chunks = field_values(self._call, self._client(), self.url.collection, f'ledger == "{prefix}"', "chunk")
        return np.asarray(sorted(set(chunks)), dtype=np.int64)

    def apply(self, result: WriteResult) -> None:
        """Follow one committed ledger transaction: delete its removed chunks, send its new vectors."""
        prefix = self._ledger_prefix()
        self._delete(prefix, result.removed_ids)
        if len(result.added_ids):
            self._send(prefix, result.added_ids, result.added_vectors)
        if self._terms.recorded(prefix) and (len(result.removed_ids) or len(result.added_ids)):
            client = self._client()  # searches meanwhile see the total of the rows there are
            self._call(lambda: client.alter_collection_properties(self.url.collection,
                                                                  properties=self._terms.recorded(prefix)))

    def _delete(self, prefix: str, chunk_ids: Sequence[int] | np.ndarray) -> None:
        client = self._client()
        ids = [row_id(prefix, int(i)) for i in chunk_ids]
        for start in range(0, len(ids), SEND_BATCH):
            part = ids[start:start + SEND_BATCH]
            self._terms.deleting(part)
            self._call(lambda: client.delete(self.url.collection, ids=part))

    def _send(self, prefix: str, chunk_ids: np.ndarray, vectors: np.ndarray) -> None:
        client = self._client()
        for start in range(0, len(chunk_ids), SEND_BATCH):
            rows = self._rows(prefix, chunk_ids[start:start + SEND_BATCH], vectors[start:start + SEND_BATCH])
            if rows:
                self._call(lambda: client.upsert(self.url.collection, rows))
                self._terms.sent(rows)

    def _rows(self, prefix: str, chunk_ids: np.ndarray, vectors: np.ndarray) -> list[dict[str, Any]]:
        chunks = self._ledger.chunks([int(i) for i in chunk_ids])
        stats = {f.document_id: f for f in self._ledger.file_stats({row.document_id for row in chunks.values()})}
        rows = []
        for chunk_id, vector in zip(chunk_ids, vectors):
            row = chunks.get(int(chunk_id))
            if row is None:  # deleted by a later transaction, which the store follows next
                continue
            stat = stats.get(row.document_id)
            path = self._ledger.file_key(Path(row.path)) if row.kind == "file" else row.path
            keywords = _clip(keyword_text(row.heading_path, row.text), TEXT_BYTES)
            rows.append({
                "id": row_id(prefix, row.chunk_id), "ledger": prefix, "chunk": row.chunk_id,
                "document": row.document_id, "vector": [float(x) for x in vector],
                "text": _clip(row.text, TEXT_BYTES), "keywords": keywords,
                **({"terms": len(keywords.split())} if self._schema == SCHEMA else {}),
                "path": _clip(path, PATH_BYTES), "kind": row.kind, "part": -1 if row.part is None else row.part,
                "part_kind": row.part_kind, "line_start": row.line_start, "line_end": row.line_end,
                "size": stat.size if stat is not None else len(row.text.encode("utf-8")),
                "mtime": stat.mtime_ns / 1e9 if stat is not None else 0.0,
                "metadata": row.metadata,
                "details": {"title": row.title, "heading_path": list(row.heading_path), "char_start": row.char_start,
                            "char_end": row.char_end, "ordinal": row.ordinal},
            })
        return rows

    def refill(self, index_type: str | None = None) -> int:
        """Delete this ledger's rows and send every vector the ledger keeps; returns the count.

        The collection's vector index type was fixed when it was made; `index_type` is recorded
        in the ledger for the local store and for collections made later."""
        prefix = self._ledger_prefix(create=True)
        client = self._client()
        self._call(lambda: client.delete(self.url.collection, filter=f'ledger == "{prefix}"'))
        self._terms.total = 0 if self._terms.total is not None else None
        count = 0
        for ids, vectors in self._ledger.iter_vectors():
            self._send(prefix, ids, vectors)
            count += len(ids)
        return count

    # -- searching -----------------------------------------------------------------------------

    def dimensions(self) -> int:
        return self._dimensions()

    def _expression(self, found: StoreFilter) -> str | None:
        """The Milvus filter for a search: None without filters, "" when nothing can pass."""
        if not found.active:
            return None
        prefix = self._ledger_prefix()
        parts = []
        if prefix and found.allowed_ids is not None and len(found.allowed_ids):
            ids = ", ".join(str(int(i)) for i in found.allowed_ids)
            parts.append(f'(ledger == "{prefix}" and chunk in [{ids}])')
        others = translate_filter(found.paths, found.where)
        if others is not None:
            mine = f'ledger != "{prefix}"' if prefix else ""
            parts.append("(" + (" and ".join(p for p in (mine, others) if p) or 'ledger != ""') + ")")
        return " or ".join(parts)

    def search(self, query_vector: np.ndarray, k: int, filter: StoreFilter, tuning: SearchTuning) -> Retrieved:
        expression = self._expression(filter)
        if expression == "" or k <= 0:
            return Retrieved([])
        self._check_collection(create=False)
        from semsearch.vectors import DEFAULT_EF_SEARCH, DEFAULT_NPROBE

        ef = max(tuning.ef_search or DEFAULT_EF_SEARCH, k)
        vector = [float(x) for x in query_vector]
        hits = self._vector_hits(vector, k, expression, ef, tuning.nprobe or DEFAULT_NPROBE)
        if expression is not None and len(hits) < k:
            # A selective filter can leave a graph search short of k: search again far wider.
            hits = self._vector_hits(vector, k, expression, ef * WIDER_SEARCH, 1 << 16)
        return self._retrieved(hits, lambda hit: float(hit["distance"]))

    def _vector_hits(self, vector: list[float], k: int, expression: str | None, ef: int, nprobe: int) -> list:
        client = self._client()
        options = {"filter": expression} if expression else {}
        found = self._call(lambda: client.search(
            self.url.collection, data=[vector], anns_field="vector", limit=k, output_fields=_ROW_FIELDS,
            search_params={"metric_type": "IP", "params": {"ef": ef, "nprobe": nprobe}}, **options))
        return list(found[0]) if found else []

    def keyword_search(self, query: str, k: int, filter: StoreFilter, *, skip_common: bool = False) -> Retrieved:
        """FTS5's bm25() ranking over the rows Milvus retrieves (`milvus_keyword`); in a collection
        made before the `terms` field, Milvus's own BM25 ranking."""
        expression = self._expression(filter)
        terms = query_terms(query)
        if expression == "" or not terms or k <= 0:
            return Retrieved([])
        self._check_collection(create=False)
        if self._schema == SCHEMA:
            from semsearch.store import SKIP_COMMON_MIN_CHUNKS

            ranked = self._ranker.search(terms, k, expression, _ROW_FIELDS, skip_common=skip_common,
                                         skip_common_rows=SKIP_COMMON_MIN_CHUNKS)
            scores = {str(hit["id"]): score for hit, score in ranked}
            return self._retrieved([hit for hit, _ in ranked], lambda hit: scores[str(hit["id"])])
        text = query_text(query)
        client = self._client()
        options = {"filter": expression} if expression else {}
        found = self._call(lambda: client.search(
            self.url.collection, data=[text], anns_field="sparse", limit=k, output_fields=_ROW_FIELDS,
            search_params={"metric_type": "BM25"}, **options))
        # Milvus answers BM25 best first; milvus-lite gives the scores negated, Milvus positive.
        return self._retrieved(list(found[0]) if found else [], lambda hit: abs(float(hit["distance"])))

    def _retrieved(self, hits: list, score: Callable[[Any], float]) -> Retrieved:
        from semsearch.fusion import Candidate

        prefix = self._ledger_prefix()
        candidates = []
        rows: dict[int, ChunkRow] = {}
        for hit in hits:
            entity = hit.get("entity", hit)
            if prefix and entity["ledger"] == prefix:
                candidates.append(Candidate(int(entity["chunk"]), score(hit)))
                continue
            foreign = foreign_id(str(hit["id"]))
            rows[foreign] = _foreign_row(foreign, entity)
            candidates.append(Candidate(foreign, score(hit)))
        return Retrieved(candidates, rows)

    # -- status --------------------------------------------------------------------------------

    def status(self) -> StoreStatus:
        """The collection's count of this ledger's rows and recorded generation against the ledger;
        a store that cannot be asked says why in `problem` (status never fails for it)."""
        ledger_chunks = self._ledger.count_vectors()
        prefix = self._ledger_prefix()
        try:
            client = self._client()
            if not self._call(lambda: client.has_collection(self.url.collection)):
                raise StoreNotFoundError(f"the collection {self.url.collection!r} does not exist — "
                                         "`semsearch rebuild` fills it from the ledger")
            self._load()
            properties = self._properties()
            stored = self._stored_count(prefix)
        except StoreError as exc:
            return StoreStatus("milvus", self.location, 0, ledger_chunks, -1, False, problem=str(exc))
        generation = int(properties.get(f"semsearch.{prefix}.generation", -1)) if prefix else -1
        in_sync = stored == ledger_chunks and (generation == self._ledger.generation() or (not prefix and not stored))
        return StoreStatus("milvus", self.location, stored, ledger_chunks, generation, in_sync)


def _foreign_row(chunk_id: int, entity: dict[str, Any]) -> ChunkRow:
    """A hit from another ledger, built from the row the collection holds."""
    from semsearch.store import ChunkRow

    details = entity.get("details") or {}
    part = int(entity.get("part", -1))
    return ChunkRow(
        chunk_id=chunk_id, document_id=foreign_id(f"{entity['ledger']}:{entity['document']}"),
        text=entity.get("text", ""), char_start=int(details.get("char_start", 0)),
        char_end=int(details.get("char_end", 0)), line_start=int(entity.get("line_start", 0)),
        line_end=int(entity.get("line_end", 0)), heading_path=tuple(details.get("heading_path", ())),
        path=entity.get("path", ""), kind=entity.get("kind", "file"), title=details.get("title", ""),
        metadata=entity.get("metadata") or {}, part_kind=entity.get("part_kind", ""),
        part=None if part < 0 else part, ordinal=int(details.get("ordinal", -1)),
    )


def _nested(params: dict[str, Any]) -> dict[str, Any]:
    """Index build parameters both flat (as pymilvus 3 sends them) and under "params" (the form
    older clients sent, which Milvus still reads): milvus-lite reads only the nested one and
    silently builds with its defaults otherwise (HNSW M 16, BM25 k1 1.5)."""
    return {**params, "params": dict(params)} if params else params


def create_collection(client, name: str, dimensions: int, vector_index: tuple[str, dict[str, Any]]) -> None:
    """The store's collection (the fields in the module docstring), `vector_index` the Milvus
    index type and build parameters of the vector field (`MilvusStore._vector_index`)."""
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("ledger", DataType.VARCHAR, max_length=32)
    schema.add_field("chunk", DataType.INT64)
    schema.add_field("document", DataType.INT64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimensions)
    schema.add_field("text", DataType.VARCHAR, max_length=TEXT_BYTES)
    # `standard` splits at Unicode word boundaries and lower-cases: our encoded terms pass whole.
    # `enable_match`: TEXT_MATCH counts the rows holding a term, for FTS5's idf (`milvus_keyword`).
    schema.add_field("keywords", DataType.VARCHAR, max_length=TEXT_BYTES, enable_analyzer=True,
                     analyzer_params={"tokenizer": "standard"}, enable_match=True)
    schema.add_field("terms", DataType.INT64)  # how many terms `keywords` holds: FTS5's document length
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("path", DataType.VARCHAR, max_length=PATH_BYTES)
    schema.add_field("kind", DataType.VARCHAR, max_length=16)
    schema.add_field("part", DataType.INT64)
    schema.add_field("part_kind", DataType.VARCHAR, max_length=16)
    schema.add_field("line_start", DataType.INT64)
    schema.add_field("line_end", DataType.INT64)
    schema.add_field("size", DataType.INT64)
    schema.add_field("mtime", DataType.DOUBLE)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("details", DataType.JSON)
    schema.add_function(Function(name="keywords_bm25", function_type=FunctionType.BM25,
                                 input_field_names=["keywords"], output_field_names=["sparse"]))
    kind, params = vector_index
    index_params = client.prepare_index_params()
    index_params.add_index(field_name="vector", index_type=kind, metric_type="IP", params=_nested(params))
    # FTS5's bm25() constants (milvus-lite's own default k1 is 1.5): the same term-frequency
    # saturation and length normalisation as the local store.
    index_params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                           params=_nested({"bm25_k1": BM25_K1, "bm25_b": BM25_B}))
    client.create_collection(name, schema=schema, index_params=index_params, consistency_level="Strong",
                             properties={SCHEMA_PROPERTY: SCHEMA})
