"""The indexing pipeline: walk → change detection → extract → chunk → cache lookup → embed → store.

Work is committed in batches, one SQLite transaction per batch, so an interrupted run keeps
everything committed before the interruption — on Ctrl-C or an embedder failure, also every
batch whose vectors had already arrived — and the next run continues from there (the
(size, mtime) and content-hash checks skip what is already stored). Chunk texts whose hash is
already stored reuse the stored vector, so an edit that touches one paragraph embeds about one
chunk. One bad file is reported and skipped; it never aborts the run.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semsearch.chunking import chunk, uses_code_chunker
from semsearch.embed.base import Embedder
from semsearch.embed_workers import EmbedWorkers
from semsearch.errors import EmbedderError, ExtractError, InputTooLongError, NoTextError
from semsearch.extract import extract, extract_text
from semsearch.extract.decoding import BINARY
from semsearch.options import DEFAULT_BATCH_TEXTS, ChunkSettings
from semsearch.paths import FileKeys, keys_prefix, under
from semsearch.sources import WalkIgnored, WalkSkip, walk
from semsearch.store import NewDocument, Store, StoredDocument, WriteResult
from semsearch.types import Chunk, Document, FileProblem, IndexReport, IndexSource, SourceFile, TextItem, embed_text

# Batches waiting for vectors at once. Ollama embeds one request at a time per model, so two keep
# it busy (one being embedded, the next queued) while this process prepares and commits others;
# a third absorbs pauses of this process on a busy machine.
DEFAULT_IN_FLIGHT = 3
_MIN_SPLIT_TOKENS = 16
# While waiting for vectors, how often progress is reported even if nothing arrived (seconds).
_PROGRESS_TICK = 0.25


@dataclass(frozen=True)
class Progress:
    """Where an indexing run is, reported as work happens (on the calling thread).

    First while the folders are scanned (`scanning` true, `files_scanned` growing, `files_total`
    not known yet), then after each file is read and chunked, each time vectors arrive from the
    embedder, and after each committed batch; at least every quarter second while waiting for
    the embedder. `files_total` counts the files needing work (new or changed); `files_done`
    those finished (committed, or skipped, failed, found unchanged). `chunks_queued` counts the
    chunks of the files read so far, `chunks_done` those of them that have a vector (embedded,
    or reused without embedding), `chunks_embedded` the texts the embedder has answered.
    """

    files_done: int
    files_total: int
    path: str
    chunks_embedded: int
    chunks_reused: int
    scanning: bool = False
    files_scanned: int = 0
    files_read: int = 0
    chunks_queued: int = 0
    chunks_done: int = 0


@dataclass
class _Pending:
    """A document extracted and chunked, waiting for vectors."""

    key: str  # the file's key (Store.file_key) or the text's id
    kind: str
    size: int
    mtime_ns: int
    sha256: str
    document: Document
    chunks: list[Chunk]
    max_tokens: int
    display: str
    existed: bool
    texts: tuple[str, ...] = ()  # what is sent to the embedder for each chunk
    hashes: tuple[str, ...] = ()  # their sha256, the embedding-cache key

    def __post_init__(self) -> None:
        self.set_chunks(self.chunks)

    def set_chunks(self, chunks: list[Chunk]) -> None:
        self.chunks = chunks
        self.texts = tuple(embed_text(c) for c in chunks)
        self.hashes = tuple(text_hash(t) for t in self.texts)


@dataclass
class _Batch:
    """Documents submitted together: cached vectors found, texts being embedded (`futures`, in
    order of `missing`), and texts an earlier in-flight batch embeds (`borrowed`)."""

    documents: list[_Pending]
    vectors: dict[str, np.ndarray]
    missing: list[str]
    borrowed: set[str]
    futures: list[Future]
    counted: bool = False  # tallied and being written: progress counts it as committed


@dataclass
class _Tally:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    skipped: int = 0
    ignored_files: int = 0  # left out by ignore files (an ignored folder counts once, unread)
    ignored_folders: int = 0
    embedded: int = 0
    reused: int = 0  # chunks given a vector without embedding: cached + duplicate
    duplicate: int = 0  # chunks whose text another chunk of this run has (embedded once)
    problems: list[FileProblem] = field(default_factory=list)




def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Ingester:
    """Runs indexing work against one store; `on_commit` is told of every committed write."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        settings: ChunkSettings,
        on_commit: Callable[[WriteResult], None],
        *,
        on_progress: Callable[[Progress], None] | None = None,
        batch_texts: int = DEFAULT_BATCH_TEXTS,
        in_flight: int = DEFAULT_IN_FLIGHT,
        rechunk_code: bool = False,
    ):
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.on_commit = on_commit
        self.on_progress = on_progress
        self.batch_texts = batch_texts
        self.rechunk_code = rechunk_code  # the code chunker changed: chunk its files again even if unchanged
        self._tally = _Tally()
        self.in_flight = max(1, in_flight)
        self._pending: list[_Pending] = []
        self._inflight: deque[_Batch] = deque()
        self._pool: EmbedWorkers | None = None
        self._files_done = 0
        self._files_total = 0
        self._planned: set[str] = set()  # file keys already planned in this run
        self._seen: set[str] = set()  # file keys any path of this run found: they did not vanish
        self._existing: dict[str, StoredDocument] = {}  # stored files under the folders walked
        self._files_scanned = 0
        self._files_read = 0
        self._chunks_queued = 0
        self._chunks_committed = 0
        self._scanning = False
        self._embedded_hashes: set[str] = set()  # texts embedded by this run, to tell duplicates from cache hits
        self._last_path = ""

    # -- entry points --------------------------------------------------------------------------

    def index_paths(
        self,
        paths: Sequence[Path | IndexSource],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        skip_dirs: Sequence[Path] = (),
        use_ignore_files: bool = True,
        keep: Callable[[str], bool] | None = None,
    ) -> IndexReport:
        """Bring the index up to date with files under `paths` (folders or single files), walked
        with `include`/`exclude` and the ignore files, or each with its own options when it is an
        IndexSource. A stored file under a walked folder vanished when no path found it, unless
        `keep(its key)` says it belongs elsewhere (another remembered source admits it)."""
        started = time.perf_counter()
        interrupted = False
        try:
            self._scanning = True
            self._emit("")
            roots = [p if isinstance(p, IndexSource) else IndexSource(Path(p), tuple(include), tuple(exclude),
                                                                      use_ignore_files) for p in paths]
            plans = [self._plan(root, skip_dirs) for root in roots]
            self._files_total = sum(len(changed) for changed in plans)
            self._scanning = False
            self._emit("")
            for changed in plans:
                for source, stored, key in changed:
                    self._process_file(source, stored, key)
                    if self._pending_texts() >= self.batch_texts:
                        self._flush()
            self._drain()
            # Deleted after the new files are written: a file renamed since the last run then finds
            # its chunks' vectors still stored (the embedding cache) instead of being embedded again.
            self._remove_vanished(keep)
        except KeyboardInterrupt:
            interrupted = True
            self._salvage()
        except EmbedderError as exc:
            if isinstance(exc, InputTooLongError):
                raise
            self._salvage()
            kept = self._tally.added + self._tally.updated
            raise type(exc)(
                f"{exc}. {kept} file{'s' if kept != 1 else ''} indexed before that "
                f"{'are' if kept != 1 else 'is'} kept; run the same command again to continue"
            ) from exc
        finally:
            self._stop()
        return self._report(time.perf_counter() - started, interrupted)

    def add_texts(self, items: Sequence[TextItem]) -> IndexReport:
        """Insert or replace caller-supplied texts, keyed by their ids; an id given twice keeps its last text."""
        started = time.perf_counter()
        # Two items with one id in one batch would both be written, the second replacing the
        # first's chunks inside the transaction while the first's vectors still reach FAISS.
        latest: dict[str, TextItem] = {}
        for item in items:
            latest.pop(item.id, None)
            latest[item.id] = item
        items = list(latest.values())
        self._files_total = len(items)
        try:
            self._add_texts(items)
        finally:
            self._stop()
        return self._report(time.perf_counter() - started, False)

    def _add_texts(self, items: Sequence[TextItem]) -> None:
        for item in items:
            data = item.text.encode("utf-8")
            sha = hashlib.sha256(data).hexdigest()
            existing = self.store.document(item.id, "text")
            if existing is not None and existing.sha256 == sha:
                self._tally.unchanged += 1
                continue
            document = extract_text(item.text)
            document = Document(
                text=document.text, title=item.title or document.title, extractor=document.extractor,
                headings=document.headings, source_lines=document.source_lines, metadata=dict(item.metadata),
            )
            self._queue(item.id, "text", len(data), 0, sha, document, item.id, existing is not None)
            if self._pending_texts() >= self.batch_texts:
                self._flush()
        self._drain()

    # -- planning ------------------------------------------------------------------------------

    def _plan(self, root: IndexSource, skip_dirs) -> list[tuple[SourceFile, StoredDocument | None, str]]:
        """Walk one path; note the documents under it and the files it found; return the files
        needing work with their stored documents and keys.

        A file is one document however it was reached, so a file already planned by an earlier
        path of this run is not planned again, and only documents under a walked path can vanish.
        """
        path = root.path
        if not path.exists():
            self._fail(str(path), "no such file or directory", advance=False)
            return []
        is_folder = path.is_dir()
        existing = self.store.files_in(path) if is_folder else {}
        self._existing.update(existing)
        prefix = keys_prefix(path, self.store.home) if is_folder else None
        keys = FileKeys(self.store.home)
        changed: list[tuple[SourceFile, StoredDocument | None, str]] = []
        for item in walk(path, include=root.include, exclude=root.exclude, skip_dirs=skip_dirs,
                         use_ignore_files=root.use_ignore_files):
            if isinstance(item, WalkIgnored):
                if item.is_dir:
                    self._tally.ignored_folders += 1
                else:
                    self._tally.ignored_files += 1
                continue
            if isinstance(item, WalkSkip):
                self._fail(item.problem.path, item.problem.reason, advance=False)
                continue
            key = keys.key(item.path)
            self._seen.add(key)
            if key in self._planned:
                continue
            self._planned.add(key)
            self._files_scanned += 1
            self._emit(str(item.path))
            stored = existing.get(key)
            if stored is None and (prefix is None or not under(key, prefix)):
                stored = self.store.document(key)  # reached through a symlink: stored outside this folder's keys
            if (stored is not None and stored.size == item.size and stored.mtime_ns == item.mtime_ns
                    and not self._rechunk(key)):
                self._tally.unchanged += 1
            else:
                changed.append((item, stored, key))
        return changed

    def _remove_vanished(self, keep: Callable[[str], bool] | None) -> None:
        """Delete the stored files under the walked folders that no path of this run found (gone,
        now excluded or ignored): one run over overlapping folders keeps what any of them found."""
        vanished = [doc.id for key, doc in self._existing.items()
                    if key not in self._seen and not (keep is not None and keep(key))]
        if vanished:
            self.on_commit(self.store.delete_documents(vanished))
            self._tally.removed += len(vanished)

    def _process_file(self, source: SourceFile, stored, key: str) -> None:
        display = str(source.path)
        try:
            data = source.path.read_bytes()
        except OSError as exc:
            self._fail(display, f"cannot read: {exc.strerror or exc}")
            return
        sha = hashlib.sha256(data).hexdigest()
        if stored is not None and stored.sha256 == sha and not self._rechunk(stored.path):
            self.store.update_stat(stored.id, source.size, source.mtime_ns)
            self._tally.unchanged += 1
            self._advance(display)
            return
        try:
            document = extract(source, data=data)
        except NoTextError as exc:
            self._skip(display, str(exc))
            self._forget(stored)
            return
        except ExtractError as exc:
            if str(exc) == BINARY:  # not a text file at all: skipped, as the walk skips other non-text files
                self._skip(display, str(exc))
            else:
                self._fail(display, str(exc))
            self._forget(stored)
            return
        if not document.text.strip():
            self._skip(display, "empty: no text to index")
            self._forget(stored)
            return
        self._queue(key, "file", source.size, source.mtime_ns, sha, document, display, stored is not None)

    def rechunked_all(self) -> bool:
        """Whether every stored source file the code chunker handles was chunked again by this run
        (a run over one folder leaves the others' files to a later run)."""
        return all(self.store.file_key(Path(f.path)) in self._planned
                   for f in self.store.file_stats() if uses_code_chunker(f.path))

    def _rechunk(self, key: str) -> bool:
        return self.rechunk_code and uses_code_chunker(key)

    def _queue(self, key, kind, size, mtime_ns, sha, document, display, existed) -> None:
        budget = self.settings.max_tokens
        pieces = chunk(document, max_tokens=budget, overlap_tokens=self.settings.overlap_tokens,
                       code=self.settings.code)
        self._pending.append(_Pending(key, kind, size, mtime_ns, sha, document, pieces, budget, display, existed))
        self._files_read += 1
        self._chunks_queued += len(pieces)
        self._emit(display)

    def _forget(self, stored) -> None:
        """A previously indexed file that now fails or is empty: its old chunks must not linger."""
        if stored is not None:
            self.on_commit(self.store.delete_documents([stored.id]))

    # -- embedding and committing --------------------------------------------------------------
    #
    # A batch is submitted as soon as it is chunked: its cached vectors are looked up and its
    # missing texts go to embedding threads, while this thread goes on reading, extracting and
    # chunking, and commits earlier batches (SQLite, then FAISS) as their vectors arrive. At most
    # `in_flight` batches wait for vectors, so memory stays bounded; commits keep input order.

    def _pending_texts(self) -> int:
        return sum(len(p.chunks) for p in self._pending)

    def _flush(self) -> None:
        """Submit the pending documents as one batch; commit the oldest while too many are in flight."""
        if self._pending:
            batch, self._pending = self._pending, []
            self._inflight.append(self._submit(batch))
        while len(self._inflight) > self.in_flight:
            self._commit_oldest()

    def _drain(self) -> None:
        self._flush()
        while self._inflight:
            self._commit_oldest()

    def _commit_oldest(self) -> None:
        # Left in `_inflight` until written, so an interruption before that can still salvage it.
        self._commit(self._inflight[0])
        self._inflight.popleft()

    def _submit(self, batch: list[_Pending]) -> _Batch:
        texts: dict[str, str] = {}
        for pending in batch:
            for text, digest in zip(pending.texts, pending.hashes):
                texts.setdefault(digest, text)
        found = self.store.cached_vectors(texts)
        # Texts an earlier, uncommitted batch is embedding already: read from the cache once it commits.
        borrowed = {h for earlier in self._inflight for h in earlier.missing if h in texts and h not in found}
        missing = [h for h in texts if h not in found and h not in borrowed]
        futures = []
        if missing:
            if self._pool is None:
                self._pool = EmbedWorkers(self.in_flight)
            futures = [
                self._pool.submit(self.embedder.embed, [texts[h] for h in part], "document")
                for part in (missing[i : i + self.batch_texts] for i in range(0, len(missing), self.batch_texts))
            ]
        return _Batch(batch, found, missing, borrowed, futures)

    def _commit(self, item: _Batch) -> None:
        self._await(item)
        try:
            embedded = [future.result() for future in item.futures]
        except InputTooLongError:
            embedded = None
        vectors = item.vectors
        if item.borrowed:
            vectors.update(self.store.cached_vectors(item.borrowed))
        if embedded is None or not item.borrowed.issubset(vectors):
            # Rare: a text was too long for the model (re-chunk its document and embed again), or
            # an earlier batch re-chunked a text this one expected from it.
            vectors, batch = self._vectors_for(item.documents)
        else:
            batch = item.documents
            vectors.update(zip(item.missing, (row for part in embedded for row in part)))
            self._count(batch, item.missing)
        item.counted = True
        self._write(batch, vectors)

    def _await(self, item: _Batch) -> None:
        """Wait for `item`'s vectors, reporting progress as any in-flight batch's vectors arrive."""
        while not all(future.done() for future in item.futures):
            waiting = [f for batch in self._inflight for f in batch.futures if not f.done()]
            wait(waiting, timeout=_PROGRESS_TICK, return_when=FIRST_COMPLETED)
            self._emit(self._last_path)

    def _salvage(self) -> None:
        """After an interruption or an embedder failure: commit, in order, every in-flight batch
        whose vectors have all arrived, so no finished embedding work is thrown away."""
        while self._inflight:
            item = self._inflight.popleft()
            if item.counted:  # it was being written: committed, or rolled back with the interruption
                continue
            if not all(f.done() and not f.cancelled() and f.exception() is None for f in item.futures):
                continue
            vectors = item.vectors
            if item.borrowed:
                vectors.update(self.store.cached_vectors(item.borrowed))
                if not item.borrowed.issubset(vectors):
                    continue  # an earlier batch that was to embed these texts did not finish
            vectors.update(zip(item.missing, (row for f in item.futures for row in f.result())))
            self._count(item.documents, item.missing)
            item.counted = True
            self._write(item.documents, vectors)

    def _count(self, batch: list[_Pending], embedded: Sequence[str]) -> None:
        """Tally a batch's chunks: embedded now, identical to another chunk of this run, or from the cache."""
        fresh = set(embedded)
        first: set[str] = set()
        for pending in batch:
            for digest in pending.hashes:
                if digest in fresh and digest not in first:
                    first.add(digest)
                elif digest in fresh or digest in self._embedded_hashes:
                    self._tally.duplicate += 1
                    self._tally.reused += 1
                else:
                    self._tally.reused += 1
        self._tally.embedded += len(fresh)
        self._embedded_hashes |= fresh

    def _write(self, batch: list[_Pending], vectors_by_hash: dict[str, np.ndarray]) -> None:
        documents = []
        for pending in batch:
            vectors = (
                np.stack([vectors_by_hash[h] for h in pending.hashes]) if pending.hashes
                else np.zeros((0, 1), np.float32)
            )
            documents.append(
                NewDocument(
                    path=pending.key, kind=pending.kind, size=pending.size, mtime_ns=pending.mtime_ns,
                    sha256=pending.sha256, title=pending.document.title, extractor=pending.document.extractor,
                    metadata=pending.document.metadata, chunks=tuple(pending.chunks), text_hashes=pending.hashes,
                    vectors=vectors, part_kind=pending.document.part_kind,
                )
            )
        result = self.store.write_documents(documents)
        self.on_commit(result)
        self._chunks_committed += sum(len(pending.chunks) for pending in batch)
        for pending in batch:
            if pending.existed:
                self._tally.updated += 1
            else:
                self._tally.added += 1
            self._advance(pending.display)

    def _stop(self) -> None:
        """Abandon embedding that was not committed (after an error or Ctrl-C)."""
        self._inflight.clear()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _vectors_for(self, batch: list[_Pending]) -> tuple[dict[str, np.ndarray], list[_Pending]]:
        """Vectors for every chunk of the batch: cached ones reused, the rest embedded.

        A text the model rejects as too long (our token count is an estimate) makes its document
        be chunked again with half the budget, until it fits; text is never dropped or cut.
        """
        while True:
            texts_by_hash: dict[str, str] = {}
            for pending in batch:
                for text, digest in zip(pending.texts, pending.hashes):
                    texts_by_hash.setdefault(digest, text)
            found = self.store.cached_vectors(texts_by_hash)
            missing = [h for h in texts_by_hash if h not in found]
            try:
                embedded = self.embedder.embed([texts_by_hash[h] for h in missing], "document")
            except InputTooLongError as exc:
                if exc.index is None:
                    raise
                batch = self._rechunk_offender(batch, texts_by_hash[missing[exc.index]])
                continue
            found.update(zip(missing, embedded))
            self._count(batch, missing)
            return found, batch

    def _rechunk_offender(self, batch: list[_Pending], text: str) -> list[_Pending]:
        kept = []
        for pending in batch:
            if text in pending.texts:
                budget = pending.max_tokens // 2
                if budget < _MIN_SPLIT_TOKENS:
                    self._fail(pending.display, "a passage is longer than the model's context even when split")
                    continue
                pending.set_chunks(chunk(pending.document, max_tokens=budget,
                                         overlap_tokens=min(self.settings.overlap_tokens, budget // 4),
                                         code=self.settings.code))
                pending.max_tokens = budget
            kept.append(pending)
        return kept

    # -- reporting -----------------------------------------------------------------------------

    def _fail(self, path: str, reason: str, *, advance: bool = True) -> None:
        self._tally.failed += 1
        self._tally.problems.append(FileProblem(path, reason))
        if advance:
            self._advance(path)

    def _skip(self, path: str, reason: str) -> None:
        self._tally.skipped += 1
        self._tally.problems.append(FileProblem(path, reason))
        self._advance(path)

    def _advance(self, path: str) -> None:
        self._files_done += 1
        self._emit(path)

    def _emit(self, path: str) -> None:
        self._last_path = path or self._last_path
        if self.on_progress is None:
            return
        arrived = ready = 0  # texts whose vectors came back; chunks of batches with all their vectors
        for batch in self._inflight:
            if batch.counted:
                continue
            texts = sum(len(f.result()) for f in batch.futures
                        if f.done() and not f.cancelled() and f.exception() is None)
            chunks = sum(len(pending.chunks) for pending in batch.documents)
            arrived += texts
            ready += chunks if texts == len(batch.missing) else min(texts, chunks)
        self.on_progress(Progress(
            files_done=self._files_done, files_total=self._files_total, path=self._last_path,
            chunks_embedded=self._tally.embedded + arrived, chunks_reused=self._tally.reused,
            scanning=self._scanning, files_scanned=self._files_scanned, files_read=self._files_read,
            chunks_queued=self._chunks_queued,
            chunks_done=min(self._chunks_queued, self._chunks_committed + ready),
        ))

    def _report(self, seconds: float, interrupted: bool) -> IndexReport:
        t = self._tally
        total = self.store.counts()[1]
        return IndexReport(
            files_added=t.added, files_updated=t.updated, files_unchanged=t.unchanged, files_removed=t.removed,
            files_failed=t.failed, files_skipped=t.skipped, chunks_embedded=t.embedded, chunks_reused=t.reused,
            files_ignored=t.ignored_files, folders_ignored=t.ignored_folders,
            chunks_total=total, seconds=seconds, problems=tuple(t.problems),
            interrupted=interrupted, chunks_duplicate=t.duplicate,
            chunks_kept=max(0, total - t.embedded - t.reused),
        )
