"""Shared pytest fixtures for the semsearch test suite."""

import shutil
from pathlib import Path

import pytest

from semsearch import Index
from semsearch.store import Store

from tests.helpers import DATA, HashingEmbedder
from tests.milvus_fixture import killable_milvus_server, milvus_server, milvus_server_with_token  # noqa: F401
from tests.ollama_server import OllamaTestServer
from tests.rag_corpus import build_index


@pytest.fixture(scope="session")
def ollama_server_session():
    """One Ollama-protocol test server for the whole run (starting it is cheap, but not free)."""
    with OllamaTestServer() as server:
        yield server


@pytest.fixture
def ollama_server(ollama_server_session):
    """The session server, reset so each test starts without faults, logs or pulled models."""
    ollama_server_session.reset()
    return ollama_server_session


@pytest.fixture
def ollama_host(ollama_server):
    return ollama_server.url


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A copy of the demo corpus (data/) at tmp_path/data."""
    target = tmp_path / "data"
    shutil.copytree(DATA, target)
    return target


@pytest.fixture
def rag_index(tmp_path, ollama_server):
    """(an open Index over the small RAG corpus of tests/rag_corpus.py, that corpus's folder)."""
    index, corpus = build_index(tmp_path, ollama_server.url)
    yield index, corpus
    index.close()


@pytest.fixture
def embedder() -> HashingEmbedder:
    """A deterministic in-process embedder (no HTTP)."""
    return HashingEmbedder()


@pytest.fixture
def store(tmp_path):
    """A new, empty SQLite store at tmp_path/idx/semsearch.db (its home is tmp_path)."""
    (tmp_path / "idx").mkdir()
    opened = Store(tmp_path / "idx" / "semsearch.db")
    yield opened
    opened.close()


@pytest.fixture
def open_index(home, ollama_server):
    """Open indexes (home/.semsearch unless a path is given) against the test server; all closed
    at the end. `home` is the requesting module's project folder fixture."""
    opened: list[Index] = []

    def factory(path: Path | None = None) -> Index:
        index = Index.open(path or home / ".semsearch", ollama_host=ollama_server.url)
        opened.append(index)
        return index

    yield factory
    for index in opened:
        index.close()
