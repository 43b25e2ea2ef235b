"""Filters with operators and built-in document fields, applied inside retrieval over a real SQLite
store and real FAISS (flat and HNSW), with an in-process embedder; and the CLI's --where, --since,
--after, --before and --type against the test Ollama server."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

import pytest
from click.testing import CliRunner

from semsearch import FilterError, Index, TextItem
from semsearch.cli import cli
from semsearch.search import search
from semsearch.vectors import VectorIndex

from tests.helpers import new_document

NOW_NS = time.time_ns()
DAY_NS = 86_400 * 10**9
QUERY = "green tea leaves brewing"


def _notes(embedder):
    """40 files: the 20 `strong/` ones say far more about green tea than the 20 `weak/` ones,
    and every filter below keeps exactly the weak ones."""
    documents = []
    for i in range(20):
        strong = new_document(f"strong/{i:02}.txt", [f"Green tea note {i}: green tea leaves, green tea brewing, "
                                                     "green tea."], embedder, kind="file",
                              metadata={"year": 1990 + i, "draft": True, "date": f"2025-0{1 + i % 9}-15",
                                        "reviewer": "Bo"})
        documents.append(replace(strong, mtime_ns=NOW_NS - 60 * DAY_NS, size=900))
        weak_metadata = {"year": 2020 + i, "date": f"2024-0{1 + i % 5}-{10 + i}", "author": "Ana"}
        if i % 2:
            weak_metadata["draft"] = False
        weak = new_document(f"weak/{i:02}.md", [f"Archive note {i} mentions green tea once among other drinks."],
                            embedder, kind="file", metadata=weak_metadata)
        documents.append(replace(weak, mtime_ns=NOW_NS - 3_600 * 10**9, size=20_000))
    return documents


@pytest.fixture(params=["flat", "hnsw"])
def notes(request, store, embedder):
    store.write_documents(_notes(embedder))
    vectors = VectorIndex.build(request.param, embedder.dimensions, store.iter_vectors, store.counts()[1])
    return store, vectors, embedder


KEEP_WEAK = ["year>=2020", "year>2019", "date<2024-06-01", "draft!=true", "has:author", "-has:reviewer",
             "mtime>=7d", "mtime>=2d", "size>10k", "suffix=.md", "suffix=md"]


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_every_operator_keeps_k_hits_when_the_matching_documents_are_the_least_similar(notes, mode):
    store, vectors, embedder = notes
    unfiltered = search(store, vectors, embedder, QUERY, k=10, mode=mode)
    assert len(unfiltered) == 10 and all("/strong/" in hit.path for hit in unfiltered)  # post-filter: 0
    for expression in KEEP_WEAK:
        hits = search(store, vectors, embedder, QUERY, k=10, mode=mode, where=[expression])
        assert len(hits) == 10, expression
        assert all("/weak/" in hit.path for hit in hits), expression
        assert [hit.rank for hit in hits] == list(range(1, 11))
    both = search(store, vectors, embedder, QUERY, k=10, mode=mode, where=["year>=2030", "mtime>=1d"])
    assert sorted(hit.metadata["year"] for hit in both) == list(range(2030, 2040))


def test_a_single_expression_string_and_the_old_dict_form_both_work(notes):
    store, vectors, embedder = notes
    assert {_relative(h.path) for h in search(store, vectors, embedder, QUERY, k=50, where="year<1995")} == {
        f"strong/{i:02}.txt" for i in range(5)}
    assert {_relative(h.path) for h in search(store, vectors, embedder, QUERY, k=50, where={"draft": False})} == {
        f"weak/{i:02}.md" for i in range(1, 20, 2)}


def _relative(path: str) -> str:
    return "/".join(path.split("/")[-2:])


@pytest.fixture
def mixed(store, embedder):
    """Years as numbers and as quoted strings of different lengths (text order would differ),
    dates and date-times, a list-valued key and a text key."""
    rows = [("a", {"year": 999, "when": "2024-05-31T23:30:00", "tags": ["x", "y"], "name": "apple"}),
            ("b", {"year": "1999", "when": "2024-06-01", "tags": ["z"], "name": "Banana"}),
            ("c", {"year": 2024, "when": "2024-06-01T00:00:01", "name": "cherry"}),
            ("d", {"year": 10000})]
    store.write_documents([new_document(key, [f"note {key}"], embedder, metadata=meta) for key, meta in rows])
    return store, VectorIndex.build("flat", embedder.dimensions, store.iter_vectors, store.counts()[1]), embedder


def test_numbers_compare_as_numbers_dates_as_time_and_the_rest_as_text(mixed):
    store, vectors, embedder = mixed

    def keys(*where):
        return sorted(h.path for h in search(store, vectors, embedder, "note", k=50, where=list(where)))

    assert keys("year<2000") == ["a", "b"]            # as text, "999" and "10000" would sort the other way
    assert keys("year>=2024") == ["c", "d"]
    assert keys("year>=1e4") == ["d"]
    assert keys("when<2024-06-01") == ["a"]           # a date is its midnight; 23:30 the day before is earlier
    assert keys("when>=2024-06-01") == ["b", "c"]
    assert keys("when>2024-06-01T00:00:00") == ["c"]
    assert keys("name>=b") == ["c"]                   # text: code-point order, as given
    assert keys("year>=2000", "year<=2024") == ["c"]  # all conditions hold
    assert keys("tags=x", "tags=z") == ["a", "b"]     # `=` on one key: any of the values
    assert keys("tags!=x") == ["b", "c", "d"]         # documents without the key pass !=
    assert keys("has:tags", "-has:when") == []
    assert keys("-has:name") == ["d"]


@pytest.mark.parametrize("expression, message", [
    ("year>=abc", "year holds numbers"),
    ("when<soon", "when holds dates"),
    ("year>true", "true and false have no order"),
    ("size>huge", "size is a number of bytes"),
    ("mtime>=yesterday", "mtime is a time"),
    ("suffix>.md", "suffix can only be compared with = or !="),
    ("year>>2020", "is not a filter"),
    ("year", "is not a filter"),
    ("=2020", "is not a filter"),
    ("has:", "names no key"),
    ("year<", "compares year with nothing"),
])
def test_a_malformed_or_wrongly_typed_filter_is_a_filter_error_naming_it(mixed, expression, message):
    store, vectors, embedder = mixed
    with pytest.raises(FilterError, match=message) as raised:
        search(store, vectors, embedder, "note", k=5, where=[expression])
    assert "\n" not in str(raised.value)


def test_filters_import_without_numpy_or_faiss():
    import subprocess
    import sys

    code = ("import sys, semsearch.filters as f; f.conditions(['year>=2020', 'mtime>=7d']); "
            "print(sorted(m for m in ('numpy', 'faiss') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stderr


# -- the command line -----------------------------------------------------------------------------

def invoke(args, *, host):
    return CliRunner().invoke(cli, [*args, "--ollama-host", host])


@pytest.fixture
def aged_folder(tmp_path, ollama_server):
    """12 old notes that are all about green tea and 12 recent ones that mention it once, indexed."""
    folder = tmp_path / "notes"
    folder.mkdir()
    old = time.time() - 30 * 86_400
    for i in range(12):
        (folder / f"old-{i:02}.md").write_text(
            f"---\nyear: {1990 + i}\n---\n# Green tea {i}\n\nGreen tea leaves, green tea brewing, green tea.\n",
            encoding="utf-8")
        os.utime(folder / f"old-{i:02}.md", (old, old))
        (folder / f"new-{i:02}.txt").write_text(f"Note {i} on a trip; we drank green tea once.\n" + "x " * 300,
                                                encoding="utf-8")
    index = tmp_path / "idx"
    result = invoke(["index", str(folder), "-i", str(index)], host=ollama_server.url)
    assert result.exit_code == 0, result.output
    return index


def _names(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [os.path.basename(hit["path"]) for hit in json.loads(result.stdout)]


def test_since_after_before_type_and_size_on_the_command_line_keep_k_hits(aged_folder, ollama_server):
    base = ["search", QUERY, "-i", str(aged_folder), "-k", "5", "--json"]
    host = ollama_server.url
    assert all(name.startswith("old-") for name in _names(invoke(base, host=host)))
    for extra in (["--since", "7d"], ["--after", time.strftime("%Y-%m-%d", time.localtime(time.time() - 86_400))],
                  ["--type", "txt"], ["-t", "txt", "--since", "2h"], ["--where", "size>0.5k"]):
        names = _names(invoke(base + extra, host=host))
        assert len(names) == 5 and all(name.startswith("new-") for name in names), extra
    none = invoke(base + ["--before", "2000-01-01T00:00", "--type", "txt"], host=host)
    assert none.exit_code == 1 and json.loads(none.stdout) == [] and "No results" in none.stderr
    older = _names(invoke(base + ["--before", time.strftime("%Y-%m-%d"), "--type", "md", "--where", "year>=1995"],
                          host=host))
    assert len(older) == 5 and all(name.startswith("old-") for name in older)


@pytest.mark.parametrize("args, needle", [
    (["--where", "year>=abc"], "year holds numbers"),
    (["--where", "year>>2020"], "is not a filter"),
    (["--where", "has:"], "names no key"),
    (["--since", "soon"], "--since"),
    (["--after", "2026-13-45"], "--after"),
])
def test_a_wrongly_typed_or_malformed_filter_is_one_line_and_exit_2(aged_folder, ollama_server, args, needle):
    for command in ("search", "context"):
        result = invoke([command, QUERY, "-i", str(aged_folder), *args], host=ollama_server.url)
        assert result.exit_code == 2, (command, result.output)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and needle in lines[0], (command, result.stderr)


def test_an_unknown_key_in_a_comparison_names_it_and_the_keys_there_are(aged_folder, ollama_server):
    result = invoke(["search", QUERY, "-i", str(aged_folder), "--where", "rating>=3"], host=ollama_server.url)
    assert result.exit_code == 1
    assert "no document has the metadata key 'rating'" in result.stderr and "year" in result.stderr


def test_the_library_takes_the_same_expressions_as_the_cli(tmp_path, ollama_server):
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        index.add_texts([TextItem(f"t{i}", f"Green tea note {i}.", {"year": 2018 + i}) for i in range(5)])
        assert sorted(h.path for h in index.search("green tea", k=5, where=["year>=2020", "mtime>=1h"])) == [
            "t2", "t3", "t4"]
        assert index.search("green tea", k=5, where=["mtime<1h"]) == []  # a text's mtime: when it was added
