"""The index directory: `WriteLock`, the lock file that lets one process at a time write it,
`WatchMarker`, held while `semsearch watch` keeps the index current, and `open_store`, which makes
the directory or finds it and decides whether this process may write.

Readers never take it to search; a reader takes it only without waiting (to save a repaired
file or re-analyse keywords), and an index directory this process cannot write gets none.

A holder writes its pid and command into the lock file, so a second writer's error can name
it. `watch` takes the write lock only while it applies a batch of changes (other writers —
`add_texts`, `serve`'s POST /texts — get their turn between batches) and holds the watch
marker for as long as it runs.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from semsearch.errors import IndexLockedError, IndexNotFoundError, IndexReadOnlyError
from semsearch.options import LOCK_NAME
from semsearch.store import DB_NAME, Store

if TYPE_CHECKING:
    import filelock

WATCH_LOCK_NAME = "watch.lock"


class WriteLock:
    """The writer lock of the index directory `directory` (`lock` is the file lock itself)."""

    def __init__(self, directory: Path):
        self.directory = directory

    @functools.cached_property
    def lock(self) -> filelock.FileLock:
        # Made on first use: a search takes no lock, and importing filelock is a tenth of its start-up.
        import filelock

        return filelock.FileLock(str(self.directory / LOCK_NAME), timeout=0)

    def acquire(self, timeout: float = 0) -> filelock.AcquireReturnProxy:
        """The file lock's own `acquire` (raises filelock.Timeout while another process holds it)."""
        return self.lock.acquire(timeout=timeout)

    @contextmanager
    def held(self, read_only: bool) -> Iterator[None]:
        """Hold the lock; raises IndexReadOnlyError for a `read_only` index and IndexLockedError
        while another process writes."""
        if read_only:
            raise IndexReadOnlyError(
                f"the index at {self.directory} is read-only (this process cannot write to its directory) — it "
                "can be searched as it is; to change it, copy it somewhere writable or remount the directory "
                "read-write"
            )
        with _held(self.lock, self._locked_message):
            yield

    def _locked_message(self) -> str:
        watcher = WatchMarker(self.directory).holder()
        if watcher is not None:
            return (
                f"`semsearch watch` (pid {watcher.get('pid', '?')}) is applying changes to the index at "
                f"{self.directory} — it keeps this index current by itself, so there is no need to run "
                "`semsearch index` while it runs; other writes: try again in a moment"
            )
        holder = _read_holder(self.lock.lock_file)
        who = f" (pid {holder['pid']}: {holder['command']})" if holder else ""
        return f"another semsearch process is writing to the index at {self.directory}{who} — wait for it to finish"

    @contextmanager
    def held_if_free(self) -> Iterator[bool]:
        """Hold the lock if no other process does, without waiting; yields whether it is held."""
        import filelock

        try:
            self.lock.acquire(timeout=0)
        except filelock.Timeout:
            yield False
            return
        try:
            yield True
        finally:
            self.lock.release()

    def busy(self) -> bool:
        """Whether another process holds the lock right now."""
        return _held_elsewhere(self.lock)


class WatchMarker:
    """The marker file a running `watch` holds on the index directory `directory`, naming its pid."""

    def __init__(self, directory: Path):
        import filelock  # only a writer meets a watch marker: searches never load filelock

        self.directory = directory
        self.lock = filelock.FileLock(str(directory / WATCH_LOCK_NAME), timeout=0)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the marker; raises IndexLockedError while another `watch` keeps this index current."""
        with _held(self.lock, self._watching_message):
            yield

    def _watching_message(self) -> str:
        holder = _read_holder(self.lock.lock_file) or {}
        return (
            f"`semsearch watch` (pid {holder.get('pid', '?')}) is already keeping the index at {self.directory} "
            "current — one watcher per index is enough; stop that one first to watch other folders"
        )

    def holder(self) -> dict | None:
        """The running watcher's pid and command, or None when no `watch` runs on this index."""
        return (_read_holder(self.lock.lock_file) or {}) if _held_elsewhere(self.lock) else None


@contextmanager
def _held(lock: filelock.FileLock, locked_message: Callable[[], str]) -> Iterator[None]:
    """Hold `lock` without waiting, recorded as its holder; raises IndexLockedError saying
    `locked_message()` while another process holds it."""
    import filelock

    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise IndexLockedError(locked_message()) from None
    _write_holder(lock.lock_file)
    try:
        yield
    finally:
        _write_holder(lock.lock_file, clear=True)
        lock.release()


def _held_elsewhere(lock: filelock.FileLock) -> bool:
    """Whether another process holds `lock` right now, tried without waiting."""
    import filelock

    try:
        with lock.acquire(timeout=0):
            return False
    except filelock.Timeout:
        return True
    except OSError:  # a read-only index directory: no other writer or watcher could be there either
        return False


def _write_holder(lock_file: str, *, clear: bool = False) -> None:
    """Record (or clear) this process as the holder of `lock_file`, which it holds: a hint for errors."""
    text = "" if clear else json.dumps({"pid": os.getpid(), "command": _command_line()})
    try:
        with open(lock_file, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError:
        pass  # only a hint: the lock itself is what excludes other writers


def _command_line() -> str:
    """This process's command line, short: `semsearch index docs`, `app.py --port 80`."""
    argv = sys.argv or ["python"]
    name = Path(argv[0]).name
    name = "semsearch" if name == "__main__.py" else name
    return " ".join([name, *argv[1:]])[:200]


def _read_holder(lock_file: str) -> dict | None:
    try:
        with open(lock_file, encoding="utf-8") as handle:
            holder = json.loads(handle.read() or "null")
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and "pid" in holder and "command" in holder else None


def open_store(path: Path, create: bool) -> Store:
    """The database of the index directory `path`, made (with the directory) if `create`, opened
    read-only when this process cannot write there. Raises IndexNotFoundError or IndexReadOnlyError
    saying what to do."""
    db_path = path / DB_NAME
    if not db_path.exists():
        if not create:
            raise IndexNotFoundError(
                f"no semsearch index at {path} — create one with `semsearch index FOLDER` "
                "(or point -i/--index or SEMSEARCH_INDEX at an existing one)"
            )
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IndexReadOnlyError(
                f"cannot create the index directory {path}: {exc.strerror} — choose a writable place with "
                "-i/--index or SEMSEARCH_INDEX"
            ) from exc
        if not writable(path, db_path):
            raise IndexReadOnlyError(
                f"cannot create an index in {path}: the directory is read-only — choose a writable place "
                "with -i/--index or SEMSEARCH_INDEX"
            )
    return Store(db_path, read_only=not writable(path, db_path))


def writable(directory: Path, db_path: Path) -> bool:
    """Whether this process may write the index: create files in `directory` and write the database.

    access(2) answers for a read-only mount (EROFS) as well as for permission bits.
    """
    options = {"effective_ids": True} if os.access in os.supports_effective_ids else {}
    if not os.access(directory, os.W_OK | os.X_OK, **options):
        return False
    return not db_path.exists() or os.access(db_path, os.W_OK, **options)
