"""`AsyncPool`: the bounded worker threads behind `Index.asearch` / `Index.acontext`."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

# Ollama embeds one request at a time, so more in flight only queue there; a bound gives
# backpressure to a busy web app instead of a thread per call.
DEFAULT_ASYNC_WORKERS = 16


class AsyncPool:
    """Runs blocking calls for asyncio code in a thread pool made on first use."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    async def run(self, workers: int, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)` in the pool (of `workers` threads when it is made), awaited."""
        # One pool covers every blocking step of a search (embedding and reranking HTTP, SQLite,
        # the FAISS scan, which releases the GIL), so the async path is the sync one by construction.
        import asyncio  # only async callers pay for loading it (and concurrent.futures)
        from concurrent.futures import ThreadPoolExecutor

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="semsearch-async")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Cancel queued calls and wait for running ones."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
