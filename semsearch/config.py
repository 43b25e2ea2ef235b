"""Index settings: one frozen type, read from and written to the index's meta table in one place.

One precedence rule decides every setting, lowest to highest:

    defaults  <  what the index records  <  environment  <  flags (CLI options, `Index.open` keywords)

- defaults: `DEFAULTS` below (the model `qwen3-embedding:0.6b`, 400-token chunks with 40 overlap,
  index type `auto`, code chunks when the `code` extra is installed); the preset comes from the
  model name and the OpenAI address from OPENAI_BASE_URL, else api.openai.com, when nothing
  above names them.
- recorded: the index's meta table (`IndexSettings.from_meta`); an index written by an older
  version lacks some keys and reads them as that version behaved (e.g. index type `flat`).
- environment: SEMSEARCH_BASE_URL (the OpenAI-compatible server) and OLLAMA_HOST.
- flags: whatever the caller passed; None means "not given".

What fixes the vector space and the chunking (model, dimensions, preset and query instruction,
input type, chunk budget and overlap, num_ctx, index type) is settled by this rule once, when
the index is created, and recorded. Afterwards the recorded value stands: a flag naming another
model or other dimensions is an IndexMismatchError that names both, the other ones apply to a
new index only (convert the index type with `rebuild`). What may change from run to run (the
server's base URL, Ollama hosts, timeout, keep-alive, search tuning) follows the rule every
time; of these only the base URL is recorded (how to reach the same vector space again).
Code chunks (`code_chunks`) are recorded and may also change: the next indexing run then chunks
the source files the code chunker handles again, and only those (`Index.index`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semsearch.embed import PRESETS, Preset, custom_preset, preset_for_model, provider_of
from semsearch.embed.presets import DEFAULT_MODEL
from semsearch.errors import ConfigError, IndexMismatchError
from semsearch.options import INDEX_TYPES

if TYPE_CHECKING:
    from semsearch.embed.base import EmbedderInfo

BASE_URL_ENV = "SEMSEARCH_BASE_URL"
# The meta key recording the code chunker an index's source files were chunked with ("" = none).
CODE_CHUNKER_KEY = "code_chunker"
OLLAMA_HOST_ENV = "OLLAMA_HOST"

# The meta keys of the store an index searches (its URL, never a token) and of this ledger's
# prefix for chunk ids in a store several ledgers may share.
STORE_KEY = "store"
STORE_LEDGER_KEY = "store_ledger"
LOCAL_STORE = "local"

# Settings that may differ from run to run; everything else is fixed when the index is created.
_PER_RUN = ("base_url", "host", "timeout", "keep_alive", "ef_search", "nprobe", "code_chunks")


@dataclass(frozen=True)
class IndexSettings:
    """The settings of one index handle; a field left None is "not set" at this layer.

    `model` is the name as a user gives it (`qwen3-embedding:0.6b`, `openai:NAME`, `local:NAME`);
    `provider` is the one that made the index's vectors (None: the one the model name says; a
    custom embedder may name its own).
    `dimensions` is the vectors' size; `requested_dimensions` what is asked of the server
    (Matryoshka), None for the model's own size. `preset` None leaves the format to the model's
    name (or, with `input_type`, to the server). `host`, `timeout`, `keep_alive`, `ef_search` and
    `nprobe` belong to this handle only and are never recorded; `code_chunks` is recorded (as
    the code chunker's version) but may change from run to run.
    """

    model: str | None = None
    provider: str | None = None
    dimensions: int | None = None
    requested_dimensions: int | None = None
    context_length: int | None = None
    num_ctx: int | None = None
    preset: Preset | None = None
    input_type: bool | None = None
    chunk_tokens: int | None = None
    chunk_overlap: int | None = None
    index_type: str | None = None
    base_url: str | None = None
    host: tuple[str, ...] | None = None
    timeout: float | None = None
    keep_alive: str | float | None = None
    ef_search: int | None = None
    nprobe: int | None = None
    code_chunks: bool | None = None  # source files cut at function/class boundaries (the `code` extra)
    store: str | None = None  # where vectors and keyword terms are searched: "local" or a Milvus URL (no token)

    # -- the layers ----------------------------------------------------------------------------

    @classmethod
    def from_flags(
        cls,
        *,
        model: str | None = None,
        preset: str | None = None,
        query_instruction: str | None = None,
        dimensions: int | None = None,
        input_type: bool | None = None,
        chunk_tokens: int | None = None,
        chunk_overlap: int | None = None,
        index_type: str | None = None,
        base_url: str | None = None,
        ollama_host: str | Sequence[str] | None = None,
        timeout: float | None = None,
        keep_alive: str | float | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
        code_chunks: bool | None = None,
        store: str | None = None,
    ) -> IndexSettings:
        """The flags layer from `Index.open`'s keywords (and the CLI's options), checked.

        `preset` names one of `semsearch.embed.PRESETS`; `query_instruction` replaces its task
        (instruction-style models) or its whole query prefix (others). Without `preset`, the base
        is the one `model` (else the default model) suggests. Raises
        ConfigError for an unknown preset or index type.
        """
        if preset is not None and preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
        if index_type is not None and index_type not in INDEX_TYPES:
            raise ConfigError(f"unknown index type {index_type!r}: choose one of {', '.join(INDEX_TYPES)}")
        chosen = None
        if preset is not None or query_instruction is not None:
            chosen = PRESETS[preset] if preset is not None else preset_for_model(model or DEFAULT_MODEL)
            if query_instruction is not None:
                chosen = (custom_preset(chosen, task=query_instruction) if "{task}" in chosen.query_template
                          else custom_preset(chosen, query_template=query_instruction + "{text}"))
        return cls(model=model, dimensions=dimensions, requested_dimensions=dimensions, preset=chosen,
                   input_type=input_type, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
                   index_type=index_type, base_url=base_url or None, host=_hosts(ollama_host), timeout=timeout,
                   keep_alive=keep_alive, ef_search=ef_search, nprobe=nprobe, code_chunks=code_chunks,
                   store=_store_url(store))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> IndexSettings:
        """The environment layer: SEMSEARCH_BASE_URL and OLLAMA_HOST."""
        return cls(base_url=environ.get(BASE_URL_ENV) or None, host=_hosts(environ.get(OLLAMA_HOST_ENV)))

    @classmethod
    def from_meta(cls, meta: Mapping[str, str]) -> IndexSettings | None:
        """What an index records (its meta table, values as text); None before its first write.

        Keys an older version did not write read as that version behaved: no base URL, no
        requested dimensions, no input type, a flat index, no code chunker (None: text chunks).
        """
        if not is_recorded(meta):
            return None
        provider = meta.get("provider") or "ollama"
        return cls(
            model=_qualified(provider, meta["model"]),
            provider=provider,
            dimensions=_int(meta.get("dimensions")),
            requested_dimensions=_int(meta.get("dimensions_requested")),
            context_length=_int(meta.get("context_length")),
            num_ctx=_int(meta.get("num_ctx")),
            preset=Preset(meta.get("preset", "none"), meta.get("query_template", "{text}"),
                          meta.get("document_template", "{text}"), meta.get("task", "")),
            input_type=meta.get("input_type") == "1",
            chunk_tokens=_int(meta.get("chunk_tokens")),
            chunk_overlap=_int(meta.get("chunk_overlap")),
            index_type=meta.get("index_type") or "flat",
            base_url=meta.get("base_url") or None,
            code_chunks=bool(meta[CODE_CHUNKER_KEY]) if CODE_CHUNKER_KEY in meta else None,
            store=meta.get(STORE_KEY) or None,  # None: the local store, as before stores were chosen
        )

    def to_meta(self) -> dict[str, str]:
        """The recorded fields as meta values (text); the per-handle fields are not recorded."""
        provider, model = self.identity()
        preset = self.preset or Preset("none")
        return {
            "provider": provider,
            "model": model,
            "dimensions": _text(self.dimensions),
            "context_length": _text(self.context_length),
            "num_ctx": _text(self.num_ctx),
            "preset": preset.name,
            "query_template": preset.query_template,
            "document_template": preset.document_template,
            "task": preset.task,
            "chunk_tokens": _text(self.chunk_tokens),
            "chunk_overlap": _text(self.chunk_overlap),
            "index_type": self.index_type or "auto",
            "base_url": self.base_url or "",
            "dimensions_requested": _text(self.requested_dimensions),
            "input_type": "1" if self.input_type else "",
            **({CODE_CHUNKER_KEY: self.code_chunker} if self.code_chunks is not None else {}),
            **({STORE_KEY: self.store} if self.store is not None else {}),
        }

    def over(self, lower: IndexSettings) -> IndexSettings:
        """These settings laid over `lower`: every field set here wins, the others come from `lower`."""
        given = {field.name: value for field in dataclasses.fields(self)
                 if (value := getattr(self, field.name)) is not None}
        return dataclasses.replace(lower, **given)

    def per_run(self) -> IndexSettings:
        """Only the fields that may change after the index is created."""
        return IndexSettings(**{name: getattr(self, name) for name in _PER_RUN})

    # -- derived -------------------------------------------------------------------------------

    @property
    def code_chunker(self) -> str:
        """The code chunker these settings chunk with, as recorded: its version, or "" for none."""
        from semsearch.code_chunks import CHUNKER_VERSION

        return CHUNKER_VERSION if self.code_chunks else ""

    def identity(self) -> tuple[str, str]:
        """(provider, model name without its provider prefix), as the index records them."""
        model = self.model or DEFAULT_MODEL
        if self.provider is None:
            return provider_of(model)
        return self.provider, model.removeprefix(self.provider + ":")

    @property
    def recorded_info(self) -> EmbedderInfo:
        """The embedder facts a recorded index already knows (no server round trip needed)."""
        from semsearch.embed.base import EmbedderInfo  # numpy: not for commands that never embed

        provider, model = self.identity()
        return EmbedderInfo(provider, model, self.dimensions or 0, self.context_length or 0,
                            self.preset or Preset("none"), base_url=self.base_url or "",
                            requested_dimensions=self.requested_dimensions, input_type=bool(self.input_type))

    def embedder_options(self) -> dict[str, Any]:
        """Keyword options for `semsearch.embed.make_embedder` (each provider takes its own)."""
        return {"host": list(self.host) if self.host else None, "base_url": self.base_url, "timeout": self.timeout,
                "keep_alive": self.keep_alive, "dimensions": self.requested_dimensions,
                "input_type": True if self.input_type else None, "preset": self.preset, "num_ctx": self.num_ctx}

    def for_embedder(self, info: EmbedderInfo) -> IndexSettings:
        """The settings a new index records once its embedder's facts are known.

        Our token count is an estimate: chunks stay well under the model's context and the
        server gets about twice the budget as num_ctx (DESIGN §4).
        """
        budget = max(16, min(self.chunk_tokens or DEFAULTS.chunk_tokens, info.context_length // 2))
        overlap = self.chunk_overlap if self.chunk_overlap is not None else DEFAULTS.chunk_overlap
        return dataclasses.replace(
            self,
            model=_qualified(info.provider, info.model),
            provider=info.provider,
            dimensions=info.dimensions,
            requested_dimensions=info.requested_dimensions,
            context_length=info.context_length,
            num_ctx=min(info.context_length, max(1024, 2 * budget)),
            preset=info.preset,
            input_type=info.input_type,
            chunk_tokens=budget,
            chunk_overlap=min(overlap, budget // 4),
            index_type=self.index_type or DEFAULTS.index_type,
            base_url=info.base_url or None,
            code_chunks=self.code_chunks if self.code_chunks is not None else _code_extra_installed(),
        )


DEFAULTS = IndexSettings(model=DEFAULT_MODEL, chunk_tokens=400, chunk_overlap=40, index_type="auto")


def resolve(flags: IndexSettings, recorded: IndexSettings | None, environ: Mapping[str, str] | None = None, *,
            where: Path | str = "") -> IndexSettings:
    """The settings of a handle: defaults < `recorded` < environment < `flags` (see the module docstring).

    For an existing index (`recorded` given), only the per-run fields of the environment and the
    flags apply; a flag naming another model or other dimensions raises IndexMismatchError
    naming both and the index at `where`.
    """
    env = IndexSettings.from_env(os.environ if environ is None else environ)
    if recorded is None:
        return flags.over(env.over(DEFAULTS))
    check_model(recorded, flags.model, flags.dimensions, where)
    check_store(recorded, flags.store, where)
    return flags.per_run().over(env.per_run().over(recorded.over(DEFAULTS)))


def check_model(recorded: IndexSettings, model: str | None, dimensions: int | None, where: Path | str) -> None:
    """Raise IndexMismatchError unless `model` and `dimensions` (None: not given) are the recorded ones."""
    if model is not None and not same_model(model, recorded.model or DEFAULT_MODEL):
        raise IndexMismatchError(
            f"the index at {where} was built with {recorded.model} ({recorded.dimensions} dimensions), "
            f"not {model} — search it with -m {recorded.model}, or use another --index for {model}, "
            "or delete the index directory to rebuild it with the new model"
        )
    if dimensions is not None and dimensions != recorded.dimensions:
        raise IndexMismatchError(
            f"the index at {where} holds {recorded.dimensions}-dimension vectors of {recorded.model}, "
            f"not {dimensions} — leave out --dimensions to use it, or use another --index for "
            f"{dimensions} dimensions"
        )


def check_store(recorded: IndexSettings, store: str | None, where: Path | str) -> None:
    """Raise IndexMismatchError unless `store` (None: not given) is the store the index records."""
    if store is not None and store != (recorded.store or LOCAL_STORE):
        raise IndexMismatchError(
            f"the index at {where} uses the store {recorded.store or LOCAL_STORE}, not {store} — leave out "
            f"--store to use it, or move the index with `semsearch rebuild --store {store}`"
        )


def store_ledger_meta(ledger: str) -> dict[str, str]:
    """The meta value that records this ledger's chunk-id prefix in a shared store."""
    return {STORE_LEDGER_KEY: ledger}


def check_embedder(recorded: IndexSettings, info: EmbedderInfo, where: Path | str) -> None:
    """Raise IndexMismatchError unless an embedder passed in makes the recorded vector space."""
    recorded_model = recorded.identity()[1]
    if not same_model(info.model, recorded_model) or info.dimensions != recorded.dimensions:
        raise IndexMismatchError(
            f"the index at {where} was built with {recorded_model} ({recorded.dimensions} dimensions), "
            f"not {info.model} ({info.dimensions} dimensions) — use the model the index was built with, "
            "or another --index for the new model"
        )


def same_model(a: str, b: str) -> bool:
    """Whether two model names mean the same model (an Ollama name without a tag is `:latest`)."""
    return _model_key(a) == _model_key(b)


@dataclass(frozen=True)
class IndexState:
    """The bookkeeping an index records besides its settings, as `status` and indexing read it."""

    schema_version: int
    generation: int
    faiss_generation: int
    faiss_vectors: int
    faiss_type: str | None
    faiss_bytes: int | None = None  # the size of vectors.faiss when stamped; None: never stamped
    faiss_fingerprint: str = ""  # "" for a file stamped before fingerprints existed
    code_chunker: str = ""  # the code chunker the source files were chunked with ("" = none)
    keyword_analysis: str = ""  # the keyword analysis of the FTS table ("" = an older version's)
    store_ledger: str = ""  # this ledger's chunk-id prefix in a shared store ("" = none made yet)

    @classmethod
    def from_meta(cls, meta: Mapping[str, str], schema_version: int = 0) -> IndexState:
        """Read from the meta table; `schema_version` is assumed when none is recorded yet."""
        return cls(
            schema_version=_int(meta.get("schema_version")) or schema_version,
            generation=_int(meta.get("generation")) or 0,
            faiss_generation=int(meta.get("faiss_generation", -1)),
            faiss_vectors=_int(meta.get("faiss_vectors")) or 0,
            faiss_type=meta.get("faiss_type") or None,
            faiss_bytes=_int(meta.get("faiss_bytes")),
            faiss_fingerprint=meta.get("faiss_fingerprint", ""),
            code_chunker=meta.get(CODE_CHUNKER_KEY, ""),
            keyword_analysis=meta.get("keyword_analysis", ""),
            store_ledger=meta.get(STORE_LEDGER_KEY, ""),
        )

    @property
    def faiss_stamped(self) -> bool:
        """Whether vectors.faiss was ever saved and stamped."""
        return self.faiss_generation >= 0


def is_recorded(meta: Mapping[str, str]) -> bool:
    """Whether an index has recorded its settings (something was ever written)."""
    return "model" in meta


def _store_url(url: str | None) -> str | None:
    if url is None:
        return None
    from semsearch.stores import parse_store_url

    return parse_store_url(url).url


def _code_extra_installed() -> bool:
    from semsearch.code_chunks import available

    return available()


def _model_key(model: str) -> tuple[str, str]:
    provider, name = provider_of(model)
    return provider, name if ":" in name or provider != "ollama" else name + ":latest"


def _qualified(provider: str, model: str) -> str:
    return model if provider == "ollama" else f"{provider}:{model}"


def _hosts(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    items = (value,) if isinstance(value, str) else tuple(value or ())
    return tuple(item for item in items if item) or None


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def _text(value: int | None) -> str:
    return "" if value is None else str(value)
