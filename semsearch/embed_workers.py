"""Daemon threads that run the indexing pipeline's embedding calls, with a future for each.

The pipeline (`semsearch.ingest`) submits a batch's texts here and goes on reading, chunking and
committing while the embedder answers.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future


class EmbedWorkers:
    """Daemon threads running embedding calls, with futures for their results.

    Not a ThreadPoolExecutor: its threads are joined when the interpreter exits, so after Ctrl-C
    the process would wait for every request still with the embedder (tens of seconds on a slow
    server) although their results are thrown away.
    """

    def __init__(self, count: int):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._run, name=f"semsearch-embed-{i}", daemon=True)
                         for i in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable, *args) -> Future:
        future: Future = Future()
        self._jobs.put((future, fn, args))
        return future

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Cancel queued calls and let the threads end; calls already running are abandoned."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[0].cancel()
        for _ in self._threads:
            self._jobs.put(None)
