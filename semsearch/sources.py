"""Walk folders into SourceFiles: include/exclude globs, skipping hidden, VCS, index and junk directories.

Symlinked directories are followed once (a visited set of (device, inode) stops loops). Files
with a supported suffix are candidates; with `--include` globs, any matching file is a candidate.
Binary detection happens at extraction, where the bytes are read anyway. Files larger than
`SEMSEARCH_MAX_FILE_MB` and files whose names are not valid UTF-8 (they cannot be stored or
cited) are passed over with the reason.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from semsearch.extract import is_supported
from semsearch.extract.limits import max_file_bytes, too_large
# Re-exported for code that still imports them from here (they moved to `paths`).
from semsearch.paths import CHANGED, CURRENT, MISSING, absolute_path, disk_state, document_key, keys_prefix  # noqa: F401
from semsearch.types import FileProblem, SourceFile

SKIPPED_DIRECTORIES = frozenset({"node_modules", "__pycache__", "site-packages", "venv", "CVS", "_darcs"})


@dataclass(frozen=True)
class WalkSkip:
    """A file the walk passed over, with the reason (reported as skipped, not failed)."""

    problem: FileProblem


def matches(relpath: str, globs: Sequence[str]) -> bool:
    """Whether a POSIX relative path matches any glob.

    A glob without `/` matches the file name at any depth (`*.md`); a glob with `/` matches the
    whole relative path, with `**/` also matching zero directories (`docs/**/*.md`).
    """
    name = relpath.rsplit("/", 1)[-1]
    for glob in globs:
        if "/" not in glob:
            if fnmatch.fnmatchcase(name, glob):
                return True
            continue
        candidates = {glob, glob.replace("**/", "")}
        if any(fnmatch.fnmatchcase(relpath, g) for g in candidates):
            return True
        if glob.endswith("/**") and (relpath + "/").startswith(glob[:-2]):
            return True
    return False


def walk(
    root: Path,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    skip_dirs: Sequence[Path] = (),
    max_bytes: int | None = None,
) -> Iterator[SourceFile | WalkSkip]:
    """Yield the candidate files under `root` (a folder or a single file), sorted for stable runs.

    `skip_dirs` are absolute directories never entered (the index directory itself); files over
    `max_bytes` (default: `SEMSEARCH_MAX_FILE_MB`) are yielded as WalkSkip, unread.
    """
    root = root.resolve()
    limit = max_file_bytes() if max_bytes is None else max_bytes
    if root.is_file():
        stat = root.stat()
        problem = _problem(root, root.name, stat.st_size, limit)
        if problem is not None:
            yield WalkSkip(problem)
            return
        yield SourceFile(path=root, root=root.parent, relpath=root.name, size=stat.st_size, mtime_ns=stat.st_mtime_ns)
        return
    skip = {os.path.realpath(p) for p in skip_dirs}
    visited: set[tuple[int, int]] = set()
    for directory, dirnames, filenames in os.walk(root, followlinks=True, onerror=None):
        try:
            stat = os.stat(directory)
        except OSError:
            dirnames[:] = []
            continue
        key = (stat.st_dev, stat.st_ino)
        if key in visited or os.path.realpath(directory) in skip:
            dirnames[:] = []
            continue
        visited.add(key)
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and d not in SKIPPED_DIRECTORIES
            and os.path.realpath(os.path.join(directory, d)) not in skip
        )
        for filename in sorted(filenames):
            if filename.startswith("."):
                continue
            path = Path(directory, filename)
            relpath = path.relative_to(root).as_posix()
            if exclude and matches(relpath, exclude):
                continue
            if include:
                if not matches(relpath, include):
                    continue
            elif not is_supported(path):
                continue
            try:
                file_stat = path.stat()
            except OSError as exc:  # a dangling link, a symlink loop, a file gone since listing
                yield WalkSkip(FileProblem(_display(path), f"cannot read: {exc.strerror or exc}"))
                continue
            if not path.is_file():
                continue
            problem = _problem(path, relpath, file_stat.st_size, limit)
            if problem is not None:
                yield WalkSkip(problem)
                continue
            yield SourceFile(path=path, root=root, relpath=relpath, size=file_stat.st_size,
                             mtime_ns=file_stat.st_mtime_ns)


def _problem(path: Path, relpath: str, size: int, limit: int) -> FileProblem | None:
    """Why a file must be passed over before reading it, or None."""
    if _display(Path(relpath)) != relpath:
        return FileProblem(_display(path), "file name is not valid UTF-8 — rename the file to index it")
    if size > limit:
        return FileProblem(str(path), too_large(size, limit))
    return None


def _display(path: Path) -> str:
    """The path as printable text: bytes that are not UTF-8 (kept by Python as surrogates) shown as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
