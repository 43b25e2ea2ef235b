"""The shared HTTP layer (semsearch._http): retries, Retry-After, jitter, error bodies, status tables, hosts.

Exact protocol behaviour is checked with httpx.MockTransport (and the real `ollama` client on top
of it, the way the Ollama embedder uses it); waits are recorded by the `sleep` the helper takes.
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import ollama
import pytest

from semsearch import _http
from semsearch._http import (
    RETRY_AFTER_CAP,
    RetryPolicy,
    StatusRule,
    error_message,
    resolve_hosts,
    retry_delay,
    send_with_retries,
    status_error,
)
from semsearch.embed.ollama import _RETRY_STATUSES as OLLAMA_RETRY_STATUSES
from semsearch.embed.openai import _RETRY_STATUSES as OPENAI_RETRY_STATUSES
from semsearch.errors import EmbedderError, ModelNotFoundError, RerankerError
from semsearch.rerank import make_reranker
from semsearch.rerank.base import post_json

URL = "http://server.test/api"


class Script:
    """A MockTransport handler answering from a list of responses (or exceptions to raise), counting requests."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _send(script: Script, policy: RetryPolicy, waits: list[float]) -> httpx.Response:
    client = httpx.Client(transport=httpx.MockTransport(script))
    return send_with_retries(lambda: client.post(URL, json={}), policy, sleep=waits.append)


# -- retry counts --------------------------------------------------------------------------------


def test_a_passing_failure_is_retried_until_the_answer_comes():
    script = Script(httpx.Response(503), httpx.Response(503), httpx.Response(200, json={"ok": True}))
    waits: list[float] = []
    response = _send(script, RetryPolicy(3, 0.0, frozenset({503})), waits)
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert len(script.requests) == 3
    assert len(waits) == 2


@pytest.mark.parametrize("retries", [0, 1, 4])
def test_the_last_error_answer_is_returned_after_retries_plus_one_attempts(retries):
    script = Script(httpx.Response(503, json={"error": "queue full"}))
    waits: list[float] = []
    response = _send(script, RetryPolicy(retries, 0.0, frozenset({503})), waits)
    assert response.status_code == 503 and error_message(response) == "queue full"
    assert len(script.requests) == retries + 1
    assert len(waits) == retries  # no wait after the last attempt


@pytest.mark.parametrize("exception", [httpx.ConnectError("refused"), httpx.RemoteProtocolError("dropped"),
                                       ConnectionError("the ollama client's refused connection")])
def test_failed_connections_are_retried_then_raised(exception):
    calls = []

    def send():
        calls.append(1)
        raise exception

    waits: list[float] = []
    with pytest.raises(type(exception)):
        send_with_retries(send, RetryPolicy(2, 0.0, frozenset()), sleep=waits.append)
    assert len(calls) == 3 and len(waits) == 2


@pytest.mark.parametrize("retry_timeouts, attempts", [(True, 3), (False, 1)])
def test_timeouts_are_retried_only_when_the_policy_says(retry_timeouts, attempts):
    script = Script(httpx.ReadTimeout("slow"))
    with pytest.raises(httpx.ReadTimeout):
        _send(script, RetryPolicy(2, 0.0, frozenset({503}), retry_timeouts=retry_timeouts), [])
    assert len(script.requests) == attempts


def test_other_exceptions_are_not_retried():
    calls = []

    def send():
        calls.append(1)
        raise ValueError("not JSON")

    with pytest.raises(ValueError):
        send_with_retries(send, RetryPolicy(3, 0.0, frozenset({503})), sleep=lambda _: None)
    assert len(calls) == 1


def test_an_error_raised_by_a_client_library_is_retried_by_its_status():
    """ollama.ResponseError carries the status: a 503 is asked again, a 404 is not."""
    script = Script(httpx.Response(503, json={"error": "server busy"}),
                    httpx.Response(200, json={"model": "m", "embeddings": [[1.0, 0.0]]}))
    client = ollama.Client(host="http://server.test", transport=httpx.MockTransport(script))
    policy = RetryPolicy(2, 0.0, OLLAMA_RETRY_STATUSES)
    answer = send_with_retries(lambda: client.embed(model="m", input=["a"]), policy, sleep=lambda _: None)
    assert answer.embeddings == [[1.0, 0.0]] and len(script.requests) == 2

    missing = Script(httpx.Response(404, json={"error": 'model "m" not found, try pulling it first'}))
    client = ollama.Client(host="http://server.test", transport=httpx.MockTransport(missing))
    with pytest.raises(ollama.ResponseError) as caught:
        send_with_retries(lambda: client.embed(model="m", input=["a"]), policy, sleep=lambda _: None)
    assert caught.value.status_code == 404 and len(missing.requests) == 1


# -- which statuses each provider retries --------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 501, 502, 503, 504])
def test_which_statuses_the_providers_retry(status):
    assert (status in OLLAMA_RETRY_STATUSES) == (status in {429, 500, 502, 503, 504})
    assert (status in OPENAI_RETRY_STATUSES) == (status in {408, 409, 429, 500, 502, 503, 504})
    script = Script(httpx.Response(status, json={"error": "x"}))
    client = httpx.Client(transport=httpx.MockTransport(script))
    response = post_json(client, URL, {}, retries=2, backoff=0.0)
    assert response.status_code == status
    assert len(script.requests) == (3 if status in {500, 502, 503, 504} else 1)  # rerankers: 5xx only


def test_a_reranker_does_not_retry_a_timeout():
    script = Script(httpx.ReadTimeout("slow"))
    client = httpx.Client(transport=httpx.MockTransport(script))
    with pytest.raises(httpx.ReadTimeout):
        post_json(client, URL, {}, retries=3, backoff=0.0)
    assert len(script.requests) == 1


# -- Retry-After and jitter ----------------------------------------------------------------------


def test_retry_after_is_honoured_and_capped():
    script = Script(httpx.Response(429, headers={"Retry-After": "2.5"}),
                    httpx.Response(429, headers={"Retry-After": "3600"}),
                    httpx.Response(200))
    waits: list[float] = []
    _send(script, RetryPolicy(3, 10.0, frozenset({429}), retry_after_statuses=frozenset({429})), waits)
    assert waits == [2.5, RETRY_AFTER_CAP]
    assert RETRY_AFTER_CAP == 30.0


def test_retry_after_on_a_status_the_policy_does_not_trust_is_ignored():
    script = Script(httpx.Response(503, headers={"Retry-After": "25"}), httpx.Response(200))
    waits: list[float] = []
    _send(script, RetryPolicy(1, 0.1, frozenset({429, 503}), retry_after_statuses=frozenset({429})), waits)
    assert len(waits) == 1 and 0.05 <= waits[0] < 0.15


@pytest.mark.parametrize("header", ["Wed, 21 Oct 2037 07:28:00 GMT", "-5", "soon", ""])
def test_a_retry_after_that_is_not_seconds_falls_back_to_backoff(header):
    assert 0.5 <= retry_delay(0, 1.0, header) < 1.5


def test_a_retry_after_of_zero_means_at_once():
    assert retry_delay(3, 1.0, "0") == 0.0


@pytest.mark.parametrize("attempt", [0, 1, 3])
def test_backoff_doubles_and_jitters_between_half_and_one_and_a_half_times(attempt):
    base = 0.2 * 2**attempt
    delays = [retry_delay(attempt, 0.2) for _ in range(300)]
    assert all(0.5 * base <= delay < 1.5 * base for delay in delays)
    assert max(delays) - min(delays) > 0.5 * base  # spread out, not one fixed wait


def test_the_waits_of_a_retried_call_grow():
    script = Script(httpx.Response(500))
    waits: list[float] = []
    _send(script, RetryPolicy(3, 1.0, frozenset({500})), waits)
    assert len(waits) == 3
    assert 0.5 <= waits[0] < 1.5 and 1.0 <= waits[1] < 3.0 and 2.0 <= waits[2] < 6.0


# -- error bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("response, message", [
    (httpx.Response(404, json={"error": 'model "x" not found, try pulling it first'}),
     'model "x" not found, try pulling it first'),
    (httpx.Response(401, json={"error": {"message": "Incorrect API key provided", "type": "auth"}}),
     "Incorrect API key provided"),
    (httpx.Response(422, json={"detail": "field required"}), "field required"),
    (httpx.Response(400, json={"message": "bad input"}), "bad input"),
    (httpx.Response(500, json={"error": {"code": 7}}), "{'code': 7}"),
    (httpx.Response(502, text="<html>Bad Gateway</html>\n"), "<html>Bad Gateway</html>"),
    (httpx.Response(500, text="x" * 1000), "x" * 300),
    (httpx.Response(400, json=["not", "an", "object"]), '["not","an","object"]'),
    (httpx.Response(503, content=b""), "Service Unavailable"),
    (httpx.Response(500, json={"error": ""}), '{"error":""}'),
])
def test_error_message_from_json_non_json_and_empty_bodies(response, message):
    assert error_message(response) == message


# -- status tables -------------------------------------------------------------------------------

TABLE = [
    StatusRule(lambda status, message: ModelNotFoundError(f"missing ({status}): {message}"),
               statuses={404}, phrases=("model",)),
    StatusRule(lambda status, message: ModelNotFoundError("not found"), phrases=("not found",), unless=("route",)),
    StatusRule(lambda status, message: RerankerError(f"server failed ({status})"), statuses=range(500, 600)),
]


def _otherwise(status: int, message: str) -> EmbedderError:
    return EmbedderError(f"answered {status}: {message}")


@pytest.mark.parametrize("status, message, expected", [
    (404, "Model X is unknown", "missing (404): Model X is unknown"),  # phrases ignore case
    (404, "NOT FOUND", "not found"),
    (400, "page not found", "not found"),  # a row without statuses covers any status
    (404, "route not found", "answered 404: route not found"),  # `unless` keeps a row out
    (503, "model not found", "not found"),  # the first row that covers wins
    (503, "busy", "server failed (503)"),
    (418, "teapot", "answered 418: teapot"),
])
def test_the_first_row_covering_an_answer_makes_the_error(status, message, expected):
    assert str(status_error(status, message, TABLE, _otherwise)) == expected


def test_the_error_type_comes_from_the_row():
    assert type(status_error(404, "model", TABLE, _otherwise)) is ModelNotFoundError
    assert type(status_error(502, "x", TABLE, _otherwise)) is RerankerError
    assert type(status_error(400, "x", TABLE, _otherwise)) is EmbedderError


# -- hosts ---------------------------------------------------------------------------------------


def test_hosts_from_a_comma_list_or_several_values_deduplicated(monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert resolve_hosts("gpu1:11434, gpu2,gpu1:11434") == ["http://gpu1:11434", "http://gpu2:11434"]
    assert resolve_hosts(["gpu2", "https://gpu3.example"]) == ["http://gpu2:11434", "https://gpu3.example:443"]
    assert resolve_hosts(None) == [_http.DEFAULT_OLLAMA_HOST]
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:9999,other")
    assert resolve_hosts(()) == ["http://0.0.0.0:9999", "http://other:11434"]


@pytest.mark.parametrize("host", [
    "", "1.2.3.4", ":56789", "1.2.3.4:56789", "http://1.2.3.4", "https://1.2.3.4:56789", "example.com",
    "example.com:56789/", "https://example.com", "example.com/path", "https://example.com:56789/path/",
    "[0001:002:003:0004::1]", "[0001:002:003:0004::1]:56789/path", "https://[0001:002:003:0004::1]",
    "tcp://example.com", "localhost:11434",
])
def test_a_host_reads_as_the_ollama_client_reads_it(host, monkeypatch):
    """OLLAMA_HOST is read without importing the ollama client, to the same URL it would make."""
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    from ollama._client import _parse_host

    assert _http.resolve_host(host) == _parse_host(host)


def test_the_first_of_several_ollama_hosts_reranks(monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    with make_reranker(host=("gpu1:11434,gpu2", "gpu3")) as reranker:
        assert reranker.host == "http://gpu1:11434"
    monkeypatch.setenv("OLLAMA_HOST", "gpu4,gpu5")
    with make_reranker() as reranker:
        assert reranker.host == "http://gpu4:11434"


def test_the_cli_and_the_reranker_start_without_the_ollama_client():
    """The `ollama` package (pydantic models) is loaded only when an Ollama embedder is made."""
    code = ("import sys, semsearch.cli, semsearch.rerank.ollama; "
            "print(sorted(m for m in ('ollama', 'semsearch.embed.ollama') if m in sys.modules))")
    env = {key: value for key, value in os.environ.items() if key != "OLLAMA_HOST"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- JsonClient over real HTTP -------------------------------------------------------------------


def test_json_client_keeps_the_connection_and_survives_a_server_restart():
    """A kept-alive connection the server has closed is replaced, not reported as a failure."""
    from tests.ollama_server import OllamaTestServer

    with OllamaTestServer() as server:
        port = int(server.url.rsplit(":", 1)[1])
        client = _http.JsonClient(server.url, timeout=30)
        first = client.request("GET", "/api/version")
        assert first.status_code == 200 and first.json()["version"]
        assert len(client._idle) == 1  # kept for the next request
        server.stop()
        server.start(port)
        again = client.request("POST", "/api/show", {"model": "no-such-model"})
        assert again.status_code == 404 and "not found" in error_message(again)
        client.close()


def test_json_client_raises_connection_error_when_nothing_listens():
    from tests.helpers import free_port

    client = _http.JsonClient(f"http://127.0.0.1:{free_port()}", timeout=5)
    with pytest.raises(ConnectionError) as raised:
        client.request("GET", "/api/version")
    assert not isinstance(raised.value, _http.ConnectionBroken)
