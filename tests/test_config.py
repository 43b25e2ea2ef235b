"""Index settings: one precedence rule (defaults < recorded < environment < flags) and the meta round trip."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from semsearch import Index
from semsearch.config import DEFAULTS, IndexSettings, resolve
from semsearch.embed import PRESETS, custom_preset
from semsearch.errors import ConfigError, IndexMismatchError
from semsearch.store import DB_NAME, SCHEMA_VERSION, Store
from tests.helpers import HashingEmbedder, copy_v3_index

RECORDED_URL = "http://recorded.example/v1"
ENV_URL = "http://env.example/v1"
FLAG_URL = "http://flag.example/v1"


def openai_settings(**changes) -> IndexSettings:
    """The complete settings an index of an OpenAI-compatible model records, every field off its default."""
    settings = IndexSettings(
        model="openai:text-embedding-3-small", provider="openai", dimensions=256, requested_dimensions=256,
        context_length=8191, num_ctx=1024, preset=custom_preset(PRESETS["qwen3"], task="find the answer"),
        input_type=True, chunk_tokens=300, chunk_overlap=30, index_type="hnsw", base_url=RECORDED_URL,
        code_chunks=False,
    )
    return dataclasses.replace(settings, **changes)


def read_meta(path: Path) -> dict[str, str]:
    store = Store(path / DB_NAME)
    try:
        return store.meta()
    finally:
        store.close()


def recorded_index(path: Path, settings: IndexSettings) -> Path:
    """An index directory whose meta records `settings`, as its first write leaves it."""
    path.mkdir(parents=True)
    store = Store(path / DB_NAME)
    try:
        store.set_meta({"schema_version": SCHEMA_VERSION, **settings.to_meta(), "generation": 0})
    finally:
        store.close()
    return path


# -- precedence ----------------------------------------------------------------------------------

def test_a_flag_beats_the_environment_beats_the_recorded_value_beats_the_default():
    recorded = IndexSettings.from_meta(openai_settings().to_meta())
    env = {"SEMSEARCH_BASE_URL": ENV_URL}
    flags = IndexSettings.from_flags(base_url=FLAG_URL)

    assert resolve(IndexSettings(), None, {}).base_url is None  # default: the provider's own
    assert resolve(IndexSettings(), recorded, {}).base_url == RECORDED_URL
    assert resolve(IndexSettings(), recorded, env).base_url == ENV_URL
    assert resolve(flags, recorded, env).base_url == FLAG_URL
    assert resolve(flags, None, env).base_url == FLAG_URL


def test_a_new_index_takes_flags_over_defaults_and_an_existing_one_keeps_what_it_recorded():
    flags = IndexSettings.from_flags(chunk_tokens=200, index_type="flat", preset="e5", ef_search=64)
    new = resolve(flags, None, {})
    assert (new.model, new.chunk_tokens, new.chunk_overlap, new.index_type) == (DEFAULTS.model, 200, 40, "flat")
    assert new.preset == PRESETS["e5"] and new.ef_search == 64

    existing = resolve(flags, IndexSettings.from_meta(openai_settings().to_meta()), {})
    assert (existing.chunk_tokens, existing.index_type, existing.preset) == (300, "hnsw", openai_settings().preset)
    assert existing.ef_search == 64  # search tuning is per run


def test_a_flag_naming_another_model_or_dimensions_than_recorded_is_a_mismatch():
    recorded = IndexSettings.from_meta(openai_settings().to_meta())
    with pytest.raises(IndexMismatchError, match="built with openai:text-embedding-3-small"):
        resolve(IndexSettings.from_flags(model="openai:text-embedding-3-large"), recorded, {}, where="idx")
    with pytest.raises(IndexMismatchError, match="holds 256-dimension vectors"):
        resolve(IndexSettings.from_flags(dimensions=512), recorded, {}, where="idx")
    same = resolve(IndexSettings.from_flags(model="openai:text-embedding-3-small", dimensions=256), recorded, {})
    assert same.dimensions == 256


def test_unknown_preset_or_index_type_is_refused_before_an_index_directory_is_made(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'qwen4'"):
        Index.open(tmp_path / "a", preset="qwen4")
    with pytest.raises(ConfigError, match="unknown index type 'annoy'"):
        Index.open(tmp_path / "b", index_type="annoy")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_library_reaches_the_server_the_environment_names_over_the_recorded_one(tmp_path, monkeypatch):
    path = recorded_index(tmp_path / "idx", openai_settings())
    monkeypatch.delenv("SEMSEARCH_BASE_URL", raising=False)
    with Index.open(path, create=False) as index:
        assert index.embedder().info().base_url == RECORDED_URL
    monkeypatch.setenv("SEMSEARCH_BASE_URL", ENV_URL)
    with Index.open(path, create=False) as index:
        assert index.embedder().info().base_url == ENV_URL
    with Index.open(path, create=False, base_url=FLAG_URL) as index:
        assert index.embedder().info().base_url == FLAG_URL
        assert index.status().base_url == RECORDED_URL  # what the index records is unchanged


# -- the meta table ------------------------------------------------------------------------------

def test_settings_survive_a_round_trip_through_the_meta_table():
    settings = openai_settings()
    assert IndexSettings.from_meta(settings.to_meta()) == settings
    plain = openai_settings(requested_dimensions=None, input_type=False, base_url=None, model="nomic-embed-text",
                            provider="ollama")
    assert IndexSettings.from_meta(plain.to_meta()) == plain
    # What belongs to one handle is never recorded.
    assert dataclasses.replace(settings, ef_search=300, nprobe=9, timeout=5.0).to_meta() == settings.to_meta()


def test_a_real_index_records_its_settings_and_reads_them_back(tmp_path, ollama_server):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("The lighthouse keeper climbs the stairs every night.\n")
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url, chunk_tokens=120, dimensions=128,
                    query_instruction="find passages about the sea") as index:
        index.index([folder])
    meta = read_meta(tmp_path / "idx")
    settings = IndexSettings.from_meta(meta)
    assert (settings.model, settings.dimensions, settings.requested_dimensions) == ("qwen3-embedding:0.6b", 128, 128)
    assert (settings.chunk_tokens, settings.chunk_overlap, settings.index_type) == (120, 30, "auto")
    assert settings.preset.task == "find passages about the sea" and settings.num_ctx == 1024
    assert settings.to_meta() == {key: meta[key] for key in settings.to_meta()}


def test_an_index_written_by_an_older_version_without_newer_keys_still_reads(tmp_path, ollama_server):
    home = tmp_path / "home"
    copy_v3_index(home)
    newer = ("base_url", "dimensions_requested", "input_type", "index_type")
    with sqlite3.connect(home / ".semsearch" / DB_NAME) as conn:
        conn.executemany("DELETE FROM meta WHERE key = ?", [(key,) for key in newer])

    settings = IndexSettings.from_meta(read_meta(home / ".semsearch"))
    assert (settings.base_url, settings.requested_dimensions, settings.input_type, settings.index_type) == (
        None, None, False, "flat")
    with Index.open(home / ".semsearch", ollama_host=ollama_server.url) as index:
        status = index.status()
        assert (status.model, status.dimensions, status.index_type, status.chunk_tokens) == (
            "qwen3-embedding:0.6b", 384, "flat", 400)
        assert index.search("opening hours", k=1)[0].path == "faq-1"
        embeds = [body for path, body in ollama_server.requests if path == "/api/embed"]
        assert "dimensions" not in embeds[-1] and embeds[-1]["options"] == {"num_ctx": 1024}


def test_a_custom_embedder_is_recorded_under_its_own_provider_and_reopens(tmp_path):
    with Index.open(tmp_path / "idx", embedder=HashingEmbedder()) as index:
        index.add_texts([{"id": "t1", "text": "tide tables for the harbour"}])
        status = index.status()
        assert (status.provider, status.model, status.dimensions) == ("test", "hashed-words", 256)
    with Index.open(tmp_path / "idx", embedder=HashingEmbedder(), create=False) as index:
        assert index.search("harbour tide", k=1)[0].path == "t1"
    with pytest.raises(IndexMismatchError, match="built with hashed-words \\(256 dimensions\\)"):
        Index.open(tmp_path / "idx", embedder=HashingEmbedder(dimensions=64), create=False)
