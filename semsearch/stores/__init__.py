"""The vector-store boundary: where an index's vectors and keyword terms are searched.

SQLite stays the ledger of every index (documents, chunk texts and hashes, the embedding cache,
every vector, stat data); a store is derived from it and answers searches:

- `local` (`semsearch.stores.local`): the FAISS file next to the database and SQLite's FTS5
  table, as semsearch has always searched (the default).
- `milvus://HOST:PORT/COLLECTION` (`milvus+https://…` for TLS), or `milvus:PATH` for milvus-lite in
  a local file (`semsearch.stores.milvus`, the `milvus` extra): a Milvus collection that several
  indexing machines may share, each ledger's chunks under its own id prefix. The token comes
  from SEMSEARCH_MILVUS_TOKEN and is never written anywhere.

The store is chosen when an index is created and recorded in it (`semsearch.config`); nothing
above this boundary (search, context, rerank, the CLI, serve, MCP) knows which one answers. A
store follows the ledger: `apply` is handed every committed transaction, `updating` brackets a
writer's work, `refill` re-fills it from the vectors the ledger keeps. This module stays light:
`status` and `--help` import it without numpy, FAISS or pymilvus.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from semsearch.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from semsearch.filters import Where
    from semsearch.fusion import Candidate
    from semsearch.options import SearchTuning
    from semsearch.faiss_file import VectorFile
    from semsearch.store import ChunkRow, Store, WriteResult

LOCAL = "local"
TOKEN_ENV = "SEMSEARCH_MILVUS_TOKEN"
DEFAULT_COLLECTION = "semsearch"
STORE_URL_FORMS = "local, milvus://HOST:PORT/COLLECTION, milvus+https://HOST:PORT/COLLECTION or milvus:PATH"


@dataclass(frozen=True)
class StoreURL:
    """A parsed `--store` value: `kind` "local" or "milvus", the client `uri`, the `collection`.

    `url` is the canonical form recorded in the index (never a token).
    """

    kind: str
    url: str
    uri: str = ""
    collection: str = ""

    @property
    def is_file(self) -> bool:
        """Whether this is milvus-lite running inside this process on a local file."""
        return self.kind == "milvus" and not self.uri.startswith(("http://", "https://"))


def parse_store_url(url: str) -> StoreURL:
    """A `--store` value as a StoreURL; raises ConfigError naming the accepted forms."""
    text = (url or "").strip()
    if text in ("", LOCAL):
        return StoreURL(LOCAL, LOCAL)
    if text.startswith(("milvus://", "milvus+https://", "milvus+http://")):
        parts = urlsplit(text)
        scheme = "https" if parts.scheme == "milvus+https" else "http"
        collection = parts.path.strip("/")
        if parts.username or parts.password:
            raise ConfigError(f"store URL {url!r} carries credentials — give the token in ${TOKEN_ENV} instead, "
                              "so it is never recorded in the index")
        try:
            port = parts.port
        except ValueError:
            port = None
            parts = parts._replace(netloc="")
        if not parts.hostname or port is None or not collection or "/" in collection:
            raise ConfigError(f"store URL {url!r} is not one of {STORE_URL_FORMS} (e.g. milvus://127.0.0.1:19530/docs)")
        if not _collection_name_ok(collection):
            raise ConfigError(f"collection name {collection!r} in {url!r}: use letters, digits and underscores, "
                              "starting with a letter or underscore")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        prefix = "milvus+https" if scheme == "https" else "milvus"
        return StoreURL("milvus", f"{prefix}://{host}:{port}/{collection}", f"{scheme}://{host}:{port}", collection)
    if text.startswith("milvus:"):
        path = text.removeprefix("milvus:")
        if not path:
            raise ConfigError(f"store URL {url!r} names no file — give milvus:PATH, e.g. milvus:./vectors.db")
        path = os.path.abspath(os.path.expanduser(path))
        if not path.endswith(".db"):
            raise ConfigError(f"store URL {url!r}: a milvus-lite file must end in .db (e.g. milvus:./vectors.db)")
        return StoreURL("milvus", f"milvus:{path}", path, DEFAULT_COLLECTION)
    raise ConfigError(f"unknown store {url!r}: give one of {STORE_URL_FORMS}")


def _collection_name_ok(name: str) -> bool:
    return (name[0].isascii() and (name[0].isalpha() or name[0] == "_")
            and all(c.isascii() and (c.isalnum() or c == "_") for c in name))


@dataclass(frozen=True)
class Retrieved:
    """One ranked candidate list from a store.

    `rows` holds the chunk rows a store supplied itself, for candidates the local ledger does not
    hold (another ledger's chunks in a shared collection); their ids are negative, so they never
    meet a ledger chunk id.
    """

    candidates: list[Candidate]
    rows: Mapping[int, ChunkRow] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreFilter:
    """The filters of one search: as the caller gave them (a remote store translates them) and as
    the ledger answered them (`allowed_ids`: the ledger's chunks that pass, None without filters)."""

    paths: Sequence[str] = ()
    where: Where | None = None
    allowed_ids: np.ndarray | None = None

    @property
    def active(self) -> bool:
        return self.allowed_ids is not None


@dataclass(frozen=True)
class StoreStatus:
    """Whether a store agrees with the ledger, as `status` reports it."""

    kind: str
    location: str
    store_chunks: int
    ledger_chunks: int
    generation: int
    in_sync: bool
    problem: str = ""  # why the store could not be asked (unreachable, ...), "" when it answered


class VectorStore(Protocol):
    """What search and indexing need from a store (see the module docstring).

    Searches return larger-is-better scores: cosine for `search`, bm25 for `keyword_search`;
    when at least k chunks pass the filter, k come back.
    """

    kind: str
    location: str

    def search(self, query_vector: np.ndarray, k: int, filter: StoreFilter,
               tuning: SearchTuning) -> Retrieved: ...

    def keyword_search(self, query: str, k: int, filter: StoreFilter, *, skip_common: bool = False) -> Retrieved:
        """bm25 over the keyword terms; `skip_common` may leave out terms in half the chunks or more
        (a store whose bm25 gives them ~0 weight but still scores every chunk holding them)."""

    def dimensions(self) -> int: ...

    def prepare(self, *, create: bool = False) -> None:
        """Check, before a writer changes the ledger, that the store can take the writes (`create`:
        make what is missing, as `refill` will fill it)."""

    def updating(self) -> AbstractContextManager[None]: ...

    def apply(self, result: WriteResult) -> None: ...

    def refill(self, index_type: str | None = None) -> int: ...

    def status(self) -> StoreStatus: ...

    def close(self) -> None: ...


def open_store(url: str | None, ledger: Store, vector_file: VectorFile, dimensions: Callable[[], int],
               index_type: Callable[[], str | None] = lambda: None) -> VectorStore:
    """The store `url` names (None: local) for the index whose ledger is `ledger`.

    The local store searches `vector_file` (the index's FAISS file) and the ledger's FTS5 table;
    a Milvus store loads pymilvus (MissingDependencyError naming the extra when it is missing)
    and connects on first use. `dimensions()` gives the vectors' size (it may ask the embedder,
    for an index not written yet); `index_type()` the index type asked for, which a remote
    store matches when it makes its collection.
    """
    parsed = parse_store_url(url or LOCAL)
    if parsed.kind == LOCAL:
        from semsearch.stores.local import LocalStore

        return LocalStore(ledger, vector_file.vectors, vector_file)
    from semsearch.stores.milvus import MilvusStore

    return MilvusStore(parsed, ledger, dimensions, index_type)
