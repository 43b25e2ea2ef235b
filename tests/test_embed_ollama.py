"""Exact Ollama protocol handling of OllamaEmbedder, asserted on the request JSON (httpx.MockTransport)."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from semsearch.embed import OllamaEmbedder, normalize, preset_for_model
from semsearch.embed.presets import QWEN3_DEFAULT_TASK
from semsearch.errors import (
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
        self.embed_status = list(embed_status or [])
        self.show = show or show_body()

    def __call__(self, request: httpx.Request) -> httpx.Response:
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


def test_normalize_is_unit_length_and_keeps_zero_rows():
    out = normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert out.dtype == np.float32


def test_preset_hint_ignores_provider_prefix():
    assert preset_for_model("ollama:qwen3-embedding:4b").name == "qwen3"
