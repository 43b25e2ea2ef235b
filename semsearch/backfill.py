"""The vector phase of indexing: embed the chunks stored without a vector and fill their vectors in.

Indexing is two-phase (DESIGN §2 invariant 0): `semsearch.ingest` commits a file's text,
metadata and keyword terms as soon as it is chunked, its chunks pending; `Backfill` reads the
pending chunks back from SQLite in id order and sends their distinct texts to embedding threads
(`semsearch.embed_workers`). The answers are committed with the text phase's next batch, in its
transaction (`take_answers`), or in their own once no text is left to write; either way the
vector goes to every pending chunk with that text. Working from SQLite rather than from memory, it
embeds what an earlier, interrupted run left pending exactly as it embeds this run's chunks,
and memory stays bounded however far the text phase runs ahead of a slow embedder.

While the embedder keeps up, the text phase sends a batch's texts as the batch is read
(`send_ahead`) and commits the batch at its next write with the vectors that came back by then:
each row is written once, with its vector, and is never read back as pending. A batch whose
vectors are late is committed pending all the same, and filled in as above.

An embedder failure stops the vector phase only (`failure`); the text phase goes on, so an
outage leaves keyword search complete and the next run embeds what is still pending.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

from semsearch.embed.base import Embedder
from semsearch.embed_workers import EmbedWorkers
from semsearch.errors import EmbedderError, InputTooLongError
from semsearch.store import PendingChunk, Store, WriteResult

if TYPE_CHECKING:
    import numpy as np

# While waiting for vectors, how often the caller hears of it even if nothing arrived (seconds).
PROGRESS_TICK = 0.25


@dataclass
class _Request:
    """Distinct texts sent to the embedder in one call, by text hash, with a chunk of each."""

    future: Future
    # A committed chunk of each text, or None for a text sent ahead of its batch's commit.
    chunks: dict[str, PendingChunk | None]


class Backfill:
    """Embeds pending chunks, at most `in_flight` requests of `batch_texts` texts at a time.

    `embedder` is called for the embedder on the first embedding thread that needs it.
    `on_commit` is told of every transaction this class commits to fill vectors in (FAISS
    follows it); answers taken by the caller (`take_answers`) are the caller's to commit.
    `rechunk(chunk)` is called when the model rejects `chunk`'s text as too long: it returns
    whether the chunk's document was chunked again smaller (its new chunks are pending, and
    picked up here); when it was not, the text is left pending for a later run.
    """

    def __init__(self, store: Store, embedder: Callable[[], Embedder], on_commit: Callable[[WriteResult], None], *,
                 rechunk: Callable[[PendingChunk], bool], batch_texts: int, in_flight: int):
        self.store = store
        self._make_embedder = embedder
        self._embedder: Embedder | None = None
        self._embedder_lock = threading.Lock()
        self.on_commit = on_commit
        self.rechunk = rechunk
        self.batch_texts = batch_texts
        self.in_flight = max(1, in_flight)
        self.failure: EmbedderError | None = None
        self.embedded = 0  # texts the embedder answered (each distinct text once)
        self.filled = 0  # chunks given a vector (identical texts share one embedding)
        self._requests: list[_Request] = []
        self._sent: set[str] = set()  # text hashes of the requests in flight and of the answers not committed
        # Vectors that arrived, by text hash, waiting for the text phase's next write: a transaction
        # of their own per answer cost as much again as the text phase with a fast embedder.
        self._answers: dict[str, np.ndarray] = {}
        self._skipped: set[str] = set()  # texts that cannot be embedded in this run
        self._cursor = 0  # pending chunks up to this id were sent or skipped
        self._unread = True  # pending chunks past the cursor may exist (`note_pending`)
        self._pool: EmbedWorkers | None = None

    @property
    def busy(self) -> bool:
        return bool(self._requests)

    @property
    def idle(self) -> bool:
        """No request is still with the embedder (answers that came back are kept for the next write)."""
        self._collect(commit=False)
        return not self._requests

    @property
    def shared(self) -> int:
        """Chunks filled with the one embedding of a text another chunk also has (not embedded themselves)."""
        return max(0, self.filled - self.embedded)

    def send_ahead(self, texts: dict[str, str]) -> bool:
        """Send the texts (by text hash) of a batch about to be committed, those not sent already,
        if the embedder has room for all of them now; returns whether none is left unsent. Their
        vectors come back through `take_answers`, for the batch's own write."""
        if self.failure is not None:
            return False
        todo = [(h, text) for h, text in texts.items() if h not in self._sent and h not in self._skipped]
        if len(self._requests) + -(-len(todo) // self.batch_texts) > self.in_flight:
            return False
        for start in range(0, len(todo), self.batch_texts):
            part = todo[start : start + self.batch_texts]
            self._submit({h: None for h, _ in part}, [text for _, text in part])
        return True

    def note_pending(self) -> None:
        """A write committed chunks without their vector: read them back to embed them."""
        self._unread = True

    def feed(self) -> None:
        """Keep the vectors that arrived for the next write, and send more pending chunks while
        there is room; never waits."""
        self._collect(commit=False)
        self._send()

    def take_answers(self) -> dict[str, np.ndarray]:
        """The vectors that arrived and are not committed, by text hash, for the caller to commit
        with its own write (`Store.write_documents(fill=...)`), then to report with `filled_in`."""
        self._collect(commit=False)
        answers, self._answers = self._answers, {}
        return answers

    def filled_in(self, answers: dict[str, np.ndarray], filled: int) -> None:
        """The caller committed `answers` (from `take_answers`), which gave `filled` chunks a vector."""
        self._sent.difference_update(answers)
        self.filled += filled

    def commit_answers(self, answers: dict[str, np.ndarray] | None = None) -> None:
        """Commit the vectors that arrived (or `answers`, taken already) in a transaction of their own."""
        answers = self.take_answers() if answers is None else answers
        if answers:
            result = self.store.fill_vectors(answers)
            self.on_commit(result)
            self.filled_in(answers, result.filled)

    def drain(self, tick: Callable[[], None]) -> None:
        """Embed until no chunk is pending (or the embedder failed), calling `tick` at least every PROGRESS_TICK s."""
        self.commit_answers()
        while True:
            self._send()
            if not self._requests:
                return
            wait([r.future for r in self._requests], timeout=PROGRESS_TICK, return_when=FIRST_COMPLETED)
            self._collect()
            tick()

    def stop(self) -> None:
        """Abandon the requests still with the embedder (after an error or Ctrl-C)."""
        self._requests.clear()
        self._sent.clear()
        self._answers.clear()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _send(self) -> None:
        exhausted = not self._unread  # read every pending chunk past the cursor: asking again finds none
        while not exhausted and self.failure is None and len(self._requests) < self.in_flight:
            batch: dict[str, PendingChunk] = {}
            while len(batch) < self.batch_texts:
                rows = self.store.pending_chunks(self._cursor, self.batch_texts)
                for row in rows:
                    if len(batch) >= self.batch_texts:
                        break
                    self._cursor = row.chunk_id
                    if row.text_hash not in self._sent and row.text_hash not in self._skipped:
                        batch.setdefault(row.text_hash, row)
                if len(rows) < self.batch_texts:
                    exhausted = True
                    self._unread = False
                    break
            if not batch:
                return
            self._submit(batch, [row.text for row in batch.values()])

    def _submit(self, chunks: dict[str, PendingChunk | None], texts: list[str]) -> None:
        if self._pool is None:
            self._pool = EmbedWorkers(self.in_flight)
        self._requests.append(_Request(self._pool.submit(self._embed, texts), chunks))
        self._sent.update(chunks)

    def _embed(self, texts: list[str]):
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = self._make_embedder()
        return self._embedder.embed(texts, "document")

    def _collect(self, *, commit: bool = True) -> None:
        """Gather the answered requests' vectors and, with `commit`, commit them (one transaction);
        note a failure and stop sending."""
        for request in [r for r in self._requests if r.future.done()]:
            self._requests.remove(request)
            try:
                vectors = request.future.result()
            except InputTooLongError as exc:
                self._sent.difference_update(request.chunks)
                if exc.index is None:
                    self._fail(exc)
                    continue
                offender = list(request.chunks.values())[exc.index]
                # A text sent ahead is chunked again once its chunk is committed, read back and refused again.
                if offender is not None and not self.rechunk(offender):
                    self._skipped.add(offender.text_hash)
                self._cursor = 0  # the request's other texts are pending again
                self._unread = True
                continue
            except EmbedderError as exc:
                self._sent.difference_update(request.chunks)
                self._fail(exc)
                continue
            self._answers.update(zip(request.chunks, vectors))
            self.embedded += len(request.chunks)
        if commit:
            self.commit_answers()

    def _fail(self, error: EmbedderError) -> None:
        if self.failure is None:
            self.failure = error
        # Answers already here are still committed by the caller (`commit_answers`); the rest is abandoned.
        for request in [r for r in self._requests if not r.future.done()]:
            self._requests.remove(request)
            self._sent.difference_update(request.chunks)
