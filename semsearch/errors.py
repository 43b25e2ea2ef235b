"""The one exception tree of semsearch; every error a user can see is a SemsearchError.

    SemsearchError                      message says what happened and what to do next
    ├── ConfigError                     impossible options (bad glob, bad dimensions, ...)
    │   ├── MissingDependencyError      an optional extra is not installed (names the pip command)
    │   ├── InvalidInputError           caller-supplied data we cannot store (non-finite numbers, lone surrogates, ...)
    │   └── FilterError                 a `where` filter that is malformed or compares a key with the wrong type
    ├── IndexError_                     problems with the index directory
    │   ├── IndexNotFoundError          no index where one was expected
    │   ├── IndexLockedError            another process is writing to the index
    │   ├── IndexMismatchError          opened with another model or dimension than it was built with
    │   ├── IndexReadOnlyError          a write to an index this process cannot write (read-only mount, permissions)
    │   ├── DocumentNotFoundError       `get` named a document (or lines) the index does not hold
    │   ├── SourceNotFoundError         a folder the index does not remember, or none remembered to refresh
    │   ├── IndexCorruptError           the SQLite database cannot be read
    │   └── DiskFullError               the device holding the index ran out of space mid-write
    ├── EmbedderError                   anything that went wrong talking to an embedder
    │   ├── EmbedderUnavailableError    cannot reach the server
    │   ├── ModelNotFoundError          the model is not pulled / unknown to the server
    │   ├── ModelCapabilityError        the model cannot do what was asked (embed / generate)
    │   ├── InputTooLongError           a text is longer than the model's context
    │   └── EmbedderTimeoutError        the server did not answer in time
    ├── StoreError                      anything that went wrong talking to a remote vector store (Milvus)
    │   ├── StoreUnavailableError       cannot reach the server, or it went away mid-run (retried first)
    │   ├── StoreAuthError              the server refused the credentials (SEMSEARCH_MILVUS_TOKEN)
    │   ├── StoreNotFoundError          the collection the index records does not exist (any more)
    │   └── StoreMismatchError          the collection holds vectors of other dimensions, or is not semsearch's
    ├── RerankerError                   anything that went wrong talking to a reranker
    │   ├── RerankerUnavailableError    cannot reach the server (or it kept failing)
    │   ├── RerankerModelNotFoundError  the reranker model is not pulled / unknown to the server
    │   ├── RerankerUnsupportedError    the model or server cannot rerank this way (no generate, no logprobs)
    │   └── RerankerTimeoutError        the server did not answer in time
    └── ExtractError                    one file could not be turned into text (reported as failed)
        └── NoTextError                 the file holds no text we may read: encrypted, scanned (skipped)

Third-party exceptions are wrapped at the boundary (`raise ... from exc`); the CLI maps
SemsearchError to exit code 1 with its message and never shows a traceback.
"""

from __future__ import annotations


class SemsearchError(Exception):
    """Base class: `str(error)` is a complete, user-facing sentence."""


class ConfigError(SemsearchError):
    pass


class MissingDependencyError(ConfigError):
    pass


class InvalidInputError(ConfigError):
    """Caller-supplied data (an `add_texts` item) that cannot be stored as given; nothing was written."""


class FilterError(ConfigError):
    """A `where` expression that does not parse, or a comparison whose value is of a type the key
    never holds (bad usage: the CLI exits 2)."""


class IndexError_(SemsearchError):
    """Index directory problems (named with a trailing underscore to not shadow the builtin)."""


class IndexNotFoundError(IndexError_):
    pass


class IndexLockedError(IndexError_):
    pass


class IndexMismatchError(IndexError_):
    pass


class IndexCorruptError(IndexError_):
    pass


class IndexReadOnlyError(IndexError_):
    pass


class DocumentNotFoundError(IndexError_):
    pass


class SourceNotFoundError(IndexError_):
    """`sources --remove` named a path the index does not remember, or a refresh found none."""


class DiskFullError(IndexError_):
    """A write hit ENOSPC; the transaction was rolled back, so the index is as it was before it."""

    def __init__(self, directory: object):
        super().__init__(f"no space left on the device holding {directory} — free space and run the same "
                         "command again")
        self.directory = directory


class EmbedderError(SemsearchError):
    pass


class EmbedderUnavailableError(EmbedderError):
    pass


class ModelNotFoundError(EmbedderError):
    pass


class ModelCapabilityError(EmbedderError):
    pass


class InputTooLongError(EmbedderError):
    """A text exceeded the model's context; `index` is its position in the batch, if known."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


class EmbedderTimeoutError(EmbedderError):
    pass


class RerankerError(SemsearchError):
    pass


class RerankerUnavailableError(RerankerError):
    pass


class RerankerModelNotFoundError(RerankerError):
    pass


class RerankerUnsupportedError(RerankerError):
    pass


class RerankerTimeoutError(RerankerError):
    pass


class ExtractError(SemsearchError):
    pass


class NoTextError(ExtractError):
    """A well-formed file without readable text (encrypted, image-only); reported and skipped."""


class StoreError(SemsearchError):
    """A remote vector store (Milvus) failed; the ledger (SQLite) is untouched by the failure."""


class StoreUnavailableError(StoreError):
    pass


class StoreAuthError(StoreError):
    pass


class StoreNotFoundError(StoreError):
    pass


class StoreMismatchError(StoreError):
    pass
