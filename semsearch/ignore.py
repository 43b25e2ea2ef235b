"""Ignore files: what `.gitignore` and `.semsearchignore` leave out of an indexed folder, as git does.

Each folder's ignore files hold git's patterns relative to that folder, matched by pathspec's
`GitIgnoreSpec` (negation, anchoring, directory-only patterns and `**` as git has them). A
deeper folder's files win over its parents', and within one folder `.semsearchignore` wins
over `.gitignore` (its patterns come last, and the last matching pattern decides), so `!build/`
in a `.semsearchignore` brings back a folder git ignores. The walk asks before entering a
folder, so an ignored folder is never read — and, as in git, a file inside an ignored folder
cannot be brought back by a negation further down.

Above the indexed folder, the ignore files of its parent folders count up to the root of the
git repository holding it (the nearest parent with a `.git`); outside a repository only the
indexed folder's own and its subfolders' files count. If those parents' patterns ignore the
indexed folder itself, they are set aside: a folder named explicitly is indexed. The
repository's `.git/info/exclude` counts as git reads it: below the root folder's `.gitignore`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

# Read in this order: the last matching pattern decides, so the second file wins over the first.
IGNORE_FILES = (".gitignore", ".semsearchignore")


class IgnoreRules:
    """The ignore files that apply inside `root` (an absolute folder), read once per folder."""

    def __init__(self, root: Path):
        self.root = os.path.abspath(root)
        self._repository: str | None = None  # the enclosing git repository's root folder, if any
        self._specs: dict[str, GitIgnoreSpec | None] = {}
        self._chains: dict[str, list[tuple[str, GitIgnoreSpec]]] = {}
        self._above = self._folders_above()
        if self._above and self._verdict(self.root, True, self._chain_above()):
            self._above = []  # the parents' rules ignore the folder itself: it was named explicitly

    def ignored(self, path: str | Path, is_dir: bool) -> bool:
        """Whether the ignore files leave out `path` (inside the root), judged as git would once
        the folders holding it were entered (the walk enters no ignored folder)."""
        path = os.fspath(path)
        return self._verdict(path, is_dir, self._chain(os.path.dirname(path)))

    def has_rules(self, directory: str | Path) -> bool:
        """Whether any ignore patterns apply to the entries of `directory` (inside the root)."""
        return bool(self._chain(os.fspath(directory)))

    def ignored_anywhere(self, path: str | Path) -> bool:
        """Whether `path` (inside the root) or any folder between the root and it is ignored: for
        a single path seen outside a walk, e.g. a file-system event."""
        path = os.path.abspath(path)
        relative = os.path.relpath(path, self.root)
        if relative == "." or relative.startswith(".."):
            return False
        parts = relative.split(os.sep)
        current = self.root
        for index, part in enumerate(parts):
            current = os.path.join(current, part)
            if self.ignored(current, is_dir=index < len(parts) - 1 or os.path.isdir(current)):
                return True
        return False

    def _verdict(self, path: str, is_dir: bool, chain: list[tuple[str, GitIgnoreSpec]]) -> bool:
        for folder, spec in chain:  # nearest first: a deeper folder's patterns win
            # `path` lies under `folder` as written (both absolute, joined by the walk): cut, no relpath.
            relative = path[len(folder):].lstrip(os.sep).replace(os.sep, "/") + ("/" if is_dir else "")
            verdict = spec.check_file(relative).include
            if verdict is not None:
                return verdict
        return False

    def _chain(self, directory: str) -> list[tuple[str, GitIgnoreSpec]]:
        """The (folder, patterns) that apply to entries of `directory`, nearest folder first."""
        chain = self._chains.get(directory)
        if chain is None:
            if directory == self.root or not directory.startswith(self.root):
                parent_chain = self._chain_above()
            else:
                parent_chain = self._chain(os.path.dirname(directory))
            spec = self._spec(directory)
            chain = self._chains[directory] = ([(directory, spec)] if spec is not None else []) + parent_chain
        return chain

    def _chain_above(self) -> list[tuple[str, GitIgnoreSpec]]:
        return [(folder, spec) for folder in reversed(self._above) if (spec := self._spec(folder)) is not None]

    def _spec(self, folder: str) -> GitIgnoreSpec | None:
        if folder not in self._specs:
            lines: list[str] = []
            names = ((os.path.join(".git", "info", "exclude"),) if folder == self._repository else ()) + IGNORE_FILES
            for name in names:
                try:
                    with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as handle:
                        lines.extend(handle.read().splitlines())
                except OSError:  # absent, or unreadable: no patterns from it
                    continue
            self._specs[folder] = _compile(lines) if lines else None
        return self._specs[folder]

    def _folders_above(self) -> list[str]:
        """The parent folders from the enclosing repository's root down to the root's parent."""
        folders: list[str] = []
        current = self.root
        while not os.path.exists(os.path.join(current, ".git")):
            parent = os.path.dirname(current)
            if parent == current:
                return []  # not inside a repository
            folders.append(parent)
            current = parent
        self._repository = current
        return list(reversed(folders))


def _compile(lines: list[str]) -> GitIgnoreSpec:
    from pathspec import GitIgnoreSpec

    return GitIgnoreSpec.from_lines(lines)
