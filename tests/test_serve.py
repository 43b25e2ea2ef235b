"""`semsearch serve` over real HTTP: a subprocess on an ephemeral 127.0.0.1 port, the test Ollama behind it."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from semsearch.rerank.ollama import DEFAULT_RERANK_MODEL

from tests.ollama_server import ModelSpec
from tests.rag_corpus import build_index

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def start_server(args: list[str], env_extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("SEMSEARCH_INDEX", "SEMSEARCH_TOKEN")}
    env.update(env_extra or {})
    process = subprocess.Popen([sys.executable, "-m", "semsearch", "serve", "--port", "0", *args],
                               stderr=subprocess.PIPE, text=True, env=env)
    line = process.stderr.readline()  # "semsearch serving DIR on URL (OpenAPI at URL/docs)"
    if " on http" not in line:
        process.kill()
        raise AssertionError(f"serve did not start: {line}{process.stderr.read()}")
    return process, line.split(" on ", 1)[1].split()[0]


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def served(tmp_path_factory, ollama_server_session):
    ollama_server_session.reset()
    index, _ = build_index(tmp_path_factory.mktemp("serve"), ollama_server_session.url)
    index.close()
    process, url = start_server(["-i", str(index.path), "--ollama-host", ollama_server_session.url],
                                {"SEMSEARCH_TOKEN": TOKEN})
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
        yield client, url, index.path
    stop_server(process)


def listening_sockets() -> set[tuple[str, int]]:
    """(address, port) of every IPv4 TCP socket in LISTEN state, from the kernel's table."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, port = fields[1].split(":")
        if fields[3] == "0A":
            octets = bytes.fromhex(address)[::-1]
            found.add((".".join(str(b) for b in octets), int(port, 16)))
    return found


def test_listens_on_loopback_by_default(served):
    _, url, _ = served
    host, port = urlsplit(url).hostname, urlsplit(url).port
    assert host == "127.0.0.1"
    if Path("/proc/net/tcp").exists():
        listening = listening_sockets()
        assert ("127.0.0.1", port) in listening and ("0.0.0.0", port) not in listening


def test_every_request_needs_the_token(served):
    _, url, _ = served
    for method, path in (("GET", "/status"), ("POST", "/search"), ("POST", "/context"), ("GET", "/openapi.json"),
                         ("POST", "/texts")):
        bare = httpx.request(method, url + path, json={"query": "tea"})
        assert bare.status_code == 401, path
        assert bare.headers["www-authenticate"] == "Bearer"
        wrong = httpx.request(method, url + path, json={"query": "tea"}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401, path


def test_search_context_and_status_answer(served):
    client, _, index_path = served
    status = client.get("/status").json()
    assert status["path"] == str(Path(index_path).resolve()) and status["documents"] == 4 and status["chunks"] > 10

    hits = client.post("/search", json={"query": "how to fix a flat bicycle tire", "k": 3}).json()["hits"]
    assert len(hits) == 3 and "flat-tire" in hits[0]["path"]
    assert {"rank", "score", "path", "line_start", "line_end", "text", "chunk_id"} <= set(hits[0])

    context = client.post("/context", json={"query": "红烧肉怎么炒糖色", "max_tokens": 120}).json()
    assert context["tokens"] <= 120 and context["text"].startswith("[1] ")
    assert context["sources"][0]["path"].endswith("hongshao-rou.md")
    assert "糖色" in context["text"]

    reranked = client.post("/search", json={"query": "why is Japanese green tea grassy", "k": 2,
                                            "rerank": True}).json()["hits"]
    assert all(hit["rerank_score"] is not None for hit in reranked) and "green-tea" in reranked[0]["path"]

    schema = client.get("/openapi.json").json()
    assert {"/search", "/context", "/status", "/texts", "/texts/delete"} <= set(schema["paths"])


def test_ten_megabyte_body_gets_413(served):
    client, _, _ = served
    response = client.post("/texts", content=b"x" * 10_000_000, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_bounds_and_bad_requests(served):
    client, _, _ = served
    assert client.post("/search", json={"query": "tea", "k": 1000}).status_code == 422
    assert client.post("/search", json={"query": "tea", "k": 0}).status_code == 422
    assert client.post("/context", json={"query": "tea", "max_tokens": 10_000_000}).status_code == 422
    assert client.post("/search", json={"query": "tea", "mode": "psychic"}).status_code == 422
    blank = client.post("/search", json={"query": "   "})
    assert blank.status_code == 422 and "empty" in blank.json()["detail"][0]["msg"]


def test_texts_are_added_searched_and_deleted(served):
    client, _, _ = served
    report = client.post("/texts", json={"texts": [
        {"id": "kb/42", "text": "The office coffee machine is descaled every Friday with citric acid.",
         "metadata": {"team": "facilities"}}]}).json()
    assert report["files_added"] == 1 and report["chunks_embedded"] == 1
    hits = client.post("/search", json={"query": "descaling the coffee machine", "k": 1,
                                        "where": {"team": "facilities"}}).json()["hits"]
    assert hits[0]["path"] == "kb/42" and hits[0]["metadata"] == {"team": "facilities"}
    assert client.post("/texts/delete", json={"ids": ["kb/42", "never-added"]}).json() == {"deleted": 1}
    after = client.post("/search", json={"query": "descaling the coffee machine", "k": 1,
                                         "where": {"team": "facilities"}}).json()["hits"]
    assert after == []


def test_readers_are_served_while_texts_are_indexed(served, ollama_server_session):
    client, _, _ = served
    ollama_server_session.delay_per_text = 0.04  # ~1 s of embedding for the write below
    texts = [{"id": f"bulk/{i}", "text": f"Maintenance note {i}: check the brake pads of bike number {i}."}
             for i in range(24)]
    outcome: dict[str, object] = {}

    def write() -> None:
        outcome["response"] = client.post("/texts", json={"texts": texts})

    writer = threading.Thread(target=write)
    try:
        writer.start()
        statuses = []
        while writer.is_alive():
            statuses.append(client.post("/search", json={"query": "green tea", "k": 2}).status_code)
            statuses.append(client.get("/status").status_code)
            time.sleep(0.02)
        writer.join()
    finally:
        ollama_server_session.delay_per_text = 0.0
    assert outcome["response"].status_code == 200, outcome["response"].text
    assert outcome["response"].json()["files_added"] == 24
    assert len(statuses) >= 4 and set(statuses) == {200}  # answered while the write was running
    hits = client.post("/search", json={"query": "brake pads of bike number 7", "k": 24}).json()["hits"]
    assert sum(hit["path"].startswith("bulk/") for hit in hits) == 24


def test_binding_elsewhere_is_explicit(tmp_path, ollama_server):
    process, url = start_server(["-i", str(tmp_path / "idx"), "--host", "127.0.0.2", "--ollama-host", ollama_server.url])
    try:
        assert urlsplit(url).hostname == "127.0.0.2"
        assert httpx.get(url + "/status").json()["documents"] == 0  # no token configured: open
    finally:
        stop_server(process)


# -- the contract: 4xx for bad input, strict types, the schema, the reranker by name ------------

def post_raw(connection: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, dict]:
    connection.request("POST", path, body=body, headers={**AUTH, "Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


BAD_BODIES = [
    ("/search", rb'{"query": "\ud800"}'),
    ("/context", rb'{"query": "green tea \udfff"}'),
    ("/search", rb'{"query": "tea", "k": NaN}'),
    ("/search", rb'{"query": "tea", "k": Infinity}'),
    ("/search", rb'{"query": "tea", "where": {"\ud800": 1}}'),
    ("/search", rb'{"query": "tea", "where": {"v": NaN}}'),
    ("/texts", rb'{"texts": [{"id": "\ud800", "text": "a lone surrogate for an id"}]}'),
    ("/texts", rb'{"texts": [{"id": "nan", "text": "odd metadata", "metadata": {"v": NaN}}]}'),
    ("/texts/delete", rb'{"ids": ["\udc00"]}'),
]


@pytest.mark.parametrize(("path", "body"), BAD_BODIES, ids=[body.decode() for _, body in BAD_BODIES])
def test_unencodable_input_gets_422_and_the_connection_stays_open(served, path, body):
    _, url, _ = served
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        status, payload = post_raw(connection, path, body)
        assert status == 422, payload
        assert payload["detail"]
        kept = connection.sock
        assert kept is not None  # the server did not close the connection after answering
        status, payload = post_raw(connection, "/search", b'{"query": "green tea", "k": 1}')
        assert status == 200 and payload["hits"]
        assert connection.sock is kept  # the same connection carried the follow-up
    finally:
        connection.close()


@pytest.mark.parametrize("body", [
    {"query": "tea", "k": "5"},
    {"query": "tea", "k": 5.5},
    {"query": "tea", "k": True},
    {"query": "tea", "rerank": 0},
    {"query": "tea", "rerank_modle": "x"},
], ids=lambda body: json.dumps(body))
def test_values_of_the_wrong_type_are_refused_not_coerced(served, body):
    client, _, _ = served
    response = client.post("/search", json=body)
    assert response.status_code == 422, response.text


def test_text_metadata_json_cannot_hold_gets_422_and_filters_keep_working(served):
    client, _, _ = served
    response = client.post("/texts", content=b'{"texts": [{"id": "m/1", "text": "Kettles scale up in hard water.", '
                                              b'"metadata": {"team": "facilities", "score": NaN}}]}',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "JSON cannot hold" in json.dumps(response.json()["detail"])
    hits = client.post("/search", json={"query": "green tea", "k": 2, "where": {"team": "facilities"}})
    assert hits.status_code == 200 and hits.json()["hits"] == []
    assert client.get("/status").json()["in_sync"]


def test_an_id_sent_twice_keeps_its_last_text_and_the_index_in_sync(served):
    client, _, _ = served
    before = client.get("/status").json()
    report = client.post("/texts", json={"texts": [
        {"id": "twice", "text": "The boiler is serviced every October."},
        {"id": "twice", "text": "The heat pump filter is cleaned every March."},
    ]}).json()
    assert report["files_added"] == 1
    status = client.get("/status").json()
    assert status["in_sync"] and status["chunks"] == status["faiss_vectors"] == before["chunks"] + 1
    hits = client.post("/search", json={"query": "cleaning the heat pump filter", "k": 3}).json()["hits"]
    assert len(hits) == 3 and hits[0]["path"] == "twice" and "March" in hits[0]["text"]
    assert client.post("/texts/delete", json={"ids": ["twice"]}).json() == {"deleted": 1}


def test_schema_documents_every_status_and_the_bearer_scheme(served):
    client, _, _ = served
    schema = client.get("/openapi.json").json()
    bearer = schema["components"]["securitySchemes"]["bearer"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    assert schema["security"] == [{"bearer": []}]
    documented = {f"{method.upper()} {path}": set(operation["responses"])
                  for path, item in schema["paths"].items() for method, operation in item.items()}
    assert documented["GET /status"] >= {"200", "401", "413"}
    for operation in ("POST /search", "POST /context", "POST /texts", "POST /texts/delete"):
        assert documented[operation] >= {"200", "400", "401", "409", "413", "422", "502", "504"}, operation
    assert "404" in documented["POST /search"] and "404" in documented["POST /context"]
    rerank = schema["components"]["schemas"]["SearchRequest"]["properties"]["rerank"]
    assert {option["type"] for option in rerank["anyOf"]} == {"boolean", "string"}


def test_clients_name_the_reranker_model(served, ollama_server_session):
    client, _, _ = served
    other = "dengcao/Qwen3-Reranker-4B:Q4_K_M"
    ollama_server_session.models[other] = ModelSpec("reranker", context_length=40960, architecture="qwen3")
    try:
        ollama_server_session.requests.clear()
        hits = client.post("/search", json={"query": "why is Japanese green tea grassy", "k": 2,
                                            "rerank": other}).json()["hits"]
        assert all(hit["rerank_score"] is not None for hit in hits) and "green-tea" in hits[0]["path"]
        models = {body.get("model") for path, body in ollama_server_session.requests if path == "/api/generate"}
        assert models == {other}

        ollama_server_session.requests.clear()
        context = client.post("/context", json={"query": "why is Japanese green tea grassy", "rerank": True})
        assert context.status_code == 200
        models = {body.get("model") for path, body in ollama_server_session.requests if path == "/api/generate"}
        assert models == {DEFAULT_RERANK_MODEL}

        missing = client.post("/search", json={"query": "green tea", "rerank": "no-such-reranker:1b"})
        assert missing.status_code == 404 and "no-such-reranker:1b" in missing.json()["detail"]
        not_a_reranker = client.post("/search", json={"query": "green tea", "rerank": "qwen3-embedding:0.6b"})
        assert not_a_reranker.status_code == 400, not_a_reranker.text
    finally:
        ollama_server_session.models.pop(other, None)


def test_where_takes_filter_expressions_and_a_bad_one_gets_400(served):
    client, _, _ = served
    texts = [{"id": f"report/{year}", "text": f"The {year} annual report on kettle descaling.",
              "metadata": {"year": year}} for year in range(2016, 2026)]
    assert client.post("/texts", json={"texts": texts}).status_code == 200
    try:
        body = {"query": "annual report on kettle descaling", "k": 3, "where": ["year>=2020", "year!=2024"]}
        hits = client.post("/search", json=body).json()["hits"]
        assert len(hits) == 3 and all(hit["metadata"]["year"] >= 2020 and hit["metadata"]["year"] != 2024
                                      for hit in hits)
        block = client.post("/context", json={**body, "where": ["year<2017"]}).json()
        assert [source["path"] for source in block["sources"]] == ["report/2016"]
        for where, message in ((["year>=abc"], "year holds numbers"), (["year>>2020"], "is not a filter")):
            response = client.post("/search", json={"query": "report", "where": where})
            assert response.status_code == 400 and message in response.json()["detail"]
        schema = client.get("/openapi.json").json()["components"]["schemas"]["SearchRequest"]["properties"]["where"]
        assert {"object", "array"} <= {option.get("type") for option in schema["anyOf"]}
        assert "year>=2020" in schema["description"]
    finally:
        client.post("/texts/delete", json={"ids": [text["id"] for text in texts]})
