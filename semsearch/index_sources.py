"""Remembered sources: the folders and files given to `Index.index`, listed, refreshed and forgotten.

`Index` takes its `sources`, `refresh` and `remove_source` methods from `SourcesMixin`. Each
folder or file given to `index` is remembered with the options that decide which of its files
are indexed (include/exclude globs, whether ignore files count), keyed like documents so a
moved project folder still refreshes. No redundant entries: a path inside a remembered folder
with the same options is covered by it and not remembered again (its run still indexes it), a
folder given later with the same options replaces the remembered ones inside it, and giving a
remembered path again replaces its options. With different options both are kept, and the
index holds every file either admits.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from semsearch.errors import SourceNotFoundError
from semsearch.options import DEFAULT_BATCH_TEXTS
from semsearch.paths import absolute_path
from semsearch.store_sources import SourceRow
from semsearch.types import FileProblem, IndexReport, IndexSource

if TYPE_CHECKING:
    from semsearch.ingest import Progress
    from semsearch.store import Store

NO_SOURCES = ("the index at {path} remembers no folder to refresh — index one by name first "
              "(`semsearch index FOLDER`); later `semsearch index` alone refreshes it")


class SourcesMixin:
    """The remembered-source methods of `Index` (see the module docstring)."""

    def sources(self) -> list[IndexSource]:
        """The folders and files this index remembers, in the order first given, each with the
        options its files are walked with and how many indexed files it holds now."""
        return list_sources(self._store)

    def refresh(
        self,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        batch_texts: int = DEFAULT_BATCH_TEXTS,
    ) -> IndexReport:
        """Index every remembered source again, each with its own options: add new, update
        changed, remove vanished or newly ignored files; returns the report `index` returns.

        A source that no longer exists is one problem in the report (counted as failed) naming
        `semsearch sources --remove`; its documents are kept until it is removed, so a folder on
        an unmounted disk does not empty the index. Raises SourceNotFoundError when the index
        remembers no source.
        """
        remembered = self.sources()
        if not remembered:
            raise SourceNotFoundError(NO_SOURCES.format(path=self.path))
        present = [source for source in remembered if source.exists]
        missing = [FileProblem(str(source.path), f"remembered source no longer exists; its {source.documents} "
                               f"indexed files are kept — `semsearch sources --remove {source.path}` forgets them")
                   for source in remembered if not source.exists]
        report = self._index_roots(present, remember=False, on_progress=on_progress, batch_texts=batch_texts)
        if not missing:
            return report
        return dataclasses.replace(report, files_failed=report.files_failed + len(missing),
                                   problems=(*missing, *report.problems))

    def remove_source(self, path: str | Path) -> int:
        """Forget the remembered source at `path` (it need not exist any more) and delete its
        documents, except those also under another remembered source; returns how many were
        deleted. Raises SourceNotFoundError, naming the remembered ones, for any other path."""
        with self._writing():
            key = self._store.file_key(Path(path).expanduser().absolute())
            rows = {row.key: row for row in self._store.source_rows()}
            if key not in rows:
                known = ", ".join(absolute_path(k, self._store.home) for k in rows) or "none"
                raise SourceNotFoundError(f"{path} is not a remembered source of the index at {self.path} "
                                          f"(remembered: {known}) — `semsearch sources` lists them")
            others = [k for k in rows if k != key]
            covered = {doc_key for other in others for doc_key in _stored_files(self._store, other)}
            doomed = [doc.id for doc_key, doc in _stored_files(self._store, key).items() if doc_key not in covered]
            self._search_store().apply(self._store.forget_source(key, doomed))
            return len(doomed)

    def _index_roots(
        self,
        roots: Sequence[IndexSource],
        *,
        remember: bool,
        on_progress: Callable[[Progress], None] | None,
        batch_texts: int,
    ) -> IndexReport:
        """Index `roots`, each walked with its own options, remembering them first when `remember`
        (so an interrupted run is continued by a refresh)."""
        from semsearch.config import CODE_CHUNKER_KEY, IndexSettings, IndexState
        from semsearch.ingest import Ingester

        self._check_code_chunks()
        with self._writing():
            keep = None
            if remember:
                remember_sources(self._store, [root for root in roots if root.path.exists()])
                keep = _kept_by_other_sources(self._store, roots)
            chunking = self._chunk_settings()
            wanted = IndexSettings(code_chunks=chunking.code).code_chunker
            # Source files chunked by another code chunker (or none) are chunked again, unchanged
            # or not; other files are untouched, and identical chunk texts reuse their vectors.
            rechunk = IndexState.from_meta(self._store.meta()).code_chunker != wanted
            ingester = Ingester(self._store, self.embedder, chunking, self._search_store().apply,
                                on_progress=on_progress, batch_texts=batch_texts, rechunk_code=rechunk)
            report = ingester.index_paths(list(roots), skip_dirs=[self.path], keep=keep)
            if rechunk and not report.interrupted and ingester.rechunked_all():
                self._store.set_meta({CODE_CHUNKER_KEY: wanted})
            return report


def sources_of(paths: Iterable[str | Path], include: Sequence[str], exclude: Sequence[str],
               use_ignore_files: bool) -> list[IndexSource]:
    """The paths given to `index`, as sources with the options given with them."""
    return [IndexSource(Path(p).expanduser().absolute(), tuple(include), tuple(exclude), use_ignore_files)
            for p in paths]


def list_sources(store: Store) -> list[IndexSource]:
    return [dataclasses.replace(_source(row, store), documents=len(_stored_files(store, row.key)))
            for row in store.source_rows()]


def remember_sources(store: Store, roots: Sequence[IndexSource]) -> None:
    """Record `roots` as sources, without redundant entries (see the module docstring)."""
    from semsearch.sources import admits

    current = {row.key: row for row in store.source_rows()}
    remembered = list(current)
    for root in roots:
        row = SourceRow(store.file_key(root.path), root.include, root.exclude, root.use_ignore_files)
        if row.key not in current:
            if any(_inside(row.key, other.key, store) and other.options == row.options and _is_folder(other.key, store)
                   and admits(_source(other, store), root.path) for other in current.values()):
                continue  # covered: the remembered folder's walk, with the same options, reaches it
            if root.path.is_dir():
                for other in [o for o in current.values() if _inside(o.key, row.key, store)
                              and o.options == row.options and admits(root, _source(o, store).path)]:
                    del current[other.key]  # now covered by this folder
        current[row.key] = row
    store.put_sources(list(current.values()), drop=[key for key in remembered if key not in current])


def _kept_by_other_sources(store: Store, roots: Sequence[IndexSource]) -> Callable[[str], bool] | None:
    """For a run over some paths: whether a stored file its walks did not find still belongs to a
    remembered source this run does not walk (it exists, and that source's walk admits it), so
    `index a/sub --include '*.txt'` leaves the Markdown files that a remembered `a/` holds alone."""
    from semsearch.sources import admits

    walked = {store.file_key(root.path) for root in roots}
    others = [_source(row, store) for row in store.source_rows() if row.key not in walked]
    if not others:
        return None

    def keep(key: str) -> bool:
        path = Path(absolute_path(key, store.home))
        return path.exists() and any(admits(source, path) for source in others)

    return keep


def _source(row: SourceRow, store: Store) -> IndexSource:
    return IndexSource(Path(absolute_path(row.key, store.home)), row.include, row.exclude, row.use_ignore_files)


def _inside(key: str, folder_key: str, store: Store) -> bool:
    """Whether the path of `key` lies strictly inside the path of `folder_key`."""
    path, folder = (Path(absolute_path(k, store.home)) for k in (key, folder_key))
    return path != folder and path.is_relative_to(folder)


def _is_folder(key: str, store: Store) -> bool:
    return os.path.isdir(absolute_path(key, store.home))


def _stored_files(store: Store, key: str) -> dict:
    """The stored files under the source `key` (a folder at any depth, or the file itself), by key."""
    found = store.files_in(Path(absolute_path(key, store.home)))
    exact = store.document(key)
    if exact is not None:
        found[exact.path] = exact
    return found
