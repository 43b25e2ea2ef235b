"""`semsearch mcp` over stdio, driven by the official SDK's client (stdio_client + ClientSession)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.rag_corpus import build_index


def test_mcp_lists_tools_and_answers_search_and_context(tmp_path, ollama_server):
    index, _ = build_index(tmp_path, ollama_server.url)
    index.close()
    env = {key: value for key, value in os.environ.items() if key != "SEMSEARCH_INDEX"}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "semsearch", "mcp", "-i", str(index.path), "--ollama-host", ollama_server.url],
        env=env,
    )

    async def session_run():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {tool.name: tool for tool in (await session.list_tools()).tools}
                searched = await session.call_tool("search", {"query": "how to fix a flat bicycle tire", "k": 2})
                context = await session.call_tool("context", {"query": "红烧肉怎么炒糖色", "max_tokens": 150})
                return tools, searched, context

    tools, searched, context = asyncio.run(asyncio.wait_for(session_run(), timeout=120))
    assert {"search", "context"} <= set(tools)
    assert "query" in tools["search"].input_schema["properties"]
    assert "max_tokens" in tools["context"].input_schema["properties"]

    assert not searched.is_error
    hits = json.loads(searched.content[0].text)["hits"]
    assert len(hits) == 2 and "flat-tire" in hits[0]["path"]
    assert {"path", "line_start", "line_end", "score", "text"} <= set(hits[0])

    assert not context.is_error
    block = context.content[0].text
    assert block.startswith("[1] ") and "hongshao-rou.md" in block.splitlines()[0] and "糖色" in block


def test_mcp_reports_a_missing_index_in_one_line(tmp_path):
    import subprocess

    result = subprocess.run([sys.executable, "-m", "semsearch", "mcp", "-i", str(tmp_path / "none")],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and result.stdout == ""
    assert "no semsearch index" in result.stderr and "Traceback" not in result.stderr


def _params(index_path, host, *extra):
    env = {key: value for key, value in os.environ.items() if key != "SEMSEARCH_INDEX"}
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "semsearch", "mcp", "-i", str(index_path), "--ollama-host", host, *extra],
        env=env,
    )


def _session(params, calls):
    """Run `calls(session)` against a fresh `semsearch mcp` over stdio; its result."""
    async def run():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await calls(session)

    return asyncio.run(asyncio.wait_for(run(), timeout=180))


def _error_text(result):
    assert result.is_error, result
    text = result.content[0].text
    assert "\n" not in text and "Traceback" not in text
    return text


def test_mcp_errors_carry_the_library_message(tmp_path, ollama_server):
    index, corpus = build_index(tmp_path, ollama_server.url)
    index.close()

    async def calls(session):
        return {
            "empty": await session.call_tool("search", {"query": "   "}),
            "reranker": await session.call_tool("search", {"query": "flat tire", "k": 2,
                                                           "rerank_model": "dengcao/Qwen3-Reranker-8B:Q5_K_M"}),
            "reranked": await session.call_tool("search", {"query": "how to fix a flat bicycle tire", "k": 2,
                                                           "rerank_model": "dengcao/Qwen3-Reranker-0.6B:Q8_0"}),
            "context_reranker": await session.call_tool("context", {"query": "flat tire",
                                                                    "rerank_model": "no-such-reranker"}),
        }

    results = _session(_params(index.path, ollama_server.url), calls)
    assert "the query is empty" in _error_text(results["empty"])
    message = _error_text(results["reranker"])
    assert "Qwen3-Reranker-8B" in message and "ollama pull" in message
    assert "no-such-reranker" in _error_text(results["context_reranker"])
    assert not results["reranked"].is_error
    hits = json.loads(results["reranked"].content[0].text)["hits"]
    assert len(hits) == 2 and all(hit["rerank_score"] is not None for hit in hits)

    async def unreachable(session):
        return await session.call_tool("search", {"query": "flat tire"})

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    message = _error_text(_session(_params(index.path, dead, "--timeout", "5"), unreachable))
    assert "cannot reach" in message and dead.split("//")[1] in message


def test_mcp_get_multi_get_status_and_a_too_small_budget(tmp_path, ollama_server):
    index, corpus = build_index(tmp_path, ollama_server.url)
    index.close()
    tire = corpus.resolve() / "cycling" / "flat-tire.md"
    lines = tire.read_text(encoding="utf-8").splitlines()

    async def calls(session):
        tools = {tool.name for tool in (await session.list_tools()).tools}
        searched = await session.call_tool("search", {"query": "how to fix a flat bicycle tire", "k": 1})
        hit = json.loads(searched.content[0].text)["hits"][0]
        citation = f"{hit['path']}:{hit['line_start']}-{hit['line_end']}"
        return {
            "tools": tools,
            "hit": hit,
            "get": await session.call_tool("get", {"path": citation}),
            "range": await session.call_tool("get", {"path": str(tire), "line_start": 3, "line_end": 5}),
            "missing": await session.call_tool("get", {"path": "nowhere.md:1-2"}),
            "multi": await session.call_tool("multi_get", {"citations": [f"{tire}:1", "nowhere.md", citation]}),
            "status": await session.call_tool("status", {}),
            "tiny": await session.call_tool("context", {"query": "flat tire", "max_tokens": 3}),
        }

    results = _session(_params(index.path, ollama_server.url), calls)
    assert {"search", "context", "get", "multi_get", "status"} <= results["tools"]
    hit = results["hit"]
    got = json.loads(results["get"].content[0].text)
    assert got["text"] == "\n".join(lines[hit["line_start"] - 1:hit["line_end"]])
    assert got["citation"] == f"{hit['path']}:{hit['line_start']}" + (
        f"-{hit['line_end']}" if hit["line_end"] != hit["line_start"] else "")
    ranged = json.loads(results["range"].content[0].text)
    assert ranged["text"] == "\n".join(lines[2:5]) and ranged["citation"] == f"{tire}:3-5"
    assert "no document 'nowhere.md'" in _error_text(results["missing"])
    documents = json.loads(results["multi"].content[0].text)["documents"]
    assert documents[0]["text"] == lines[0] and documents[0]["citation"] == f"{tire}:1"
    assert documents[1]["request"] == "nowhere.md" and "no document" in documents[1]["error"]
    assert documents[2]["text"] == got["text"]
    status = json.loads(results["status"].content[0].text)
    assert status["documents"] == 4 and status["chunks"] > 4 and status["read_only"] is False
    message = _error_text(results["tiny"])
    assert "max_tokens=3 is too small" in message and "No passages" not in message


def test_mcp_search_and_context_take_filter_expressions(tmp_path, ollama_server):
    from semsearch import Index, TextItem

    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        index.add_texts(TextItem(f"report/{year}", f"The {year} annual report on kettle descaling.", {"year": year})
                        for year in range(2016, 2026))

    async def calls(session):
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        query = "annual report on kettle descaling"
        return {
            "tools": tools,
            "search": await session.call_tool("search", {"query": query, "k": 3, "where": ["year>=2020", "-has:x"]}),
            "context": await session.call_tool("context", {"query": query, "where": ["year<2017"]}),
            "bad": await session.call_tool("search", {"query": query, "where": ["year>=abc"]}),
        }

    results = _session(_params(tmp_path / "idx", ollama_server.url), calls)
    schema = results["tools"]["search"].input_schema["properties"]["where"]
    assert "has:KEY" in schema["description"]
    assert "where" in results["tools"]["context"].input_schema["properties"]
    hits = json.loads(results["search"].content[0].text)["hits"]
    assert len(hits) == 3 and all(hit["metadata"]["year"] >= 2020 for hit in hits)
    block = results["context"].content[0].text
    assert "report/2016" in block.splitlines()[0] and "report/2017" not in block
    assert "year holds numbers" in _error_text(results["bad"])
