"""Shared pytest fixtures for the semsearch test suite."""

import pytest

from tests.ollama_server import OllamaTestServer


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
