"""Code-aware chunking (semsearch.code_chunks through chunking.chunk): function boundaries, heading
paths, the budget, every listed language, the `code` extra missing, and re-chunking on a switch."""

from __future__ import annotations

import ast
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch import Index, code_chunks
from semsearch.chunking import chunk
from semsearch.errors import MissingDependencyError
from semsearch.extract.text import parse_code
from semsearch.tokens import estimate_tokens

from tests.helpers import assert_one_clean_line

VENDORED = sorted((Path(__file__).parent / "data" / "code-search" / "src").rglob("*.py"))
_SOURCES = {path: path.read_text(encoding="utf-8") for path in VENDORED}


def code_chunks_of(text: str, name: str, max_tokens: int):
    return chunk(parse_code(text, name), max_tokens=max_tokens, overlap_tokens=0, code=True)


def _function_spans(text: str) -> list[tuple[int, int, str]]:
    """(first line, last line, source) of every function, decorators included, found by Python's ast
    (independently of tree-sitter)."""
    offsets = [0]
    for line in text.split("\n"):
        offsets.append(offsets[-1] + len(line) + 1)
    spans = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node, *node.decorator_list], key=lambda n: (n.lineno, n.col_offset))
            start = offsets[first.lineno - 1] + first.col_offset
            end = offsets[node.end_lineno] - 1  # the whole last line: a trailing comment is part of the function
            spans.append((first.lineno, node.end_lineno, text[start:end]))
    return spans


def test_the_vendored_sources_parse_cleanly():
    # Otherwise the property test below would only exercise the text fallback.
    assert len(VENDORED) >= 20
    for path, text in _SOURCES.items():
        assert code_chunks.split_code(text, "python", 400) is not None, path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(VENDORED), budget=st.integers(min_value=24, max_value=700))
def test_tree_sitter_chunks_never_split_a_short_function_and_stay_within_budget(path, budget):
    text = _SOURCES[path]
    chunks = code_chunks_of(text, path.name, budget)
    covered = []
    previous_end = 0
    for piece in chunks:
        assert piece.tokens == estimate_tokens(piece.text) <= budget
        assert piece.text == text[piece.char_start : piece.char_end] and piece.text.strip() == piece.text
        assert piece.line_start == text.count("\n", 0, piece.char_start) + 1
        assert piece.line_end == text.count("\n", 0, piece.char_end - 1) + 1
        assert piece.char_start >= previous_end  # in order, no overlap
        covered.append(text[previous_end : piece.char_start])
        previous_end = piece.char_end
    covered.append(text[previous_end:])
    assert all(gap.strip() == "" for gap in covered)  # nothing dropped
    for first, last, source in _function_spans(text):
        if estimate_tokens(source) <= budget:
            assert any(c.line_start <= first and last <= c.line_end for c in chunks), (path.name, first, last)


LONG_BODY = "\n".join(f"        total += compute_step_number_{i}(value, factor={i})" for i in range(60))
PYTHON = f'''"""Module docstring."""
import os


class Ledger:
    """Keeps accounts."""

    def balance(self, account):
        return self.accounts[account]

    def replay(self, value):
        total = 0
{LONG_BODY}
        return total


def helper(x):
    return x * 2
'''


def test_heading_path_is_the_enclosing_class_and_function_names():
    chunks = code_chunks_of(PYTHON, "ledger.py", 200)
    paths = [c.heading_path for c in chunks]
    balance = next(c for c in chunks if "def balance" in c.text)
    assert balance.heading_path == ("Ledger", "balance")
    replay = [c for c in chunks if "compute_step_number_" in c.text]
    assert len(replay) > 1 and all(c.heading_path == ("Ledger", "replay") for c in replay)
    assert "def replay(self, value):" in replay[0].text  # the signature leads the first piece
    assert next(c for c in chunks if "def helper" in c.text).heading_path == ("helper",)
    assert paths[0] == ()  # the module docstring and imports belong to no definition
    # Statement boundaries: every piece of the long method holds whole lines.
    assert all(c.text.endswith(")") or c.text.endswith("total") for c in replay)


# One small file per listed language: two functions (or methods) that must land in separate
# chunks whose heading paths name them, each holding its whole body.
LANGUAGE_FIXTURES = {
    "sample.py": ("class Greeter:\n    def alpha(self):\n        return 'alpha body'\n\n"
                  "    def gamma(self):\n        return 'gamma body'\n\n\n"
                  "def beta():\n    return 'beta body'\n",
                  [("Greeter", "alpha"), ("beta",)]),
    "sample.js": ("class Greeter {\n  alpha() {\n    return 'alpha body';\n  }\n\n"
                  "  gamma() {\n    return 'gamma body';\n  }\n}\n\n"
                  "function beta() {\n  return 'beta body';\n}\n",
                  [("Greeter", "alpha"), ("beta",)]),
    "sample.ts": ("export class Greeter {\n  alpha(): string {\n    return 'alpha body';\n  }\n\n"
                  "  gamma(): string {\n    return 'gamma body';\n  }\n}\n\n"
                  "export const beta = (): string => {\n  return 'beta body';\n};\n",
                  [("Greeter", "alpha"), ("beta",)]),
    "sample.tsx": ("function alpha(): JSX.Element {\n  return <div>alpha body</div>;\n}\n\n"
                   "function beta(): JSX.Element {\n  return <span>beta body</span>;\n}\n",
                   [("alpha",), ("beta",)]),
    "sample.go": ("package sample\n\ntype Greeter struct{}\n\n"
                  "func (g Greeter) alpha() string {\n\treturn \"alpha body\"\n}\n\n"
                  "func beta() string {\n\treturn \"beta body\"\n}\n",
                  [("alpha",), ("beta",)]),
    "sample.rs": ("struct Greeter;\n\nimpl Greeter {\n    fn alpha(&self) -> &str {\n        \"alpha body\"\n    }\n\n"
                  "    fn gamma(&self) -> &str {\n        \"gamma body\"\n    }\n}\n\n"
                  "fn beta() -> &'static str {\n    \"beta body\"\n}\n",
                  [("Greeter", "alpha"), ("beta",)]),
    "Sample.java": ("public class Greeter {\n    String alpha() {\n        return \"alpha body\";\n    }\n\n"
                    "    static String beta() {\n        return \"beta body\";\n    }\n}\n",
                    [("Greeter", "alpha"), ("Greeter", "beta")]),
    "sample.c": ("#include <stdio.h>\n\nstatic const char *alpha(void) {\n    return \"alpha body\";\n}\n\n"
                 "const char *beta(int n) {\n    return n ? \"beta body\" : \"\";\n}\n",
                 [("alpha",), ("beta",)]),
    "sample.cpp": ("namespace demo {\nclass Greeter {\n public:\n  std::string alpha() const {\n"
                   "    return \"alpha body\";\n  }\n\n  std::string gamma() const {\n    return \"gamma body\";\n  }\n"
                   "};\n}\n\nstd::string beta() {\n  return \"beta body\";\n}\n",
                   [("demo", "Greeter", "alpha"), ("beta",)]),
}


@pytest.mark.parametrize("name", sorted(LANGUAGE_FIXTURES))
def test_each_listed_language_chunks_at_function_boundaries(name):
    source, expected_paths = LANGUAGE_FIXTURES[name]
    # A budget that holds either function but not the whole file, so packing cannot hide a cut.
    budget = max(estimate_tokens(source) // 2, 16)
    chunks = code_chunks_of(source, name, budget)
    for body, path in zip(("alpha body", "beta body"), expected_paths):
        holding = [c for c in chunks if body in c.text]
        assert len(holding) == 1, (name, [c.text for c in chunks])
        other = "beta body" if body == "alpha body" else "alpha body"
        assert other not in holding[0].text
        assert holding[0].heading_path == path, (name, holding[0].heading_path)
        function = "alpha" if body == "alpha body" else "beta"
        assert function in holding[0].text.split(body)[0]  # the signature is in the same chunk
    assert all(c.tokens <= budget for c in chunks)


def test_unknown_language_and_unparsable_code_use_the_text_chunker():
    broken = "def alpha(:\n    return 1\n\n" * 3
    text_chunks = chunk(parse_code(broken, "broken.py"), max_tokens=400, overlap_tokens=0)
    assert code_chunks_of(broken, "broken.py", 400) == text_chunks
    ruby = "def alpha\n  1\nend\n\ndef beta\n  2\nend\n"
    assert code_chunks_of(ruby, "sample.rb", 400) == chunk(parse_code(ruby, "sample.rb"), max_tokens=400,
                                                            overlap_tokens=0)


# -- the extra, the setting, re-chunking ---------------------------------------------------------


@pytest.fixture
def mixed_sources(tmp_path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "ledger.py").write_text(PYTHON, encoding="utf-8")
    (folder / "notes.md").write_text("# Notes\n\nThe ledger keeps accounts balanced.\n", encoding="utf-8")
    return folder


@pytest.fixture
def without_code_extra(monkeypatch) -> None:
    """This process as if tree-sitter were not installed (no parser loaded yet either)."""
    monkeypatch.setitem(sys.modules, "tree_sitter", None)  # what `import` sees when the package is absent
    monkeypatch.setattr(code_chunks, "_PARSERS", {})


def test_asking_for_code_chunks_without_the_extra_is_one_line_naming_the_pip_command(tmp_path, mixed_sources,
                                                                                    without_code_extra):
    with pytest.raises(MissingDependencyError, match=r"pip install 'semsearch\[code\]'"):
        code_chunks.require_extra()
    code = ("import sys; sys.modules['tree_sitter'] = None; from semsearch.cli import main; "
            f"sys.argv = ['semsearch', 'index', {str(mixed_sources)!r}, '--code-chunks']; main()")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert_one_clean_line(result, "pip install 'semsearch[code]'")
    assert not (tmp_path / ".semsearch" / "vectors.faiss").exists()


def test_without_the_extra_a_new_index_falls_back_to_text_chunks(tmp_path, mixed_sources, ollama_server,
                                                                 without_code_extra):
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        report = index.index([mixed_sources])
        assert report.files_added == 2 and report.files_failed == 0
        assert index.status().code_chunker == ""
        hit = index.search("replay compute step", k=1, mode="keyword")[0]
    assert hit.heading_path == ()  # the text chunker knows no function names


def test_switching_code_chunks_on_rechunks_only_source_files(tmp_path, mixed_sources, ollama_server):
    where = tmp_path / "idx"
    with Index.open(where, ollama_host=ollama_server.url, code_chunks=False) as index:
        index.index([mixed_sources])
        assert index.status().code_chunker == ""
    with Index.open(where, ollama_host=ollama_server.url) as index:  # no flag: the recorded choice stands
        again = index.index([mixed_sources])
    assert (again.files_unchanged, again.files_updated, again.chunks_embedded) == (2, 0, 0)
    with Index.open(where, ollama_host=ollama_server.url, code_chunks=True) as index:
        switched = index.index([mixed_sources])
        assert (switched.files_unchanged, switched.files_updated) == (1, 1)  # notes.md untouched
        assert index.status().code_chunker == code_chunks.CHUNKER_VERSION
        hit = index.search("replay compute step", k=1, mode="keyword")[0]
        assert hit.heading_path == ("Ledger", "replay")
    with Index.open(where, ollama_host=ollama_server.url) as index:
        settled = index.index([mixed_sources])
    assert (settled.files_unchanged, settled.chunks_embedded) == (2, 0)


def test_a_new_index_uses_code_chunks_when_the_extra_is_installed(tmp_path, mixed_sources, ollama_server):
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        index.index([mixed_sources])
        assert index.status().code_chunker == code_chunks.CHUNKER_VERSION
        hit = index.search("balance of an account", k=5, mode="keyword")
    assert ("Ledger", "balance") in [h.heading_path for h in hit]


def test_an_index_from_before_code_chunks_is_not_rechunked_on_upgrade(tmp_path, mixed_sources, ollama_server):
    where = tmp_path / "idx"
    with Index.open(where, ollama_host=ollama_server.url, code_chunks=False) as index:
        index.index([mixed_sources])
    with sqlite3.connect(where / "semsearch.db") as db:  # what an older version wrote: no such key
        db.execute("DELETE FROM meta WHERE key = 'code_chunker'")
    with Index.open(where, ollama_host=ollama_server.url) as index:  # the extra is installed here
        report = index.index([mixed_sources])
        assert index.status().code_chunker == ""
    assert (report.files_unchanged, report.files_updated, report.chunks_embedded) == (2, 0, 0)
