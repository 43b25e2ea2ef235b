"""--dimensions (Matryoshka vectors, server-side or cut on our side) and --keep-alive, end to end."""

from __future__ import annotations

import functools
import json
import sqlite3

import faiss
import numpy as np
import pytest

from semsearch import Index, IndexMismatchError

from tests import helpers
from tests.ollama_server import OllamaTestServer
from tests.rag_corpus import write_corpus


run = functools.partial(helpers.run, check=False, timeout=120)  # these tests read the exit code themselves


def embed_bodies(server):
    return [body for path, body in server.requests if path == "/api/embed"]


def stored_vector_sizes(index_dir) -> set[int]:
    with sqlite3.connect(index_dir / "semsearch.db") as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT length(vector) FROM chunks")}


def test_index_with_128_dimensions_end_to_end(tmp_path, ollama_server):
    write_corpus(tmp_path / "corpus")
    result = run(["index", "corpus", "--dimensions", "128", "--keep-alive", "10m", "--json"], cwd=tmp_path,
                 host=ollama_server.url)
    assert result.returncode == 0, result.stderr
    bodies = embed_bodies(ollama_server)
    assert bodies and all(b["dimensions"] == 128 and b["keep_alive"] == "10m" for b in bodies)

    index_dir = tmp_path / ".semsearch"
    assert stored_vector_sizes(index_dir) == {128 * 4}
    assert faiss.read_index(str(index_dir / "vectors.faiss")).d == 128
    status = json.loads(run(["status", "--json"], cwd=tmp_path, host=ollama_server.url).stdout)
    assert status["dimensions"] == 128

    ollama_server.reset()
    found = run(["search", "how to fix a flat bicycle tire", "-k", "1", "--keep-alive", "300", "--json"],
                cwd=tmp_path, host=ollama_server.url)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)[0]["path"].endswith(("flat-tire.md", "flat-tire-copy.md"))
    (query_body,) = embed_bodies(ollama_server)
    assert query_body["dimensions"] == 128 and query_body["keep_alive"] == 300


def test_server_that_ignores_dimensions_gets_vectors_cut_on_our_side(tmp_path):
    # Ollama before 0.11.11 ignores the `dimensions` field and answers with the full 384 numbers.
    with OllamaTestServer(version="0.11.0") as old_server:
        corpus = write_corpus(tmp_path / "corpus")
        with Index.open(tmp_path / "idx", ollama_host=old_server.url, dimensions=128) as index:
            index.index([corpus])
            hits = index.search("用冰糖炒糖色", k=1)
            assert index.status().dimensions == 128
        assert hits[0].path.endswith("hongshao-rou.md")
        assert all(body["dimensions"] == 128 for body in embed_bodies(old_server))
        with sqlite3.connect(tmp_path / "idx" / "semsearch.db") as conn:
            blob = conn.execute("SELECT vector FROM chunks LIMIT 1").fetchone()[0]
        vector = np.frombuffer(blob, dtype="<f4")
        assert vector.shape == (128,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_reopening_with_other_dimensions_is_refused(tmp_path, ollama_server):
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url, dimensions=64) as index:
        index.add_texts([{"id": "a", "text": "Green tea is pan-fired in China."}])
    with pytest.raises(IndexMismatchError, match="64-dimension"):
        Index.open(tmp_path / "idx", ollama_host=ollama_server.url, dimensions=256)
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        assert index.search("tea from China", k=1)[0].path == "a"
    assert embed_bodies(ollama_server)[-1]["dimensions"] == 64


def test_bad_keep_alive_is_a_usage_error(tmp_path, ollama_server):
    result = run(["search", "tea", "--keep-alive", "forever"], cwd=tmp_path, host=ollama_server.url)
    assert result.returncode == 2
    assert "not a duration" in result.stderr and "Traceback" not in result.stderr


def test_openai_server_that_ignores_dimensions_gets_vectors_cut_on_our_side():
    import httpx

    from semsearch.embed.openai import OpenAIEmbedder

    def handler(request: httpx.Request) -> httpx.Response:  # answers full-size vectors whatever is asked
        texts = json.loads(request.content)["input"]
        data = [{"index": i, "embedding": [3.0, 4.0, 12.0, 99.0]} for i in range(len(texts))]
        return httpx.Response(200, json={"data": data})

    embedder = OpenAIEmbedder("text-embedding-3-small", base_url="http://server/v1", dimensions=2,
                              transport=httpx.MockTransport(handler))
    assert embedder.info().dimensions == 2
    np.testing.assert_allclose(embedder.embed(["a", "b"], "query"), [[0.6, 0.8]] * 2, atol=1e-6)
