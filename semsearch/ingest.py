"""The indexing pipeline: walk → change detection → extract → chunk → cache lookup → store → embed.

Indexing is two-phase. The text phase commits each batch of documents (text, metadata, keyword
terms) in one SQLite transaction as soon as they are chunked, so keyword search finds them at
once; a chunk whose text is already stored reuses the stored vector (an edit that touches one
paragraph embeds about one chunk), the others are committed pending. The vector phase
(`semsearch.backfill`) embeds the pending chunks meanwhile; the vectors that arrived are
committed with the next batch, in its transaction. An interrupted run commits every file
read and every vector that arrived, and keeps everything committed; an embedder failure stops
only the vector phase, so the text phase still completes; the next run continues from there (the (size, mtime) and content-hash checks skip what is
stored, and every pending chunk is embedded, even when no file changed). One bad file is
reported and skipped; it never aborts the run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from semsearch.backfill import Backfill
from semsearch.chunking import chunk, uses_code_chunker
from semsearch.embed.base import Embedder
from semsearch.errors import ExtractError, InputTooLongError, NoTextError
from semsearch.extract import extract, extract_text
from semsearch.extract.decoding import BINARY
from semsearch.options import DEFAULT_BATCH_TEXTS, ChunkSettings
from semsearch.paths import FileKeys, keys_prefix, under
from semsearch.sources import WalkIgnored, WalkSkip, walk
from semsearch.store import NewDocument, PendingChunk, Store, StoredDocument, WriteResult
from semsearch.tokens import estimate_tokens
from semsearch.types import Chunk, Document, FileProblem, IndexReport, IndexSource, SourceFile, TextItem, embed_text

if TYPE_CHECKING:
    import numpy as np

# Embedding requests waiting at once. Ollama embeds one request at a time per model, so two keep
# it busy (one being embedded, the next queued) while this process prepares and commits others;
# a third absorbs pauses of this process on a busy machine.
DEFAULT_IN_FLIGHT = 3
_MIN_SPLIT_TOKENS = 16
# A file read is committed for keyword search within this many seconds even while its batch is
# not full (a slow extractor, a folder of large PDFs).
_TEXT_COMMIT_SECONDS = 1.0


@dataclass(frozen=True)
class Progress:
    """Where an indexing run is, reported as work happens (on the calling thread).

    First while the folders are scanned (`scanning` true, `files_scanned` growing, `files_total`
    not known yet), then after each file is read and chunked, each time vectors are committed,
    and after each committed batch; at least every quarter second while waiting for the
    embedder. `files_total` counts the files needing work (new or changed); `files_done` those
    finished (committed for keyword search — their vectors may follow —, or skipped, failed,
    found unchanged). `chunks_queued` counts the chunks needing a vector: those of the files
    read so far plus those an earlier run left pending; `chunks_done` those of them that have
    one (embedded, or reused without embedding), `chunks_embedded` the texts the embedder has
    answered.
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
    """A document extracted and chunked, waiting to be committed (its vectors follow)."""

    key: str  # the file's key (Store.file_key) or the text's id
    kind: str
    size: int
    mtime_ns: int
    sha256: str
    document: Document
    chunks: list[Chunk]
    display: str
    existed: bool
    # Per chunk, the text the embedder is given and its sha256: the embedding-cache key.
    texts: tuple[str, ...] = field(init=False)
    hashes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.texts = tuple(embed_text(c) for c in self.chunks)
        self.hashes = tuple(text_hash(text) for text in self.texts)


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
    reused: int = 0  # chunks given a vector from the cache when their text was committed
    problems: list[FileProblem] = field(default_factory=list)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Ingester:
    """Runs indexing work against one store; `on_commit` is told of every committed write.

    `embedder` is called for the embedder when the first text is to be embedded, on an embedding
    thread: making one may import a provider's client, and the text phase need not wait for it.
    """

    def __init__(
        self,
        store: Store,
        embedder: Callable[[], Embedder],
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
        self._pending: list[_Pending] = []  # read and chunked, not committed yet
        # A batch whose texts were sent ahead, with the vectors the cache had: committed at the next flush.
        self._staged: tuple[list[_Pending], dict[str, np.ndarray]] | None = None
        self._ahead = True  # send ahead: the last batch sent ahead got all its vectors, or the embedder is idle
        self._backfill = Backfill(store, embedder, on_commit, rechunk=self._rechunk, batch_texts=batch_texts,
                                  in_flight=in_flight)
        self._texts: dict[str, TextItem] = {}  # add_texts: the items, should a text need chunking again
        self._flushed_at = time.monotonic()
        self._files_done = 0
        self._files_total = 0
        self._planned: set[str] = set()  # file keys already planned in this run
        self._seen: set[str] = set()  # file keys any path of this run found: they did not vanish
        self._existing: dict[str, StoredDocument] = {}  # stored files under the folders walked
        self._files_scanned = 0
        self._files_read = 0
        self._chunks_queued = store.count_pending()  # an earlier run's pending chunks are embedded too
        self._chunks_done = 0  # chunks given a vector from the cache (filled ones: `Backfill.filled`)
        self._scanning = False
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
                    if (self._pending_texts() >= self.batch_texts
                            or time.monotonic() - self._flushed_at >= _TEXT_COMMIT_SECONDS):
                        self._flush()
                    elif self._backfill.busy:
                        self._backfill.feed()
            self._flush(last=True)
            self._backfill.drain(lambda: self._emit(self._last_path))
            self._raise_failure("file")
            # Deleted after the new files are written and embedded: a file renamed since the last run
            # then finds its chunks' vectors still stored (the embedding cache) instead of being embedded again.
            self._remove_vanished(keep)
        except KeyboardInterrupt:
            interrupted = True
            self._commit_read()
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
        self._texts = latest
        self._files_total = len(items)
        try:
            self._add_texts(items)
            self._raise_failure("text")
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
            self._queue(item.id, "text", len(data), 0, sha, self._text_document(item), item.id, existing is not None)
            if self._pending_texts() >= self.batch_texts:
                self._flush()
        self._flush(last=True)
        self._backfill.drain(lambda: self._emit(self._last_path))

    @staticmethod
    def _text_document(item: TextItem) -> Document:
        document = extract_text(item.text)
        return Document(
            text=document.text, title=item.title or document.title, extractor=document.extractor,
            headings=document.headings, source_lines=document.source_lines, metadata=dict(item.metadata),
        )

    def _raise_failure(self, noun: str) -> None:
        """After the text phase: the embedder's failure, if the vector phase stopped on one, saying what is kept."""
        exc = self._backfill.failure
        if exc is None:
            return
        if isinstance(exc, InputTooLongError):
            raise exc
        self._backfill.commit_answers()  # what arrived before the failure is kept
        kept = self._tally.added + self._tally.updated
        pending, total = self.store.count_pending(), self.store.counts()[1]
        raise type(exc)(
            f"{exc}. {kept} {noun}{'s' if kept != 1 else ''} indexed {'are' if kept != 1 else 'is'} kept and "
            f"searchable by keyword; {pending:,} of {total:,} chunks wait for embeddings — "
            f"{'run the same command' if noun == 'file' else 'add the texts'} again to embed them"
        ) from exc

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
                    and not self._rechunk_code(key)):
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
        if stored is not None and stored.sha256 == sha and not self._rechunk_code(stored.path):
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

    def _rechunk_code(self, key: str) -> bool:
        return self.rechunk_code and uses_code_chunker(key)

    def _queue(self, key, kind, size, mtime_ns, sha, document, display, existed) -> None:
        pieces = chunk(document, max_tokens=self.settings.max_tokens, overlap_tokens=self.settings.overlap_tokens,
                       code=self.settings.code)
        self._pending.append(_Pending(key, kind, size, mtime_ns, sha, document, pieces, display, existed))
        self._files_read += 1
        self._chunks_queued += len(pieces)
        self._emit(display)

    def _forget(self, stored) -> None:
        """A previously indexed file that now fails or is empty: its old chunks must not linger."""
        if stored is not None:
            self.on_commit(self.store.delete_documents([stored.id]))

    # -- the text phase: committing chunks, their vectors to follow -----------------------------
    #
    # Documents are committed in batches of about `batch_texts` chunks (or after _TEXT_COMMIT_SECONDS),
    # each chunk with its vector when the embedding cache has one and pending otherwise; `Backfill`
    # embeds the pending chunks while this thread goes on reading, extracting and chunking. While the
    # embedder has room, a batch's texts are sent as it is read and the batch is committed one flush
    # later, with the vectors that came back by then (a row written once instead of twice).

    def _pending_texts(self) -> int:
        return sum(len(p.chunks) for p in self._pending)

    def _flush(self, *, last: bool = False) -> None:
        """Commit the documents read so far (text, metadata, keyword terms; cached vectors) with
        the vectors the embedder answered since the last commit. Unless `last`, the batch just
        read is held to the next flush when its texts could be sent ahead."""
        batch, self._pending = self._pending, []
        if self._staged is not None:
            staged, cached = self._staged
            self._staged = None
            if last:  # one transaction for both
                staged, cached, batch = staged + batch, None, []
            # Vectors late for their batch: the embedder is slower than reading, so later batches are
            # committed at once for keyword search, until it has caught up.
            self._ahead = self._commit(staged, self._backfill.take_answers(), cached)
        elif last or not batch:
            self._commit(batch, self._backfill.take_answers())
            batch = []
        if batch:
            cached = self.store.cached_vectors(h for pending in batch for h in pending.hashes)
            texts = {h: text for pending in batch for h, text in zip(pending.hashes, pending.texts) if h not in cached}
            self._ahead = self._ahead or self._backfill.idle
            if self._ahead and self._backfill.send_ahead(texts):
                self._staged = (batch, cached)
            else:  # the embedder is behind: commit the text now, its vectors follow
                self._commit(batch, self._backfill.take_answers(), cached)
        self._flushed_at = time.monotonic()
        self._backfill.feed()

    def _commit_read(self) -> None:
        """After Ctrl-C: commit every file read so far and every vector that has arrived, in one
        transaction (a second Ctrl-C during it rolls it back: what was committed before stays)."""
        staged = self._staged[0] if self._staged is not None else []
        batch, self._pending, self._staged = staged + self._pending, [], None
        self._commit(batch, self._backfill.take_answers())

    def _commit(self, batch: list[_Pending], answers: dict[str, np.ndarray] | None,
                cached: dict[str, np.ndarray] | None = None) -> bool:
        """Write `batch` with `answers` (or commit the answers alone); returns whether every chunk
        of the batch got its vector."""
        if not batch:
            if answers:
                self._backfill.commit_answers(answers)
            return True
        reused, complete = self._write(batch, answers, cached)
        self._tally.reused += reused
        self._chunks_done += reused
        for pending in batch:
            if pending.existed:
                self._tally.updated += 1
            else:
                self._tally.added += 1
            self._advance(pending.display)
        return complete

    def _write(self, batch: list[_Pending], answers: dict[str, np.ndarray] | None = None,
               cached: dict[str, np.ndarray] | None = None) -> tuple[int, bool]:
        """Write documents in one transaction, with `answers` (the embedder's, by text hash) for
        their chunks and the chunks earlier batches left pending; returns how many chunks of
        `batch` got a vector from the cache (`cached`: the cache's vectors for the batch, if
        already looked up; texts neither there nor in `answers` are looked up again), and
        whether every chunk got one."""
        answers = answers or {}
        hashes = [h for pending in batch for h in pending.hashes]
        if cached is None:
            cached = self.store.cached_vectors(hashes)
        else:
            missing = [h for h in hashes if h not in cached and h not in answers]
            if missing:
                cached = {**cached, **self.store.cached_vectors(missing)}
        documents = [
            NewDocument(
                path=pending.key, kind=pending.kind, size=pending.size, mtime_ns=pending.mtime_ns,
                sha256=pending.sha256, title=pending.document.title, extractor=pending.document.extractor,
                metadata=pending.document.metadata, chunks=tuple(pending.chunks), text_hashes=pending.hashes,
                vectors=[cached[h] if h in cached else answers.get(h) for h in pending.hashes],
                part_kind=pending.document.part_kind,
            )
            for pending in batch
        ]
        result = self.store.write_documents(documents, fill=answers or None)
        self.on_commit(result)
        reused = sum(h in cached for h in hashes)
        answered = sum(h not in cached and h in answers for h in hashes)
        if answers:
            self._backfill.filled_in(answers, result.filled + answered)
        complete = reused + answered == len(hashes)
        if not complete:
            self._backfill.note_pending()
        return reused, complete

    def _rechunk(self, offender: PendingChunk) -> bool:
        """The model rejected a pending chunk as too long (our token count is an estimate): chunk its
        document again with half that chunk's budget, until it fits; text is never dropped or cut.
        Returns False when the document cannot be read as it was (changed since: the next run
        re-indexes it)."""
        stored = offender.document
        display = stored.path
        budget = min(self.settings.max_tokens, estimate_tokens(offender.text)) // 2
        if budget < _MIN_SPLIT_TOKENS:
            self._fail(display, "a passage is longer than the model's context even when split", advance=False)
            self.on_commit(self.store.delete_documents([stored.id]))
            return True
        document = self._reread(offender)
        if document is None:
            self._tally.problems.append(FileProblem(display, "changed while it was indexed; run the same command "
                                                             "again to index it"))
            return False
        pieces = chunk(document, max_tokens=budget, overlap_tokens=min(self.settings.overlap_tokens, budget // 4),
                       code=self.settings.code)
        self._chunks_queued += len(pieces) - len(self.store.document_chunks(stored.id))
        key = stored.path if offender.kind == "text" else self.store.file_key(Path(stored.path))
        reused, _ = self._write([_Pending(key, offender.kind, stored.size, stored.mtime_ns, stored.sha256,
                                          document, pieces, display, True)])
        self._chunks_done += reused
        return True

    def _reread(self, offender: PendingChunk) -> Document | None:
        """The document of a pending chunk as it was committed: a text of this call, or the file if unchanged."""
        stored = offender.document
        if offender.kind == "text":
            item = self._texts.get(stored.path)
            return self._text_document(item) if item is not None else None
        path = Path(stored.path)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != stored.sha256:
            return None
        try:
            return extract(SourceFile(path, path.parent, path.name, stored.size, stored.mtime_ns), data=data)
        except ExtractError:
            return None

    def _stop(self) -> None:
        """Abandon embedding that was not committed (after an error or Ctrl-C)."""
        self._backfill.stop()

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
        backfill = self._backfill
        self.on_progress(Progress(
            files_done=self._files_done, files_total=self._files_total, path=self._last_path,
            chunks_embedded=backfill.embedded,
            chunks_reused=self._tally.reused + backfill.shared,
            scanning=self._scanning, files_scanned=self._files_scanned, files_read=self._files_read,
            chunks_queued=self._chunks_queued,
            chunks_done=min(self._chunks_queued, self._chunks_done + backfill.filled),
        ))

    def _report(self, seconds: float, interrupted: bool) -> IndexReport:
        t, backfill = self._tally, self._backfill
        total, pending = self.store.counts()[1], self.store.count_pending()
        duplicate = backfill.shared
        return IndexReport(
            files_added=t.added, files_updated=t.updated, files_unchanged=t.unchanged, files_removed=t.removed,
            files_failed=t.failed, files_skipped=t.skipped, chunks_embedded=backfill.embedded,
            files_ignored=t.ignored_files, folders_ignored=t.ignored_folders,
            chunks_reused=t.reused + duplicate, chunks_total=total, seconds=seconds, problems=tuple(t.problems),
            interrupted=interrupted, chunks_duplicate=duplicate, chunks_pending=pending,
            chunks_kept=max(0, total - backfill.embedded - t.reused - duplicate - pending),
        )
