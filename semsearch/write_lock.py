"""The index directory: `WriteLock`, the lock file that lets one process at a time write it, and
`open_store`, which makes the directory or finds it and decides whether this process may write.

Readers never take it to search; a reader takes it only without waiting (to save a repaired
file or re-analyse keywords), and an index directory this process cannot write gets none.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from semsearch.errors import IndexLockedError, IndexNotFoundError, IndexReadOnlyError
from semsearch.options import LOCK_NAME
from semsearch.store import DB_NAME, Store

if TYPE_CHECKING:
    import filelock


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
        import filelock

        try:
            self.lock.acquire(timeout=0)
        except filelock.Timeout:
            raise IndexLockedError(
                f"another semsearch process is writing to the index at {self.directory} — wait for it to finish"
            ) from None
        try:
            yield
        finally:
            self.lock.release()

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
        import filelock

        try:
            with self.lock.acquire(timeout=0):
                return False
        except filelock.Timeout:
            return True
        except OSError:  # a read-only index directory: no writer could be there either
            return False


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
