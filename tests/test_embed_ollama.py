"""Exact Ollama protocol handling of OllamaEmbedder, asserted on the request JSON (httpx.MockTransport),
and the vectors it brings back over real HTTP from the Ollama-protocol test server."""

from __future__ import annotations

import json
import sqlite3

import httpx
import numpy as np
import ollama
import pytest

from semsearch import Index, TextItem, __version__
from semsearch.embed import EmbedderInfo, OllamaEmbedder, normalize, preset_for_model
from semsearch.embed.presets import QWEN3_DEFAULT_TASK
from semsearch.errors import (
    EmbedderError,
    EmbedderTimeoutError,
    EmbedderUnavailableError,
    InputTooLongError,
    ModelCapabilityError,
    ModelNotFoundError,
)

DIMS = 4


def show_body(arch: str = "qwen3", dims: int = DIMS, ctx: int = 32768, capabilities=("embedding",)):
    return {
        "modelfile": "", "parameters": "", "template": "", "details": {"family": arch},
        "model_info": {"general.architecture": arch, f"{arch}.embedding_length": dims,
                       f"{arch}.context_length": ctx},
        "capabilities": list(capabilities),
    }


class Recorder:
    """A MockTransport handler that records request bodies and answers from a script."""

    def __init__(self, embed_status=None, show=None):
        self.embed_requests: list[dict] = []
        self.requests: list[httpx.Request] = []
        self.embed_status = list(embed_status or [])
        self.show = show or show_body()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content or b"{}")
        if request.url.path == "/api/show":
            return httpx.Response(200, json=self.show)
        if request.url.path == "/api/embed":
            self.embed_requests.append(body)
            if self.embed_status:
                status, error = self.embed_status.pop(0)
                return httpx.Response(status, json={"error": error})
            vectors = [[float(len(t)), 1.0, 0.0, 0.0] for t in body["input"]]
            return httpx.Response(200, json={"model": body["model"], "embeddings": vectors})
        return httpx.Response(404, json={"error": "not found"})


def make(recorder: Recorder, **kwargs) -> OllamaEmbedder:
    kwargs.setdefault("backoff", 0.0)
    return OllamaEmbedder(host="http://ollama.test:11434", transport=httpx.MockTransport(recorder), **kwargs)


def test_query_carries_the_exact_qwen3_instruction_and_documents_carry_nothing():
    recorder = Recorder()
    embedder = make(recorder, model="qwen3-embedding:0.6b", num_ctx=1024)
    embedder.embed(["什么是向量检索"], "query")
    embedder.embed(["a passage", "另一段"], "document")
    query_request, document_request = recorder.embed_requests
    assert query_request == {
        "model": "qwen3-embedding:0.6b",
        "input": [f"Instruct: {QWEN3_DEFAULT_TASK}\nQuery:什么是向量检索"],
        "truncate": False,
        "options": {"num_ctx": 1024},
    }
    assert document_request["input"] == ["a passage", "另一段"]
    assert document_request["truncate"] is False


@pytest.mark.parametrize(
    ("model", "query", "document"),
    [
        ("multilingual-e5-small", "query: q", "passage: d"),
        ("nomic-embed-text", "search_query: q", "search_document: d"),
        ("mxbai-embed-large", "Represent this sentence for searching relevant passages: q", "d"),
        ("some-unknown-model", "q", "d"),
    ],
)
def test_presets_by_model_family(model, query, document):
    recorder = Recorder(show=show_body(arch="bert"))
    embedder = make(recorder, model=model)
    embedder.embed(["q"], "query")
    embedder.embed(["d"], "document")
    assert [r["input"][0] for r in recorder.embed_requests] == [query, document]


def test_batches_split_inputs_and_vectors_come_back_normalised_in_order():
    recorder = Recorder()
    embedder = make(recorder, model="qwen3-embedding:0.6b", batch_size=2)
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    vectors = embedder.embed(texts, "document")
    assert [len(r["input"]) for r in recorder.embed_requests] == [2, 2, 1]
    assert vectors.shape == (5, DIMS) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    # Order kept: the mock's first component grows with text length.
    assert list(np.argsort(vectors[:, 0])) == [0, 1, 2, 3, 4]


def test_dimensions_and_keep_alive_are_sent_when_set():
    recorder = Recorder(show=show_body(dims=8))
    embedder = make(recorder, model="qwen3-embedding:0.6b", dimensions=4, keep_alive="10m")
    embedder.embed(["x"], "document")
    assert recorder.embed_requests[0]["dimensions"] == 4
    assert recorder.embed_requests[0]["keep_alive"] == "10m"
    assert embedder.info().dimensions == 4


def test_info_reads_dimensions_and_context_from_show():
    embedder = make(Recorder(show=show_body(arch="bert", dims=384, ctx=512)), model="multilingual-e5-small")
    info = embedder.info()
    assert (info.dimensions, info.context_length, info.preset.name) == (384, 512, "e5")


def test_server_errors_are_retried_then_succeed():
    recorder = Recorder(embed_status=[(500, "boom"), (503, "server busy")])
    vectors = make(recorder, model="qwen3-embedding:0.6b").embed(["x"], "document")
    assert vectors.shape == (1, DIMS)
    assert len(recorder.embed_requests) == 3


def test_not_found_names_the_pull_command():
    recorder = Recorder(embed_status=[(404, 'model "qwen3-embedding:0.6b" not found, try pulling it first')])
    with pytest.raises(ModelNotFoundError, match=r"ollama pull qwen3-embedding:0\.6b"):
        make(recorder, model="qwen3-embedding:0.6b").embed(["x"], "document")
    assert len(recorder.embed_requests) == 1  # a 404 is not retried


def test_generative_model_is_refused_with_advice():
    recorder = Recorder(show=show_body(capabilities=("completion",)))
    with pytest.raises(ModelCapabilityError, match="does not support embeddings"):
        make(recorder, model="llama3.2").embed(["x"], "document")


def test_context_overflow_names_the_offending_text():
    overflow = "the input length exceeds the context length"

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path == "/api/show":
            return httpx.Response(200, json=show_body())
        if any(len(text) > 10 for text in body["input"]):
            return httpx.Response(400, json={"error": overflow})
        return httpx.Response(200, json={"embeddings": [[1.0, 0, 0, 0]] * len(body["input"])})

    embedder = OllamaEmbedder("qwen3-embedding:0.6b", transport=httpx.MockTransport(handler), backoff=0)
    with pytest.raises(InputTooLongError) as raised:
        embedder.embed(["short", "x" * 50, "tiny"], "document")
    assert raised.value.index == 1


def test_unreachable_server_names_host_and_how_to_start_it():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    embedder = OllamaEmbedder("qwen3-embedding:0.6b", host="http://ollama.invalid:4242",
                              transport=httpx.MockTransport(refuse), retries=1, backoff=0)
    with pytest.raises(EmbedderUnavailableError, match=r"http://ollama.invalid:4242.*ollama serve"):
        embedder.embed(["x"], "document")


def test_timeouts_are_reported_as_such():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    embedder = OllamaEmbedder("qwen3-embedding:0.6b", transport=httpx.MockTransport(slow), retries=0, timeout=3)
    with pytest.raises(EmbedderTimeoutError, match="did not answer within 3 s"):
        embedder.embed(["x"], "document")


# -- a query against an existing index: what `semsearch search` sends ---------------------------


def known(model: str = "qwen3-embedding:0.6b") -> EmbedderInfo:
    """What an index records about its embedder, so that a query needs no /api/show."""
    return EmbedderInfo(provider="ollama", model=model, dimensions=DIMS, context_length=32768,
                        preset=preset_for_model(model))


def test_a_query_is_one_exact_embed_request_and_nothing_else(monkeypatch):
    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    recorder = Recorder()
    embedder = make(recorder, model="qwen3-embedding:0.6b", num_ctx=1536, known_info=known())
    vector = embedder.embed(["纸是谁发明的"], "query")
    (request,) = recorder.requests  # no /api/show, no /api/tags: the index already knows the model
    assert (request.method, str(request.url)) == ("POST", "http://ollama.test:11434/api/embed")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"] == f"semsearch/{__version__}"
    assert "authorization" not in request.headers
    assert int(request.headers["content-length"]) == len(request.content)
    assert json.loads(request.content.decode("utf-8")) == {
        "model": "qwen3-embedding:0.6b",
        "input": [f"Instruct: {QWEN3_DEFAULT_TASK}\nQuery:纸是谁发明的"],
        "truncate": False,
        "options": {"num_ctx": 1536},
    }
    assert vector.shape == (1, DIMS) and np.isclose(np.linalg.norm(vector), 1.0)


def test_a_query_carries_the_ollama_api_key_as_the_ollama_client_does(monkeypatch):
    monkeypatch.setenv("OLLAMA_API_KEY", "sekrit")
    recorder = Recorder()
    make(recorder, known_info=known()).embed(["q"], "query")
    assert recorder.requests[0].headers["authorization"] == "Bearer sekrit"


@pytest.mark.parametrize(
    ("status", "error", "raised", "message", "attempts"),
    [
        (404, 'model "qwen3-embedding:0.6b" not found, try pulling it first', ModelNotFoundError,
         r"ollama pull qwen3-embedding:0\.6b", 1),
        (400, "the input length exceeds the context length", InputTooLongError, "longer than the context", 1),
        (501, "this model does not support embeddings", ModelCapabilityError, "does not support embeddings", 1),
        (503, "server busy, please try again.  maximum pending requests exceeded", EmbedderError,
         "answered 503: server busy", 3),
    ],
    ids=["model-missing", "too-long", "not-an-embedding-model", "queue-full"],
)
def test_a_query_maps_each_ollama_error_status(status, error, raised, message, attempts):
    """DESIGN §4's error answers, as a search meets them: one clear error; only a full queue is retried."""
    recorder = Recorder(embed_status=[(status, error)] * 5)
    embedder = make(recorder, retries=2, known_info=known())
    with pytest.raises(raised, match=message):
        embedder.embed(["q"], "query")
    assert len(recorder.embed_requests) == attempts


def test_a_200_that_is_not_an_embed_answer_says_what_the_server_said():
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"error": "llama runner process has terminated"})

    embedder = OllamaEmbedder("qwen3-embedding:0.6b", transport=httpx.MockTransport(answer), known_info=known())
    with pytest.raises(EmbedderError, match="not a valid response .it says: llama runner process has terminated"):
        embedder.embed(["q"], "query")


def test_normalize_is_unit_length_and_keeps_zero_rows():
    out = normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert out.dtype == np.float32


def test_preset_hint_ignores_provider_prefix():
    assert preset_for_model("ollama:qwen3-embedding:4b").name == "qwen3"


# -- over real HTTP: the query path brings back the vectors the indexing path stored ------------

TEA = "Green tea is steamed or pan-fired soon after picking, which keeps its leaves green."


def test_over_real_http_a_reopened_index_embeds_what_indexing_stored(tmp_path, ollama_server):
    path = tmp_path / ".semsearch"
    with Index.open(path, ollama_host=ollama_server.url) as index:
        index.add_texts([TextItem("tea", TEA)])
    with sqlite3.connect(path / "semsearch.db") as conn:
        (blob,) = conn.execute("SELECT vector FROM chunks").fetchone()
    stored = np.frombuffer(blob, dtype="<f4")

    before = len(ollama_server.requests)
    with Index.open(path, create=False, ollama_host=ollama_server.url) as index:  # as `semsearch search` does
        embedder = index.embedder()
        document = embedder.embed([TEA], "document")[0]
        query = embedder.embed(["how is green tea made"], "query")[0]
    assert [path for path, _ in ollama_server.requests[before:]] == ["/api/embed", "/api/embed"]
    np.testing.assert_allclose(document, stored, atol=1e-6)

    # The same query through the `ollama` client itself: the same vector.
    instructed = embedder.preset.format_query("how is green tea made")
    reference = ollama.Client(host=ollama_server.url, timeout=60).embed(
        model="qwen3-embedding:0.6b", input=[instructed], truncate=False).embeddings[0]
    np.testing.assert_allclose(query, normalize(np.asarray([reference]))[0], atol=1e-6)


def test_pulling_a_model_the_registry_lacks_says_so_and_suggests_the_close_name(ollama_server):
    """Ollama answers a pull with 200 and sends the failure inside the progress stream."""
    embedder = OllamaEmbedder("qwen3-embeding:0.6b", host=ollama_server.url)
    with pytest.raises(ModelNotFoundError, match="cannot pull qwen3-embeding:0.6b from Ollama at .*: "
                                                 "pull model manifest: file does not exist — "
                                                 "did you mean `qwen3-embedding:0.6b`"):
        embedder.pull()
    assert "qwen3-embeding:0.6b" not in ollama_server.models
