"""Qwen3-Reranker through stock Ollama: one raw `/api/generate` per pair, scored from the logprobs.

Ollama has no rerank endpoint, but a Qwen3-Reranker GGUF served as a generative model gives
exact scores through `/api/generate` (DESIGN §5): the model-card prompt sent with `raw: true`,
one predicted token (`num_predict: 1`, `temperature: 0`), and `logprobs` with the 20 most likely
first tokens (Ollama ≥ 0.12.11). The score is P(yes) / (P(yes) + P(no)).

Requests for one query run concurrently, bounded by `concurrency` (Ollama serves generative
models with `OLLAMA_NUM_PARALLEL` slots; more requests than slots just queue there).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from semsearch._http import StatusRule, error_message, resolve_hosts, status_error
from semsearch.errors import (
    RerankerError,
    RerankerModelNotFoundError,
    RerankerTimeoutError,
    RerankerUnavailableError,
    RerankerUnsupportedError,
)
from semsearch.options import DEFAULT_RERANK_MODEL
from semsearch.rerank.base import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, BaseReranker, post_json
from semsearch.rerank.prompts import DEFAULT_RERANK_INSTRUCTION, qwen3_rerank_prompt
from semsearch.tokens import cut_to_tokens, estimate_tokens

LOGPROBS_SINCE = (0, 12, 11)  # the first Ollama release whose /api/generate returns logprobs
OLLAMA_DEFAULT_NUM_CTX = 4096  # what Ollama gives a request that does not set options.num_ctx
TOP_LOGPROBS = 20  # Ollama's maximum
# log P of a token absent from the top 20: "very unlikely", finite so that the other answer's
# probability still decides (and both absent gives an undecided 0.5).
ABSENT_LOGPROB = -100.0


def yes_probability(candidates: Iterable[tuple[str, float]]) -> float:
    """exp(lp_yes) / (exp(lp_yes) + exp(lp_no)) over the first token's (token, logprob) candidates.

    Tokens match "yes"/"no" after stripping whitespace and lowercasing (" yes", "Yes" ...); the
    most likely spelling of each counts; an absent answer counts as ABSENT_LOGPROB.
    """
    yes: float | None = None
    no: float | None = None
    for token, logprob in candidates:
        word = token.strip().lower()
        if word == "yes":
            yes = logprob if yes is None else max(yes, logprob)
        elif word == "no":
            no = logprob if no is None else max(no, logprob)
    yes = ABSENT_LOGPROB if yes is None else yes
    no = ABSENT_LOGPROB if no is None else no
    return 1.0 / (1.0 + math.exp(no - yes))  # the two-way softmax, stable for any logprobs


class OllamaReranker(BaseReranker):
    """Scores (query, document) pairs with a Qwen3-Reranker model on one Ollama server.

    `host` is that server, or the hosts given for embedding (a comma list or several), of which
    the first reranks; default `$OLLAMA_HOST`, else 127.0.0.1:11434.
    `concurrency` bounds the requests in flight for one `score` call; `timeout` is per request
    (seconds); 5xx answers and dropped connections are retried `retries` times. Documents are
    cut so prompt plus document stay within half of `num_ctx` (or Ollama's default context when
    `num_ctx` is not set) by our token estimate, which leaves the margin the estimate needs.
    `transport` is passed to httpx (tests use `httpx.MockTransport`).
    """

    provider = "ollama"

    def __init__(
        self,
        model: str = DEFAULT_RERANK_MODEL,
        *,
        host: str | Sequence[str] | None = None,
        instruction: str = DEFAULT_RERANK_INSTRUCTION,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 2,
        backoff: float = 0.25,
        num_ctx: int | None = None,
        keep_alive: str | float | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        self.model = model.removeprefix("ollama:")
        # Several hosts spread embedding; reranking is one request per candidate to one server: the first.
        self.host = resolve_hosts(host)[0]
        self.instruction = instruction
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.num_ctx = num_ctx
        self.keep_alive = keep_alive
        kwargs: dict[str, Any] = {"base_url": self.host, "timeout": timeout,
                                  "limits": httpx.Limits(max_connections=self.concurrency,
                                                         max_keepalive_connections=self.concurrency)}
        if transport is not None:
            kwargs["transport"] = transport
        self._client = httpx.Client(**kwargs)
        self._version_lock = threading.Lock()
        self._version: str | None = None

    def __repr__(self) -> str:
        return f"OllamaReranker({self.model!r}, host={self.host!r})"

    # -- scoring -------------------------------------------------------------------------------

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """P(relevant) in [0, 1] for each text, in order. Raises RerankerError subclasses."""
        if not texts:
            return []
        prompts = [self.prompt(query, text) for text in texts]
        workers = min(self.concurrency, len(prompts))
        if workers == 1:
            return [self._score_prompt(prompt) for prompt in prompts]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="semsearch-rerank") as pool:
            futures = [pool.submit(self._score_prompt, prompt) for prompt in prompts]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def prompt(self, query: str, document: str) -> str:
        """The exact prompt sent for one pair, the document (and a huge query) cut to fit the context."""
        budget = (self.num_ctx or OLLAMA_DEFAULT_NUM_CTX) // 2
        query = cut_to_tokens(query, budget // 4)
        room = budget - estimate_tokens(qwen3_rerank_prompt(query, "", self.instruction))
        return qwen3_rerank_prompt(query, cut_to_tokens(document, max(room, 16)), self.instruction)

    def request(self, prompt: str) -> dict[str, Any]:
        """The `/api/generate` body for one prompt."""
        options: dict[str, Any] = {"num_predict": 1, "temperature": 0}
        if self.num_ctx:
            options["num_ctx"] = self.num_ctx
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "raw": True,
            "stream": False,
            "options": options,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
        }
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        return body

    def _score_prompt(self, prompt: str) -> float:
        data = self._generate(self.request(prompt))
        logprobs = data.get("logprobs")
        if not logprobs:
            raise self._no_logprobs_error()
        first = logprobs[0]
        candidates = [(first.get("token", ""), first.get("logprob", ABSENT_LOGPROB))]
        candidates += [(t.get("token", ""), t.get("logprob", ABSENT_LOGPROB)) for t in first.get("top_logprobs") or []]
        return yes_probability(candidates)

    # -- the wire ------------------------------------------------------------------------------

    def _generate(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = post_json(self._client, "/api/generate", body, retries=self.retries, backoff=self.backoff)
        except httpx.TimeoutException as exc:
            raise RerankerTimeoutError(
                f"the reranker {self.model} on Ollama at {self.host} did not answer within {self.timeout:g} s "
                "— raise --rerank-timeout, lower --rerank-top, or add --rerank-fallback to get results in "
                "retrieval order when reranking is slow"
            ) from exc
        except httpx.TransportError as exc:
            raise RerankerUnavailableError(
                f"cannot reach Ollama at {self.host} to rerank — start it with `ollama serve`, or point "
                "--ollama-host / OLLAMA_HOST at a running server"
            ) from exc
        if response.status_code != 200:
            raise self._status_error(response)
        try:
            data = response.json()
        except ValueError as exc:
            raise RerankerError(f"Ollama at {self.host} answered /api/generate with something not JSON") from exc
        if not isinstance(data, dict):
            raise RerankerError(f"Ollama at {self.host} answered /api/generate with unexpected JSON")
        return data

    def _status_error(self, response: httpx.Response) -> RerankerError:
        def not_pulled(status: int, message: str) -> RerankerModelNotFoundError:
            return RerankerModelNotFoundError(
                f"reranker model {self.model} is not pulled on Ollama at {self.host} — run `ollama pull {self.model}`"
            )

        return status_error(response.status_code, error_message(response), [
            StatusRule(not_pulled, statuses={404}),
            StatusRule(not_pulled, phrases=("not found",)),
            StatusRule(lambda status, message: RerankerUnsupportedError(
                f"model {self.model} does not support generate, so Ollama cannot score with it — use a "
                f"generative Qwen3-Reranker such as {DEFAULT_RERANK_MODEL}, or serve this model with a "
                "/v1/rerank server (llama.cpp --reranking, vLLM, TEI) and pass --rerank-url"),
                phrases=("does not support generate",)),
            StatusRule(lambda status, message: RerankerUnavailableError(
                f"Ollama at {self.host} failed while reranking ({status}: {message})"), statuses=range(500, 600)),
        ], otherwise=lambda status, message: RerankerError(
            f"Ollama at {self.host} answered {status} while reranking: {message}"))

    def _no_logprobs_error(self) -> RerankerUnsupportedError:
        version = self.server_version()
        needed = ".".join(map(str, LOGPROBS_SINCE))
        if version and version_tuple(version) >= LOGPROBS_SINCE:
            return RerankerUnsupportedError(
                f"Ollama at {self.host} (version {version}) answered /api/generate for {self.model} without "
                "logprobs, so it cannot score — check that the server is Ollama itself, or use a /v1/rerank "
                "server with --rerank-url"
            )
        found = f"is version {version}, which does" if version else "does"
        return RerankerUnsupportedError(
            f"Ollama at {self.host} {found} not return logprobs from /api/generate — reranking through "
            f"Ollama needs version {needed} or newer: upgrade Ollama, or use a /v1/rerank server with --rerank-url"
        )

    def server_version(self) -> str | None:
        """What `/api/version` reports, asked once; None when the server does not say."""
        with self._version_lock:
            if self._version is None:
                try:
                    response = self._client.get("/api/version")
                    self._version = str(response.json().get("version") or "") if response.status_code == 200 else ""
                except (httpx.HTTPError, ValueError, AttributeError):
                    self._version = ""
            return self._version or None

    def close(self) -> None:
        self._client.close()


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])
