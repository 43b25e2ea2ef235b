"""`semsearch mcp` over stdio, driven by the official SDK's client (stdio_client + ClientSession)."""

from __future__ import annotations

import asyncio
import json
import os
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
