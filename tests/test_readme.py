"""The README's Python examples run as written, against the demo corpus and the test server.

Each ```python block runs in its own interpreter, in a temporary directory holding a copy of
`data/` (indexed there into `.semsearch`, as the quickstart does) and `tests/data/beir-mini`,
with OLLAMA_HOST pointing at the Ollama-protocol test server. A block is left out only when
the README itself says why, in an HTML comment on the line before its fence:
`<!-- not run: needs a reranker server -->`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from semsearch import Index
from tests.helpers import DATA
from tests.ollama_server import ModelSpec, OllamaTestServer, default_models

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>\S.*?)\s*-->")


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    code: str
    skip_reason: str | None


def python_blocks(text: str) -> list[Block]:
    """Every ```python block of a Markdown text, with the reason it is not run, if one is given."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```python":
            start = index
            index += 1
            body = []
            while index < len(lines) and lines[index].strip() != "```":
                body.append(lines[index])
                index += 1
            previous = next((line for line in reversed(lines[:start]) if line.strip()), "")
            marked = NOT_RUN.search(previous)
            blocks.append(Block(start + 1, "\n".join(body) + "\n", marked.group("reason") if marked else None))
        index += 1
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))
RUNNABLE = [block for block in BLOCKS if block.skip_reason is None]


def test_the_readme_has_python_examples_and_few_are_left_out():
    assert len(RUNNABLE) >= 4
    assert len(BLOCKS) - len(RUNNABLE) <= len(BLOCKS) // 4, [(b.line, b.skip_reason) for b in BLOCKS]


def test_a_block_is_left_out_only_with_a_visible_reason():
    text = "Intro\n\n<!-- not run: needs a GPU -->\n```python\nprint(1)\n```\n\n```python\nprint(2)\n```\n"
    assert [(b.line, b.code, b.skip_reason) for b in python_blocks(text)] == [
        (4, "print(1)\n", "needs a GPU"), (8, "print(2)\n", None)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder with the demo data indexed into .semsearch, and a test server with the README's models."""
    models = {**default_models(),
              "dengcao/Qwen3-Reranker-4B:Q4_K_M": ModelSpec("reranker", context_length=40960, architecture="qwen3")}
    with OllamaTestServer(models=models) as server:
        folder = tmp_path_factory.mktemp("readme")
        shutil.copytree(DATA, folder / "data")
        shutil.copytree(ROOT / "tests" / "data" / "beir-mini", folder / "tests" / "data" / "beir-mini")
        with Index.open(folder / ".semsearch", ollama_host=server.url) as index:
            index.index([folder / "data"])
        yield folder, server


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"README.md:{block.line}" for block in RUNNABLE])
def test_readme_python_block_runs(block, workspace):
    folder, server = workspace
    env = {key: value for key, value in os.environ.items() if not key.startswith("SEMSEARCH_")}
    env.update({"OLLAMA_HOST": server.url, "SEMSEARCH_CACHE": str(folder / "cache"),
                "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")})
    script = folder / f"readme_block_{block.line}.py"
    script.write_text(block.code, encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, (
        f"the ```python block at README.md:{block.line} failed (exit {result.returncode}):\n"
        f"{block.code}\n--- stderr ---\n{result.stderr[-3000:]}"
    )
