"""Keeping an index current: `watch` indexes folders, then follows their file-system events and
applies them in debounced batches (`WatchBatch`); `awatch` is the same for asyncio code.

Events come from `watchfiles` (inotify, FSEvents, ReadDirectoryChangesW through the Rust
`notify` crate). They are only a trigger: each batch re-walks the folders that had events (when
watching the remembered sources, every one of them, each with its own options) with the same
walk, globs and change detection as `index` (stat first, then content hash), so what
is indexed never depends on which events arrived, in which order, or whether the platform
coalesced them — a burst of thousands of saves or a `git checkout` becomes one rescan, and
events that arrive while a batch is being applied wait in the watcher and form the next one.

A batch writes new and changed files before it deletes vanished ones, so a renamed file finds
its chunks' vectors still stored and embeds nothing. The write lock is taken per batch (other
writers get their turn between batches; a batch waits for theirs), while `WatchMarker` is held
for the whole run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semsearch.errors import (
    ConfigError,
    IndexLockedError,
    IndexReadOnlyError,
    InvalidInputError,
    SemsearchError,
    SourceNotFoundError,
)
from semsearch.options import DEFAULT_DEBOUNCE_MS
from semsearch.types import FileProblem, IndexReport
from semsearch.write_lock import WatchMarker

if TYPE_CHECKING:
    import asyncio

    from semsearch.index import Index

# Quiet time that ends a batch: editors and `git checkout` write in bursts with short pauses.
# The longest a batch keeps gathering events while they keep coming, so a long copy shows progress.
MAX_BATCH_WAIT_MS = 1600
# Texts per commit while watching: a burst of small files becomes a few transactions, not dozens.
WATCH_BATCH_TEXTS = 256
# How often the idle watcher wakes up (ms): the first wake-up says it is in place.
_IDLE_TICK_MS = 250
# How often a batch waiting for another writer's lock tries again (seconds).
_LOCK_RETRY = 0.2


@dataclass(frozen=True)
class WatchBatch:
    """One batch of changes applied by `watch` (number 0 is the initial indexing run).

    `changes` counts the file-system events that triggered it; `generation` is the index's
    generation after it (it grows by one per committed transaction); `seconds` is the time spent
    applying it.
    """

    number: int
    files_added: int
    files_updated: int
    files_removed: int
    files_failed: int
    chunks_embedded: int
    chunks_reused: int
    seconds: float
    generation: int
    changes: int = 0
    problems: tuple[FileProblem, ...] = field(default=())

    @classmethod
    def from_report(cls, number: int, report: IndexReport, generation: int, changes: int) -> WatchBatch:
        return cls(number=number, files_added=report.files_added, files_updated=report.files_updated,
                   files_removed=report.files_removed, files_failed=report.files_failed,
                   chunks_embedded=report.chunks_embedded, chunks_reused=report.chunks_reused,
                   seconds=report.seconds, generation=generation, changes=changes, problems=report.problems)

    @property
    def changed(self) -> bool:
        """Whether the batch changed the index (or failed on a file): worth telling the user."""
        return bool(self.files_added or self.files_updated or self.files_removed or self.files_failed)

    def summary(self) -> str:
        """One line for people: `+3 ~1 -2 files, 14 chunks embedded, 0.8 s`."""
        line = (f"+{self.files_added} ~{self.files_updated} -{self.files_removed} files, "
                f"{self.chunks_embedded} chunks embedded, {self.seconds:.1f} s")
        return line + (f", {self.files_failed} failed" if self.files_failed else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": self.number, "files_added": self.files_added, "files_updated": self.files_updated,
            "files_removed": self.files_removed, "files_failed": self.files_failed,
            "chunks_embedded": self.chunks_embedded, "chunks_reused": self.chunks_reused,
            "seconds": round(self.seconds, 3), "generation": self.generation, "changes": self.changes,
            "problems": [{"path": p.path, "reason": p.reason} for p in self.problems],
        }


def watch_index(
    self: Index,
    paths: Iterable[str | Path] | None = None,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    use_ignore_files: bool = True,
    on_batch: Callable[[WatchBatch], None] | None = None,
    stop_event: threading.Event | None = None,
    debounce_ms: int = DEFAULT_DEBOUNCE_MS,
) -> None:
    """`Index.watch`: index `paths` (default: the sources the index remembers, each with its own
    options), then keep them current — creates, edits, deletes, renames — until `stop_event` is
    set, or Ctrl-C (KeyboardInterrupt once committed work is safe).

    `include`, `exclude` and `use_ignore_files` are those of `Index.index`, and like it `watch`
    remembers the paths it is given. `on_batch` gets a `WatchBatch` for the initial run and for
    every batch that changed something; `debounce_ms` is the quiet time that ends a batch. Raises
    SourceNotFoundError with no `paths` when the index remembers none, IndexLockedError when
    another `watch` keeps this index current or another process is writing as it starts.
    """
    writer = _writer(self)
    try:
        if paths is None:
            sources = [source for source in writer.sources() if source.exists]
            if not sources:
                raise SourceNotFoundError(
                    f"the index at {self.path} remembers no folder to watch — name one (`semsearch watch FOLDER`); "
                    "it is remembered, so later `semsearch watch` alone follows it again")
            roots = [source.path for source in sources]

            def run(touched: list[Path]) -> IndexReport:
                return writer.refresh(batch_texts=WATCH_BATCH_TEXTS)  # each source with its own options
        else:
            roots = list(paths)

            def run(touched: list[Path]) -> IndexReport:
                return writer.index(touched, include=include, exclude=exclude, use_ignore_files=use_ignore_files,
                                    batch_texts=WATCH_BATCH_TEXTS)
        watch(writer, roots, run, writer._store.generation, on_batch=on_batch, stop_event=stop_event,
              debounce_ms=debounce_ms)
    finally:
        if writer._embedder is self._embedder:
            writer._embedder = None  # the caller's own: closed with the caller's Index
        writer.close()


def _writer(index: Index) -> Index:
    """A second handle on `index`'s directory for watch to write through, as `serve` has: the
    caller may go on searching `index` from other threads, and no search scans vectors while
    they change (it sees each committed batch by its generation)."""
    from semsearch.index import Index
    from semsearch.write_lock import open_store

    return Index(index.path, open_store(index.path, create=False), index._embedder, index._settings,
                 index.rebuild_policy)


async def awatch_index(self: Index, paths: Iterable[str | Path] | None = None, *,
                       stop_event: asyncio.Event | None = None, **options: Any) -> None:
    """`Index.awatch`: `Index.watch` for asyncio code, until `stop_event` (an asyncio.Event) is set
    or the task is cancelled; `on_batch` runs on the event loop (a coroutine function is awaited)."""
    import asyncio

    stop = threading.Event()
    on_batch = options.pop("on_batch", None)
    worker = asyncio.ensure_future(asyncio.to_thread(watch_index, self, paths, stop_event=stop,
                                                     on_batch=_on_loop(on_batch), **options))
    await _until_stopped(worker, stop, stop_event)


def watch(
    index: Index,
    paths: Iterable[str | Path],
    run: Callable[[list[Path]], IndexReport],
    generation: Callable[[], int],
    *,
    on_batch: Callable[[WatchBatch], None] | None = None,
    stop_event: threading.Event | None = None,
    debounce_ms: int = DEFAULT_DEBOUNCE_MS,
) -> None:
    """Index `paths` (folders or files) with `run`, then run it again on those with changes as they
    happen until `stop_event` is set; `on_batch` is told of the initial run and of every batch that
    changed something.

    `generation` reads the index's generation. Ctrl-C raises KeyboardInterrupt once committed
    work is safe. Raises IndexReadOnlyError for a read-only index, InvalidInputError for a path
    that does not exist, ConfigError when the watcher cannot start (inotify limits),
    IndexLockedError when another `watch` keeps this index current (or, for the initial run,
    another process is writing), and what `run` raises.
    """
    roots = [Path(p).expanduser().resolve() for p in paths]
    if index.read_only:
        raise IndexReadOnlyError(f"cannot watch into the index at {index.path}: it is read-only (this process "
                                 "cannot write to its directory) — point -i/--index at a writable one")
    for root in roots:
        if not root.exists():
            raise InvalidInputError(f"cannot watch {root}: no such file or directory")
    with WatchMarker(index.path).held():
        events = _events(roots, index.path, stop_event, debounce_ms)
        try:
            next(events)  # watching starts before the initial run: what changes during it comes next
        except (OSError, RuntimeError) as exc:  # the watcher's own errors (watchfiles' are RuntimeErrors)
            raise ConfigError(
                f"cannot watch {', '.join(str(r) for r in roots)}: {exc} — on Linux, raise the inotify limit "
                "(`sudo sysctl fs.inotify.max_user_watches=524288`), or set WATCHFILES_FORCE_POLLING=1 to poll"
            ) from exc
        report = run(roots)
        _tell(on_batch, WatchBatch.from_report(0, report, generation(), 0))
        if report.interrupted:
            raise KeyboardInterrupt
        number = 0
        for changes in events:
            touched = [root for root in roots if any(Path(path).is_relative_to(root) for path in changes)]
            if not touched:
                continue
            report = _apply(run, touched, stop_event)
            if report is None:  # stopped while waiting for another writer
                return
            batch = WatchBatch.from_report(number + 1, report, generation(), len(changes))
            if batch.changed:
                number += 1
                _tell(on_batch, batch)
            if report.interrupted:
                raise KeyboardInterrupt


def _tell(on_batch: Callable[[WatchBatch], None] | None, batch: WatchBatch) -> None:
    if on_batch is not None:
        on_batch(batch)


def _events(roots: Sequence[Path], index_dir: Path, stop_event: threading.Event | None,
            debounce_ms: int) -> Iterable[set[str]]:
    """Sets of changed paths, one per debounced burst, until `stop_event` is set; first an empty
    set once the watcher is in place."""
    import watchfiles

    # A single file is watched through its folder: editors save by writing a new file and renaming
    # it over the old one, which a watch on the old file itself would not survive.
    folders = sorted({str(root if root.is_dir() else root.parent) for root in roots})
    started = False
    ignore = watchfiles.DefaultFilter(ignore_paths=[os.path.realpath(index_dir)])
    for changes in watchfiles.watch(*folders, watch_filter=ignore, debounce=max(MAX_BATCH_WAIT_MS, debounce_ms),
                                    step=debounce_ms, stop_event=stop_event, rust_timeout=_IDLE_TICK_MS,
                                    yield_on_timeout=True):
        if changes or not started:
            started = True
            yield {path for _, path in changes}


def _apply(run: Callable[[list[Path]], IndexReport], roots: list[Path],
           stop_event: threading.Event | None) -> IndexReport | None:
    """`run(roots)`, waiting while another process holds the write lock; None if stopped meanwhile."""
    while True:
        try:
            return run(roots)
        except IndexLockedError:
            if stop_event is not None and stop_event.wait(_LOCK_RETRY):
                return None
            if stop_event is None:
                time.sleep(_LOCK_RETRY)


def _on_loop(on_batch: Callable[[WatchBatch], Any] | None) -> Callable[[WatchBatch], None] | None:
    """`on_batch` called on the running event loop (awaited in a task if a coroutine function)."""
    import asyncio
    import inspect

    if on_batch is None:
        return None
    loop = asyncio.get_running_loop()
    if inspect.iscoroutinefunction(on_batch):
        return lambda batch: asyncio.run_coroutine_threadsafe(on_batch(batch), loop) and None
    return lambda batch: loop.call_soon_threadsafe(on_batch, batch)


async def _until_stopped(worker: asyncio.Future, stop: threading.Event, stop_event: asyncio.Event | None) -> None:
    """Await the watching thread `worker` until `stop_event` is set or the awaiting task is cancelled."""
    import asyncio

    waiter = asyncio.ensure_future(stop_event.wait()) if stop_event is not None else None
    try:
        await asyncio.wait([worker] + ([waiter] if waiter else []), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()
        if waiter is not None:
            waiter.cancel()
        # The thread ends within a moment of `stop` (the watcher's idle tick); its errors surface here.
        await asyncio.shield(worker)


class BackgroundWatch:
    """`Index.watch` of an open index on a thread of a server (`serve --watch`, `mcp --watch`).

    The server goes on searching the same Index; watch writes through a handle of its own, so
    searches see each batch once it is committed. `report` is told of every batch and of an
    error that ends the watch (one line each).
    """

    def __init__(self, index: Index, report: Callable[[str], None]):
        self._index = index
        self._report = report
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="semsearch-watch", daemon=True)

    def start(self) -> BackgroundWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop once the batch being applied, if any, is committed."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            self._index.watch(stop_event=self._stop, on_batch=lambda batch: self._report(f"watch: {batch.summary()}"))
        except SemsearchError as exc:
            self._report(f"watch stopped: {exc}")
