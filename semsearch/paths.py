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
    return _key_of(os.path.realpath(path), home)


def _key_of(real: str, home: Path) -> str:
    """The key of the file at the real path `real` (see `document_key`)."""
    if os.sep == "/":  # string operations: this runs once per file of every indexing run
        home_text = os.fspath(home)
        if real == home_text:
            return "."
        inside = home_text.rstrip("/") + "/"
        return real[len(inside):] if real.startswith(inside) else real
    try:
        return Path(real).relative_to(home).as_posix()
    except ValueError:
        return Path(real).as_posix()


class FileKeys:
    """`document_key` for the many files of one walk, resolving each directory once.

    A file that is not itself a symlink is an entry of its directory's real path, so its key
    costs one lstat rather than one per path component — most of what keying a file cost. Made
    afresh for each walk, so a directory moved or re-linked since is resolved again.
    """

    def __init__(self, home: Path):
        self.home = home
        self._real_directories: dict[str, str] = {}

    def key(self, path: Path) -> str:
        text = os.fspath(path)
        if os.path.islink(text):
            return document_key(path, self.home)
        directory, name = os.path.split(text)
        real = self._real_directories.get(directory)
        if real is None:
            real = self._real_directories[directory] = os.path.realpath(directory)
        return _key_of(os.path.join(real, name), self.home)


def under(key: str, prefix: str) -> bool:
    """Whether a file key lies in the folder whose `keys_prefix` is `prefix` (the keys that
    `Store.files_in` of that folder looks among)."""
    return key.startswith(prefix) if prefix else not os.path.isabs(key)


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
