"""Walk folders into SourceFiles: include/exclude globs, skipping hidden, VCS, index and junk directories.

Symlinked directories are followed once (a visited set of (device, inode) stops loops). Files
with a supported suffix are candidates; with `--include` globs, any matching file is a candidate.
Binary detection happens at extraction, where the bytes are read anyway. Files larger than
`SEMSEARCH_MAX_FILE_MB` and files whose names are not valid UTF-8 (they cannot be stored or
cited) are passed over with the reason. Unless told not to (`use_ignore_files`), files and
folders that `.gitignore` / `.semsearchignore` leave out are counted, not read, and an ignored
folder is never entered (`semsearch.ignore`).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

from semsearch.extract import is_supported
from semsearch.extract.limits import max_file_bytes, too_large
from semsearch.ignore import IgnoreRules
# Re-exported for code that still imports them from here (they moved to `paths`).
from semsearch.paths import CHANGED, CURRENT, MISSING, absolute_path, disk_state, document_key, keys_prefix  # noqa: F401
from semsearch.types import FileProblem, IndexSource, SourceFile

SKIPPED_DIRECTORIES = frozenset({"node_modules", "__pycache__", "site-packages", "venv", "CVS", "_darcs"})


@dataclass(frozen=True)
class WalkSkip:
    """A file the walk passed over, with the reason (reported as skipped, not failed)."""

    problem: FileProblem


@dataclass(frozen=True)
class WalkIgnored:
    """A file or folder the ignore files leave out (counted in the summary, not listed)."""

    path: Path
    is_dir: bool


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
    use_ignore_files: bool = True,
) -> Iterator[SourceFile | WalkSkip | WalkIgnored]:
    """Yield the candidate files under `root` (a folder or a single file), sorted for stable runs.

    `skip_dirs` are absolute directories never entered (the index directory itself); files over
    `max_bytes` (default: `SEMSEARCH_MAX_FILE_MB`) are yielded as WalkSkip, unread. With
    `use_ignore_files`, candidates and folders the ignore files leave out are yielded as
    WalkIgnored (a folder once, not entered). A single file given as `root` is always a candidate.
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
    ignore = IgnoreRules(root) if use_ignore_files else None
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
            if _enters(d) and os.path.realpath(os.path.join(directory, d)) not in skip
        )
        # Most folders have no ignore patterns in force at all: their entries need no checking.
        ignoring = ignore is not None and ignore.has_rules(directory)
        if ignoring:
            ignored = [d for d in dirnames if ignore.ignored(os.path.join(directory, d), is_dir=True)]
            for name in ignored:
                dirnames.remove(name)
                yield WalkIgnored(Path(directory, name), is_dir=True)
        for filename in sorted(filenames):
            path = Path(directory, filename)
            relpath = path.relative_to(root).as_posix()
            if not _is_candidate(path, relpath, include, exclude):
                continue
            if ignoring and ignore.ignored(path, is_dir=False):
                yield WalkIgnored(path, is_dir=False)
                continue
            try:
                file_stat = path.stat()
            except OSError as exc:  # a dangling link, a symlink loop, a file gone since listing
                yield WalkSkip(FileProblem(_display(path), f"cannot read: {exc.strerror or exc}"))
                continue
            if not S_ISREG(file_stat.st_mode):  # the stat above, not another one as `is_file` would
                continue
            problem = _problem(path, relpath, file_stat.st_size, limit)
            if problem is not None:
                yield WalkSkip(problem)
                continue
            yield SourceFile(path=path, root=root, relpath=relpath, size=file_stat.st_size,
                             mtime_ns=file_stat.st_mtime_ns)


def admits(source: IndexSource, path: Path) -> bool:
    """Whether walking `source` reaches `path` (absolute): a file it would yield, or a folder it
    would enter. Judged by the path alone: inside the source, under no hidden, junk or ignored
    folder, and for a file a candidate by the globs and not ignored. For callers that see one path
    at a time (a file-system event, a path given inside a remembered folder)."""
    root = source.path.resolve()
    path = Path(os.path.abspath(path))
    if path == root:
        return True
    try:
        relpath = path.relative_to(root).as_posix()
    except ValueError:
        return False
    is_dir = path.is_dir()
    parts = relpath.split("/")
    if not all(_enters(part) for part in (parts if is_dir else parts[:-1])):
        return False
    if not is_dir and not _is_candidate(path, relpath, source.include, source.exclude):
        return False
    return not (source.use_ignore_files and IgnoreRules(root).ignored_anywhere(path))


def _enters(name: str) -> bool:
    """Whether the walk enters a folder of this name (hidden ones, `.git` among them, never)."""
    return not name.startswith(".") and name not in SKIPPED_DIRECTORIES


def _is_candidate(path: Path, relpath: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether a file is indexed by name: not hidden, not excluded, and included (by a glob, or
    by default when its suffix has an extractor)."""
    if path.name.startswith(".") or (exclude and matches(relpath, exclude)):
        return False
    return matches(relpath, include) if include else is_supported(path)


def _problem(path: Path, relpath: str, size: int, limit: int) -> FileProblem | None:
    """Why a file must be passed over before reading it, or None."""
    if _display(relpath) != relpath:
        return FileProblem(_display(path), "file name is not valid UTF-8 — rename the file to index it")
    if size > limit:
        return FileProblem(str(path), too_large(size, limit))
    return None


def _display(path: str | Path) -> str:
    """The path as printable text: bytes that are not UTF-8 (kept by Python as surrogates) shown as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
