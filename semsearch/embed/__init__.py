"""Embedders: the protocol, presets, and providers chosen by a model-name prefix (`ollama:` default)."""

from __future__ import annotations

from semsearch.embed.base import BaseEmbedder, Embedder, EmbedderInfo, normalize
from semsearch.embed.presets import DEFAULT_MODEL, PRESETS, Preset, custom_preset, preset_for_model
from semsearch.errors import ConfigError

__all__ = [
    "DEFAULT_MODEL",
    "PRESETS",
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
]

PROVIDERS = ("ollama",)


def __getattr__(name: str):
    # The Ollama provider imports the `ollama` client (pydantic, httpx): load it when first used.
    if name in ("OllamaEmbedder", "resolve_host"):
        from semsearch.embed import ollama

        return getattr(ollama, name)
    raise AttributeError(f"module 'semsearch.embed' has no attribute {name!r}")


def provider_of(model: str) -> tuple[str, str]:
    """Split `provider:model` into its parts; a name without a known prefix is an Ollama model."""
    prefix, _, rest = model.partition(":")
    if rest and prefix in PROVIDERS:
        return prefix, rest
    return "ollama", model


def make_embedder(model: str, **options) -> BaseEmbedder:
    """The embedder for a model name such as `qwen3-embedding:0.6b` or `ollama:nomic-embed-text`.

    Options are passed to the provider (host, preset, num_ctx, dimensions, keep_alive, timeout, ...).
    """
    provider, name = provider_of(model)
    if provider == "ollama":
        from semsearch.embed.ollama import OllamaEmbedder

        return OllamaEmbedder(name, **options)
    raise ConfigError(f"unknown embedding provider {provider!r} in {model!r}")  # pragma: no cover
