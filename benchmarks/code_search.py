"""Code search quality: the text chunker vs tree-sitter chunks, on docstring → function queries.

The set is built from the Python sources vendored in tests/data/code-search/src (requests, click,
attrs; provenance in tests/data/code-search/README.md), CodeSearchNet-style: every function with
a docstring whose first line has at least four words gives a query (that first line) whose one
relevant document is the function; every function docstring is removed from the indexed code,
so a query cannot match its own words. First lines that occur twice are dropped (ambiguous).
The set is written in BEIR layout (corpus.jsonl: one document per function, its code without
the docstring; queries.jsonl; qrels/test.tsv) to `--work`/beir.

The stripped source files are then indexed as files, once per chunker (the text chunker; tree-sitter
with one definition per chunk, the default; tree-sitter packing small neighbours), and every query
is run in vector, keyword and hybrid mode. A chunk hit stands for the functions whose lines it
overlaps (most overlapping lines first); functions are ranked by their first appearance, and
nDCG@10 / Recall@10 / MRR@10 are computed with semsearch.evaluate's definitions.

    python -m tests.ollama_server --port 11537 &
    python benchmarks/code_search.py --ollama-host http://127.0.0.1:11537

Prints JSON and rewrites the "## Code search: text chunks vs tree-sitter chunks" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import emit, machine, table  # noqa: E402
from semsearch import Index  # noqa: E402
from semsearch import code_chunks  # noqa: E402
from semsearch.evaluate import mrr_at, ndcg_at, recall_at  # noqa: E402

SOURCES = Path(__file__).resolve().parents[1] / "tests" / "data" / "code-search" / "src"
MODES = ("vector", "keyword", "hybrid")
CHUNKERS = {  # name → (code_chunks, pack small definitions together)
    "text": (False, False),
    "tree-sitter": (True, False),
    "tree-sitter, packed": (True, True),
}
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _functions(tree: ast.AST) -> list[tuple[str, ast.AST]]:
    """(qualified name, node) of every function, in source order; a repeated name gets `#2`, `#3`."""
    found: list[tuple[str, ast.AST]] = []
    seen: Counter[str] = Counter()

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (*_FUNCTIONS, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if isinstance(child, _FUNCTIONS):
                    seen[name] += 1
                    found.append((name if seen[name] == 1 else f"{name}#{seen[name]}", child))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _strip_docstrings(text: str) -> tuple[str, dict[str, str]]:
    """The source without function docstrings, and each documented function's docstring."""
    tree = ast.parse(text)
    lines = text.split("\n")
    docstrings: dict[str, str] = {}
    cuts = []
    for name, node in _functions(tree):
        doc = ast.get_docstring(node, clean=True)
        if doc is None:
            continue
        docstrings[name] = doc
        statement = node.body[0]
        indent = " " * statement.col_offset
        replacement = [f"{indent}pass"] if len(node.body) == 1 else []
        cuts.append((statement.lineno - 1, statement.end_lineno, replacement))
    for start, end, replacement in sorted(cuts, reverse=True):
        lines[start:end] = replacement
    return "\n".join(lines), docstrings


def build(work: Path) -> tuple[Path, dict[str, str], dict[str, str], dict[str, tuple[str, int, int]]]:
    """Write the stripped sources and the BEIR set under `work`.

    Returns (source folder, queries {id: text}, qrels {query id: function id},
    functions {id: (relative path, first line, last line)}).
    """
    source_dir = work / "src"
    shutil.rmtree(work, ignore_errors=True)
    functions: dict[str, tuple[str, int, int]] = {}
    corpus = []
    candidates: list[tuple[str, str]] = []  # (first docstring line, function id)
    for path in sorted(SOURCES.rglob("*.py")):
        relative = path.relative_to(SOURCES).as_posix()
        stripped, docstrings = _strip_docstrings(path.read_text(encoding="utf-8"))
        target = source_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(stripped, encoding="utf-8")
        lines = stripped.split("\n")
        for name, node in _functions(ast.parse(stripped)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            function_id = f"{relative}::{name}"
            functions[function_id] = (relative, first, node.end_lineno)
            corpus.append({"_id": function_id, "title": "", "text": "\n".join(lines[first - 1 : node.end_lineno])})
            if name in docstrings:
                query = docstrings[name].strip().split("\n")[0].strip()
                if len(query.split()) >= 4:
                    candidates.append((query, function_id))
    counts = Counter(query for query, _ in candidates)
    queries, qrels = {}, {}
    for query, function_id in candidates:
        if counts[query] == 1:
            query_id = f"q{len(queries) + 1}"
            queries[query_id], qrels[query_id] = query, function_id
    beir = work / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus), encoding="utf-8")
    (beir / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()), encoding="utf-8")
    (beir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{f}\t1\n" for q, f in qrels.items()), encoding="utf-8")
    return source_dir, queries, qrels, functions


def _ranked_functions(hits, source_dir: Path, by_file: dict[str, list[tuple[str, int, int]]]) -> list[str]:
    ranked: list[str] = []
    for hit in hits:
        relative = Path(hit.path).resolve().relative_to(source_dir.resolve()).as_posix()
        overlaps = []
        for function_id, first, last in by_file.get(relative, ()):
            overlap = min(last, hit.line_end) - max(first, hit.line_start) + 1
            if overlap > 0:
                overlaps.append((-overlap, first, function_id))
        for _, _, function_id in sorted(overlaps):
            if function_id not in ranked:
                ranked.append(function_id)
    return ranked


def run(args) -> dict:
    source_dir, queries, qrels, functions = build(args.work)
    by_file: dict[str, list[tuple[str, int, int]]] = {}
    for function_id, (relative, first, last) in functions.items():
        by_file.setdefault(relative, []).append((function_id, first, last))
    results = {}
    shipped = code_chunks.PACK_DEFINITIONS
    for name, (code, pack) in CHUNKERS.items():
        code_chunks.PACK_DEFINITIONS = pack
        index_dir = args.work / f"index-{name.replace(', ', '-')}"
        started = time.perf_counter()
        with Index.open(index_dir, ollama_host=args.ollama_host, chunk_tokens=args.chunk_tokens,
                        code_chunks=code) as index:
            report = index.index([source_dir])
            seconds = time.perf_counter() - started
            entry = {"chunks": report.chunks_total, "index_seconds": round(seconds, 1)}
            for mode in MODES:
                scores = {"ndcg@10": [], "recall@10": [], "mrr@10": []}
                for query_id, query in queries.items():
                    hits = index.search(query, k=args.depth, mode=mode)
                    ranked = _ranked_functions(hits, source_dir, by_file)
                    relevance = {qrels[query_id]: 1}
                    scores["ndcg@10"].append(ndcg_at(ranked, relevance, 10))
                    scores["recall@10"].append(recall_at(ranked, relevance, 10))
                    scores["mrr@10"].append(mrr_at(ranked, relevance, 10))
                entry[mode] = {metric: round(sum(v) / len(v), 4) for metric, v in scores.items()}
        results[name] = entry
        print(json.dumps({name: entry}), file=sys.stderr, flush=True)
    code_chunks.PACK_DEFINITIONS = shipped
    return {"machine": machine(), "files": len({f[0] for f in functions.values()}), "functions": len(functions),
            "queries": len(queries), "chunk_tokens": args.chunk_tokens, "depth": args.depth, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ollama-host", required=True, help="An Ollama(-protocol) server, e.g. the test server.")
    parser.add_argument("--work", type=Path, default=Path("/tmp/semsearch-code-search"),
                        help="Where the BEIR set, stripped sources and indexes go (rebuilt each run).")
    parser.add_argument("--chunk-tokens", type=int, default=400)
    parser.add_argument("--depth", type=int, default=50, help="Chunk hits fetched per query.")
    args = parser.parse_args()
    data = run(args)
    rows = []
    for name, entry in data["results"].items():
        rows.append([name, entry["chunks"]] + [f"{entry[mode]['ndcg@10']:.3f}" for mode in MODES]
                    + [f"{entry[mode]['recall@10']:.3f}" for mode in MODES])
    body = (
        f"{data['queries']} docstring → function queries over {data['functions']} functions in {data['files']} "
        "Python files of requests 2.32.3, click 8.5.1 and attrs 26.1.0 (tests/data/code-search; docstrings "
        f"removed from the indexed code), indexed as files at {data['chunk_tokens']} tokens per chunk; model: "
        "the test server's multilingual-e5-small. A chunk hit counts for the functions whose lines it "
        f"overlaps (most lines first), from the top {data['depth']} chunks.\n\n"
        + table(["chunker", "chunks", "vector nDCG@10", "keyword nDCG@10", "hybrid nDCG@10",
                 "vector R@10", "keyword R@10", "hybrid R@10"], rows)
    )
    emit("Code search: text chunks vs tree-sitter chunks", data, body)


if __name__ == "__main__":
    main()
