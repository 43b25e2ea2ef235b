"""The async API: asearch/acontext overlap their waits on Ollama and never block the event loop."""

from __future__ import annotations

import asyncio
import time

DELAY = 0.1
CALLS = 20


def test_twenty_concurrent_asearch_calls_overlap(rag_index, ollama_server):
    index, _ = rag_index
    distinct = ["how to fix a flat tire", "green tea brewing", "红烧肉怎么炒糖色", "patch glue"]
    queries = [distinct[i % len(distinct)] for i in range(CALLS)]
    expected = {q: [h.chunk_id for h in index.search(q, k=3)] for q in distinct}
    ollama_server.delay = DELAY  # every embed request now waits 100 ms in the server
    ollama_server.requests.clear()

    async def run_all():
        started = time.perf_counter()
        results = await asyncio.gather(*(index.asearch(q, k=3) for q in queries))
        return results, time.perf_counter() - started

    results, elapsed = asyncio.run(run_all())
    assert elapsed < 0.4 * CALLS * DELAY, f"{CALLS} calls took {elapsed:.2f} s"
    assert [[h.chunk_id for h in hits] for hits in results] == [expected[q] for q in queries]
    assert sum(1 for path, _ in ollama_server.requests if path == "/api/embed") == CALLS


def test_event_loop_keeps_running_while_acontext_waits(rag_index, ollama_server):
    index, _ = rag_index
    ollama_server.delay = 0.3
    ticks = 0

    async def ticker(stop: asyncio.Event):
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(ticker(stop))
        context = await index.acontext("green tea brewing temperature", max_tokens=200)
        stop.set()
        await task
        return context

    context = asyncio.run(main())
    assert ticks >= 15, f"the event loop ran only {ticks} times during a 300 ms embed"
    assert context.sources and context.tokens <= 200
    assert context.text == index.context("green tea brewing temperature", max_tokens=200).text
