"""Indexed files by key: the path a file is stored under, back to its absolute path, and its state on disk.

Kept apart from `sources` (the walk, which needs the extractors' suffix table) so that search
and status, which only compare stored files with the disk, load nothing of indexing.
"""

from __future__ import annotations

import os
from pathlib import Path


def document_key(path: Path, home: Path) -> str:
    """The key a file is stored under: its real path relative to the index home (POSIX) when it
    is inside the home, else its real absolute path.

    One file is one key however it was reached (a parent folder, a sub-folder, the file itself,
    a symlink), and keys relative to the home survive moving the whole project folder.
    `home` must already be resolved.
    """
    real = Path(os.path.realpath(path))
    try:
        return real.relative_to(home).as_posix()
    except ValueError:
        return real.as_posix()


def absolute_path(key: str, home: Path) -> str:
    """The absolute path of a file stored under `key` (see `document_key`)."""
    return key if os.path.isabs(key) else (home / key).as_posix()


def keys_prefix(path: Path, home: Path) -> str:
    """The key prefix of the documents under a folder: its key with a trailing `/` ('' for the home)."""
    key = document_key(path, home)
    return "" if key == "." else key.rstrip("/") + "/"


CURRENT, CHANGED, MISSING = "current", "changed", "missing"


def disk_state(path: str, size: int, mtime_ns: int) -> str:
    """CURRENT, CHANGED or MISSING: how a file compares with its stored (size, mtime_ns).

    One stat, no reading: a file touched without an edit counts as changed until re-indexed.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return MISSING
    return CURRENT if (stat.st_size, stat.st_mtime_ns) == (size, mtime_ns) else CHANGED
