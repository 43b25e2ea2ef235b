"""The Ollama embedding provider: batched `/api/embed`, retries, model facts from `/api/show`, pulls.

Facts this relies on are in DESIGN §4: `/api/embed` takes a list and returns normalised vectors;
`truncate: false` turns a silent cut into a 400; the default `num_ctx` is small, so we size it to
the chunk budget; the client's default timeout is none, so we always set one.

`/api/embed` goes through the shared HTTP layer's JsonClient, for documents and queries alike;
the `ollama` client (pydantic models, httpx) is made only for what it does well, model facts
(`/api/show`, `/api/tags`) and streamed pulls. A search of an existing index needs neither, so
it never imports the package: that import and its SSL set-up were most of a `semsearch search`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from semsearch import __version__
from semsearch._http import (
    DEFAULT_OLLAMA_HOST,
    Answer,
    ConnectionBroken,
    JsonClient,
    RetryPolicy,
    StatusRule,
    error_message,
    resolve_host,  # noqa: F401 - callers import it from here too
    resolve_hosts,
    send_with_retries,
    status_error,
    without_httpx_errors,
)
from semsearch.embed.base import (
    BaseEmbedder,
    EmbedderInfo,
    check_vectors,
    send_locating_overflow,
    truncate_dimensions,
)
from semsearch.embed.presets import DEFAULT_MODEL, Preset, preset_for_model
from semsearch.errors import (
    ConfigError,
    EmbedderError,
    EmbedderTimeoutError,
    EmbedderUnavailableError,
    InputTooLongError,
    ModelCapabilityError,
    ModelNotFoundError,
)
from semsearch.types import EmbedKind

if TYPE_CHECKING:
    import httpx
    import ollama

_log = logging.getLogger(__name__)

DEFAULT_HOST = DEFAULT_OLLAMA_HOST  # this module is where callers have always found it, and resolve_host(s)
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# How alike (difflib ratio) a model the server has must be to a missing name to count as what the
# user meant: a typo or another tag of the same model scores above 0.85, unrelated models below 0.5.
_CLOSE_MODEL_RATIO = 0.6


_DURATION = re.compile(r"-?(\d+(\.\d*)?(ns|us|µs|ms|s|m|h))+")


def parse_keep_alive(value: str | float | None) -> str | float | None:
    """Ollama's `keep_alive` from user text: seconds as a number ("300", "-1") or a duration ("10m", "1h30m").

    Raises ConfigError for anything Ollama would reject, before a request is sent.
    """
    if value is None or isinstance(value, (int, float)):
        return value
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        if _DURATION.fullmatch(text):
            return text
        raise ConfigError(
            f"keep-alive {value!r} is not a duration — use seconds (300, -1 for always) or e.g. 10m, 1h"
        ) from None
    return int(number) if number.is_integer() else number


class OllamaEmbedder(BaseEmbedder):
    """Embeds through one Ollama server, or spreads batches over several.

    `host` is one URL, a comma list, or a list of URLs. Ollama embeds the texts of a request one
    at a time, so with several hosts the batches of one `embed` call go to all of them at once
    (one request in flight per host, each host taking the next batch when it is free); the
    vectors are the same as from one host, in the same order.

    `transport` is passed to httpx (tests use `httpx.MockTransport`). `num_ctx` should be about
    twice the chunk token budget (our token count is an estimate), capped at the model's context.
    """

    provider = "ollama"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        host: str | Sequence[str] | None = None,
        preset: Preset | None = None,
        num_ctx: int | None = None,
        dimensions: int | None = None,
        keep_alive: str | float | None = None,
        batch_size: int = 16,
        timeout: float = 120.0,
        retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        known_info: EmbedderInfo | None = None,
    ):
        self.model = model.removeprefix("ollama:")
        self.hosts = resolve_hosts(host)
        self.host = self.hosts[0]
        self.preset = preset or preset_for_model(self.model)
        self.num_ctx = num_ctx
        self.dimensions = dimensions
        self.keep_alive = keep_alive
        self.batch_size = max(1, batch_size)
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self._transport = transport
        headers = {"User-Agent": f"semsearch/{__version__}"}
        if os.environ.get("OLLAMA_API_KEY"):  # as the ollama client sends it
            headers["Authorization"] = f"Bearer {os.environ['OLLAMA_API_KEY']}"
        self._senders = [JsonClient(url, timeout=timeout, headers=headers, transport=transport) for url in self.hosts]
        # The ollama clients, made when model facts or a pull are first asked for.
        self._clients: list[ollama.Client] | None = None
        self._client_lock = threading.Lock()
        # ollama.ResponseError keeps no headers: a response hook notes a 429's Retry-After for the
        # thread that sent the request, and _with_client hands it on in the Answer (model facts may
        # first be asked for by several embedding threads at once).
        self._retry_after = threading.local()
        self._down: set[int] = set()  # hosts found unreachable; skipped while others answer
        # An existing index already knows the model's facts: skip the /api/show round trip.
        self._info: EmbedderInfo | None = known_info

    def _client(self, index: int) -> ollama.Client:
        """The `ollama` client for host number `index`."""
        with self._client_lock:
            if self._clients is None:
                import ollama

                kwargs: dict[str, Any] = {"timeout": self.timeout,
                                          "event_hooks": {"response": [self._note_retry_after]}}
                if self._transport is not None:
                    kwargs["transport"] = self._transport
                self._clients = [ollama.Client(host=url, **kwargs) for url in self.hosts]
            return self._clients[index]

    # -- model facts ---------------------------------------------------------------------------

    def info(self) -> EmbedderInfo:
        """Model dimensions and context length, asked of `/api/show` once."""
        if self._info is None:
            shown = self._on_any_host(lambda client: client.show(self.model))
            model_info = dict(shown.modelinfo or {})
            capabilities = list(getattr(shown, "capabilities", None) or [])
            if capabilities and "embedding" not in capabilities:
                raise self._not_an_embedding_model()
            native = _model_info_value(model_info, "embedding_length")
            context = _model_info_value(model_info, "context_length") or 2048
            if native is None:
                raise EmbedderError(f"Ollama did not report the embedding size of {self.model}")
            if self.dimensions is not None and not 1 <= self.dimensions <= native:
                raise EmbedderError(
                    f"--dimensions {self.dimensions} is not possible for {self.model}: "
                    f"choose a value from 32 to {native}"
                )
            self._info = EmbedderInfo(
                provider=self.provider,
                model=self.model,
                dimensions=self.dimensions or native,
                context_length=context,
                preset=self.preset,
                requested_dimensions=self.dimensions,
            )
        return self._info

    def _on_any_host(self, fn: Callable[[ollama.Client], Any]) -> Any:
        """`fn(client)` on the first host that answers, skipping (and remembering) unreachable ones."""
        order = [i for i in range(len(self.hosts)) if i not in self._down] + sorted(self._down)
        for position, index in enumerate(order):
            try:
                return self._call(lambda: self._with_client(index, fn), host=self.hosts[index])
            except (EmbedderUnavailableError, EmbedderTimeoutError) as exc:
                if position + 1 == len(order):
                    raise
                self._down.add(index)
                _log.warning("%s; going on with the other Ollama hosts", exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def context_length(self) -> int:
        return self.info().context_length

    def use_num_ctx(self, num_ctx: int) -> None:
        """Send `num_ctx` with every request from now on, unless one was chosen when it was made."""
        if not self.num_ctx:
            self.num_ctx = num_ctx

    # -- embedding -----------------------------------------------------------------------------

    def _embed_formatted(self, texts: list[str], kind: EmbedKind) -> np.ndarray:
        dims = self.info().dimensions
        starts = list(range(0, len(texts), self.batch_size))
        if len(self.hosts) == 1:
            parts = [self._embed_batch(texts[i : i + self.batch_size], i, 0) for i in starts]
        else:
            parts = self._embed_spread(texts, starts)
        vectors = np.concatenate(parts, axis=0) if parts else np.zeros((0, dims), dtype=np.float32)
        vectors = truncate_dimensions(vectors, self.dimensions)  # a server that ignored `dimensions`
        if vectors.shape != (len(texts), dims):
            raise EmbedderError(
                f"Ollama returned vectors of shape {vectors.shape} for {len(texts)} texts of "
                f"{dims} dimensions from {self.model}"
            )
        return vectors

    def _embed_spread(self, texts: list[str], starts: list[int]) -> list[np.ndarray]:
        """Embed the batches at `starts` on all hosts at once; each host takes the next free batch.

        A host that cannot be reached (after its retries) is left out from then on and its batch
        goes to the others; only when no host is left does the error reach the caller.
        """
        results: list[np.ndarray | None] = [None] * len(starts)
        pending = list(reversed(range(len(starts))))
        lock = threading.Lock()
        errors: list[BaseException] = []
        unreachable: list[EmbedderError] = []
        live = [i for i in range(len(self.hosts)) if i not in self._down] or list(range(len(self.hosts)))
        self._down.difference_update(live)

        def work(host_index: int) -> None:
            while True:
                with lock:
                    if errors or not pending:
                        return
                    batch_index = pending.pop()
                start = starts[batch_index]
                try:
                    results[batch_index] = self._embed_batch(texts[start : start + self.batch_size], start, host_index)
                except (EmbedderUnavailableError, EmbedderTimeoutError) as exc:
                    with lock:
                        pending.append(batch_index)
                        self._down.add(host_index)
                        unreachable.append(exc)
                    _log.warning("%s; going on with the other Ollama hosts", exc)
                    return
                except BaseException as exc:  # handed to the caller's thread below
                    with lock:
                        errors.append(exc)
                    return

        threads = [threading.Thread(target=work, args=(i,), name=f"ollama-{i}", daemon=True)
                   for i in live[: len(starts)]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        if pending:  # every host went down
            raise unreachable[-1]
        return [part for part in results if part is not None]

    def _embed_batch(self, batch: list[str], offset: int = 0, host_index: int = 0) -> np.ndarray:
        """Embed one batch on one host; an InputTooLongError carries the text's index in the call."""
        sender = self._senders[host_index]
        host = self.hosts[host_index]

        def send(texts: list[str]) -> np.ndarray:
            answer = self._call(lambda: sender.request("POST", "/api/embed", self._embed_request(texts)), host=host)
            vectors = self._embeddings(answer, host)
            if self.dimensions and vectors and isinstance(vectors[0], Sequence):
                vectors = [row[: self.dimensions] for row in vectors]  # a server that ignored `dimensions`
            return check_vectors(vectors, len(texts), self.info().dimensions, f"Ollama at {host} ({self.model})")

        return send_locating_overflow(send, batch, offset)

    def _embed_request(self, batch: list[str]) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "input": batch, "truncate": False}
        if self.num_ctx:
            request["options"] = {"num_ctx": self.num_ctx}
        if self.dimensions:
            request["dimensions"] = self.dimensions
        if self.keep_alive is not None:
            request["keep_alive"] = self.keep_alive
        return request

    # -- pulling -------------------------------------------------------------------------------

    def _has_model(self, index: int) -> bool:
        try:
            self._call(lambda: self._with_client(index, lambda client: client.show(self.model)), retries=0,
                       host=self.hosts[index])
        except ModelNotFoundError:
            return False
        return True

    def is_available(self) -> bool:
        """Whether every host has the model (raises if a server is unreachable)."""
        return all(self._has_model(i) for i in range(len(self.hosts)))

    def pull(self, progress: Callable[[str, int | None, int | None], None] | None = None) -> None:
        """Pull the model on each host lacking it, reporting (status, completed, total) to `progress`."""
        for index in range(len(self.hosts)):
            if len(self.hosts) > 1 and self._has_model(index):
                continue

            def run(client: ollama.Client) -> None:
                stream: Iterator[Any] = client.pull(self.model, stream=True)
                for update in stream:
                    if progress is not None:
                        progress(update.status or "", update.completed, update.total)

            self._call(lambda index=index: self._with_client(index, run), retries=0, pulling=True,
                       host=self.hosts[index])
        self._info = None

    # -- errors --------------------------------------------------------------------------------

    def _with_client(self, index: int, fn: Callable[[ollama.Client], Any]) -> Any:
        """`fn(client)` with host `index`'s ollama client, failing the way JsonClient does: an error
        answer is returned (as an Answer), a failed connection raised as the builtin errors."""
        import ollama

        try:
            return without_httpx_errors(lambda: fn(self._client(index)))
        except ollama.ResponseError as exc:
            retry_after = getattr(self._retry_after, "value", None)
            return Answer(exc.status_code, json.dumps({"error": exc.error}).encode(),
                          {"retry-after": retry_after} if retry_after else {})

    def _call(self, fn: Callable[[], Any], *, retries: int | None = None, pulling: bool = False,
              host: str | None = None) -> Any:
        """Run one request with retry on transient failures; its answer, or the error it maps to."""
        host = host or self.host
        policy = RetryPolicy(self.retries if retries is None else max(0, retries), self.backoff, _RETRY_STATUSES,
                             retry_after_statuses=frozenset({429}))
        try:
            answer = send_with_retries(fn, policy)
        except ValueError as exc:  # the ollama client found a 200's body not JSON, or not an answer's shape
            raise self._invalid_answer(host, _in_band_error(exc)) from exc
        except TimeoutError as exc:
            raise EmbedderTimeoutError(
                f"Ollama at {host} did not answer within {self.timeout:g} s — it may be "
                "loading the model or overloaded; try again or raise --timeout"
            ) from exc
        except ConnectionBroken as exc:
            raise EmbedderUnavailableError(
                f"Ollama at {host} broke the connection in the middle of an answer "
                f"({policy.retries + 1} attempts) — check that the server is not crashing or restarting "
                "(its log says why), then try again"
            ) from exc
        except ConnectionError as exc:
            raise EmbedderUnavailableError(
                f"cannot reach Ollama at {host} — start it with `ollama serve`, "
                "or point --ollama-host / OLLAMA_HOST at a running server"
            ) from exc
        # Status -1: the ollama client's mark for an error sent inside a 200's stream (a failed pull).
        if isinstance(answer, Answer) and (answer.status_code >= 400 or answer.status_code < 0):
            raise self._map_error_answer(answer.status_code, error_message(answer), pulling, host)
        return answer

    def _embeddings(self, answer: Answer, host: str) -> Any:
        """The `embeddings` of /api/embed's answer; EmbedderError when the body is not such an answer."""
        try:
            body = answer.json()
        except ValueError:  # not JSON, or cut short
            body = None
        if isinstance(body, dict) and isinstance(body.get("embeddings"), list):
            return body["embeddings"]
        raise self._invalid_answer(host, body.get("error") if isinstance(body, dict) else None)

    def _invalid_answer(self, host: str, said: object = None) -> EmbedderError:
        """The error for a 200 that is not an answer; `said` is the error it held instead, if any."""
        said_text = f" (it says: {str(said)[:200]})" if said else ""
        return EmbedderError(
            f"Ollama at {host} answered with something that is not a valid response{said_text} — "
            "no vector was stored; check that --ollama-host / OLLAMA_HOST points at Ollama itself "
            "(not a proxy's error page) and that it is healthy, then try again"
        )

    def _note_retry_after(self, response: httpx.Response) -> None:
        self._retry_after.value = response.headers.get("retry-after")

    def _map_error_answer(self, status: int, message: str, pulling: bool, host: str) -> EmbedderError:
        if pulling:
            suggestion = self._suggest_model(host)
            return ModelNotFoundError(f"cannot pull {self.model} from Ollama at {host}: {message}"
                                      + (f" — {suggestion}" if suggestion else ""))
        return status_error(status, message, [
            StatusRule(lambda *_: self._model_not_found(host), statuses={404}),
            StatusRule(lambda *_: self._model_not_found(host), phrases=("not found",)),
            StatusRule(lambda *_: self._not_an_embedding_model(), statuses={501}),
            StatusRule(lambda *_: self._not_an_embedding_model(), phrases=("does not support embeddings",)),
            StatusRule(lambda status, message: InputTooLongError(
                f"a text is longer than the context of {self.model}: {message}"),
                phrases=("context length", "input length")),
        ], otherwise=lambda status, message: EmbedderError(f"Ollama at {host} answered {status}: {message}"))

    def _not_an_embedding_model(self) -> ModelCapabilityError:
        return ModelCapabilityError(
            f"model {self.model} does not support embeddings — choose an embedding model, "
            f"for example `{DEFAULT_MODEL}`"
        )

    def _model_not_found(self, host: str) -> ModelNotFoundError:
        """The error for a model the server lacks: a likely misspelling lists what the server has
        (closest first) rather than telling the user to pull the typo."""
        suggestion = self._suggest_model(host)
        if suggestion:
            return ModelNotFoundError(f"model {self.model} is not on Ollama at {host} — {suggestion}")
        return ModelNotFoundError(
            f"model {self.model} is not pulled on Ollama at {host} — run "
            f"`ollama pull {self.model}` (or add --pull)"
        )

    def _suggest_model(self, host: str) -> str:
        """"did you mean `X`? It has: X, Y, Z" when the server has a model close to ours, else ""."""
        import difflib  # only for this error; a search spares the import

        wanted = self.model.lower()
        ranked = sorted(self._models_on(host),
                        key=lambda name: -difflib.SequenceMatcher(None, wanted, name.lower()).ratio())
        if not ranked or difflib.SequenceMatcher(None, wanted, ranked[0].lower()).ratio() < _CLOSE_MODEL_RATIO:
            return ""
        return f"did you mean `{ranked[0]}`? It has: {', '.join(ranked)}"

    def _models_on(self, host: str) -> list[str]:
        """Names of the models `GET /api/tags` lists on `host`; empty if it cannot tell."""
        try:
            listed = self._client(self.hosts.index(host) if host in self.hosts else 0).list()
        except Exception:  # only a hint for an error already being raised; never hide that error
            return []
        return [model.model for model in listed.models if model.model]

    def close(self) -> None:
        for sender in self._senders:
            sender.close()
        for client in self._clients or []:
            client.close()


def _in_band_error(exc: ValueError) -> object:
    """The error of Ollama's error object (`{"error": ...}`) when a 200 body the ollama client
    could not read was one, else None."""
    errors = getattr(exc, "errors", None)
    for error in (errors() if callable(errors) else []):
        body = error.get("input")
        if isinstance(body, dict) and body.get("error"):
            return body["error"]
    return None


def _model_info_value(model_info: dict[str, Any], suffix: str) -> int | None:
    """`<arch>.<suffix>` from /api/show's model_info, whatever the architecture is called."""
    arch = model_info.get("general.architecture")
    if arch and f"{arch}.{suffix}" in model_info:
        return int(model_info[f"{arch}.{suffix}"])
    for key, value in model_info.items():
        if key.endswith("." + suffix):
            return int(value)
    return None
