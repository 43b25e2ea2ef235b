"""Live progress on stderr for `index` and `eval` when it is a terminal; nothing on a pipe."""

from __future__ import annotations

import sys
from typing import Any


class _ProgressBar:
    """Live progress of an indexing run on stderr when it is a terminal; nothing on a pipe.

    Two lines, redrawn ten times a second so the elapsed time is true to the clock: files
    (scanned, then read and done — committed, so keyword search finds them — of those needing
    work) and chunks (with a vector of the total, estimated from the files read until all are
    read, with the embedding rate and the time left). Vectors follow the files, so the chunk
    line trails the file line while the embedder catches up.
    """

    def __init__(self) -> None:
        self._progress = None
        self._enabled = sys.stderr.isatty()

    def __enter__(self) -> _ProgressBar:
        if self._enabled:
            self._progress = _live_progress()
            self._progress.start()
            self._files = self._progress.add_task("scanning", total=None, unit="")
            self._chunks = self._progress.add_task("chunks", total=None, unit="chunk")
        return self

    def update(self, progress) -> None:
        if self._progress is None:
            return
        update = self._progress.update
        if progress.scanning:
            update(self._files, description=f"scanning: {progress.files_scanned} files", total=None)
            update(self._chunks, description="chunks: waiting for files")
            return
        update(self._files, total=max(progress.files_total, progress.files_done, 1),
               completed=progress.files_done if progress.files_total else 1,
               description=f"files: {progress.files_done}/{progress.files_total} done, {progress.files_read} read, "
                           f"{progress.files_scanned} scanned")
        if progress.files_total and progress.files_read < progress.files_total:
            estimate = round(progress.chunks_queued * progress.files_total / progress.files_read) \
                if progress.files_read else None
            total_text = f"~{estimate}" if estimate else "?"
        else:
            estimate = progress.chunks_queued
            total_text = str(estimate)
        update(self._chunks, total=max(estimate, progress.chunks_done, 1) if estimate is not None else None,
               completed=progress.chunks_done,
               description=f"chunks: {progress.chunks_done}/{total_text} with vectors, "
                           f"{progress.chunks_embedded} embedded")

    def __exit__(self, *exc_info) -> None:
        if self._progress is not None:
            self._progress.stop()


def _live_progress():
    """A rich Progress on stderr: spinner, description, bar, rate, elapsed, time left."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    def rate(task) -> float | None:
        # rich's windowed speed once it has two samples; the average since the start before that
        speed = task.finished_speed or task.speed
        if not speed and task.completed and task.elapsed:
            speed = task.completed / task.elapsed
        return speed or None

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            speed = rate(task) if task.fields.get("unit") else None
            return Text(f"{speed:.1f} {task.fields['unit']}/s" if speed else "", style="progress.data.speed")

    class LeftColumn(ProgressColumn):
        def render(self, task) -> Text:
            if not task.fields.get("unit"):
                return Text("")
            speed = rate(task)
            if task.finished:
                return Text("done", style="progress.remaining")
            if task.total is None or not speed:
                return Text("left -:--:--", style="progress.remaining")
            seconds = int((task.total - task.completed) / speed)
            return Text(f"left {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
                        style="progress.remaining")

    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), RateColumn(),
        TextColumn("elapsed"), TimeElapsedColumn(), LeftColumn(),
        console=Console(stderr=True), refresh_per_second=10,
    )


class _CountBar:
    """Live counts of (label, unit) rows on stderr when it is a terminal; nothing on a pipe.

    Shown from the start and redrawn ten times a second, so elapsed time, rate and time left are
    true to the clock even while a row waits for its first update.
    """

    def __init__(self, *rows: tuple[str, str]) -> None:
        self._rows = rows
        self._progress = None
        self._tasks: list[Any] = []
        self._enabled = sys.stderr.isatty()

    def __enter__(self) -> _CountBar:
        if self._enabled:
            self._progress = _live_progress()
            self._progress.start()
            self._tasks = [self._progress.add_task(f"{label}: waiting", total=None, unit=unit, start=False)
                           for label, unit in self._rows]
            self._progress.start_task(self._tasks[0])
        return self

    def update(self, row: int, done: int, total: int) -> None:
        if self._progress is None:
            return
        task = self._tasks[row]
        if not self._progress.tasks[row].started:
            self._progress.start_task(task)
        label, unit = self._rows[row]
        self._progress.update(task, completed=done, total=total, description=f"{label}: {done}/{total}")

    def __exit__(self, *exc_info) -> None:
        if self._progress is not None:
            self._progress.stop()
