"""Remembered sources: `index` with no path refreshes what the index was given, `sources` lists and forgets.

Runs the library and the `semsearch` command (in-process, through click's runner) against the
Ollama-protocol test server, on small folders of one-chunk files.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch import Index, SourceNotFoundError
from semsearch.cli import cli

from tests.helpers import copy_v3_index


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path) -> Path:
    """A project with two folders, a/ (with a/sub) and b/; its index goes in home/.semsearch."""
    home = tmp_path / "project"
    write(home / "a" / "tea.md", "Green tea is steamed or pan-fired soon after picking.\n")
    write(home / "a" / "sub" / "bread.md", "Sourdough bread rises slowly with a wild yeast starter.\n")
    write(home / "b" / "bicycle.txt", "Fix a flat bicycle tyre with a patch and a pump.\n")
    return home


@pytest.fixture
def semsearch(home, ollama_server):
    """Run `semsearch ARGS -i home/.semsearch` in-process against the test server."""

    def invoke(*args: str):
        return CliRunner().invoke(cli, [*args, "-i", str(home / ".semsearch")],
                                  env={"OLLAMA_HOST": ollama_server.url, "SEMSEARCH_INDEX": None},
                                  catch_exceptions=False)

    return invoke


def names(hits) -> set[str]:
    return {Path(hit.path).name for hit in hits}


def test_index_with_no_path_refreshes_every_remembered_folder_and_sources_lists_them(home, semsearch,
                                                                                    ollama_server):
    assert semsearch("index", str(home / "a"), str(home / "b")).exit_code == 0
    write(home / "a" / "tea.md", "Oolong tea is partly oxidised and rolled into pearls.\n")
    write(home / "a" / "sub" / "stars.md", "Binoculars show the moons of Jupiter on a clear night.\n")
    write(home / "b" / "bicycle.txt", "Adjust the saddle height until your heel rests on the pedal.\n")
    write(home / "b" / "paper.txt", "Cai Lun improved papermaking in China around 105 AD.\n")
    ollama_server.reset()

    result = semsearch("index", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["files_added"], report["files_updated"], report["files_unchanged"]) == (2, 2, 1)
    assert sorted(ollama_server.embed_texts) == sorted([
        "Oolong tea is partly oxidised and rolled into pearls.",
        "Binoculars show the moons of Jupiter on a clear night.",
        "Adjust the saddle height until your heel rests on the pedal.",
        "Cai Lun improved papermaking in China around 105 AD.",
    ])
    found = semsearch("search", "oxidised oolong pearls", "--mode", "keyword", "--json")
    assert "tea.md" in found.output

    listed = json.loads(semsearch("sources", "--json").output)["sources"]
    assert [(s["path"], s["documents"], s["exists"]) for s in listed] == [
        (str(home / "a"), 3, True), (str(home / "b"), 2, True)]
    table = semsearch("sources").output.splitlines()
    assert table[0].split() == ["PATH", "FILES", "OPTIONS"]
    assert [line.split()[:2] for line in table[1:]] == [[str(home / "a"), "3"], [str(home / "b"), "2"]]


def test_sources_remove_forgets_the_folder_and_its_documents(home, semsearch):
    semsearch("index", str(home / "a"), str(home / "b"))
    result = semsearch("sources", "--remove", str(home / "a"))
    assert result.exit_code == 0 and "2 indexed files removed" in result.output
    listed = json.loads(semsearch("sources", "--json").output)["sources"]
    assert [s["path"] for s in listed] == [str(home / "b")]
    found = semsearch("search", "green tea sourdough bicycle", "--mode", "keyword", "--json")
    assert [Path(hit["path"]).name for hit in json.loads(found.output)] == ["bicycle.txt"]
    assert json.loads(semsearch("index", "--json").output)["files_unchanged"] == 1  # a stays forgotten

    unknown = semsearch("sources", "--remove", str(home / "a"))
    assert unknown.exit_code == 1 and "not a remembered source" in unknown.output
    assert str(home / "b") in unknown.output  # names what is remembered


def test_removing_a_source_keeps_the_documents_another_source_covers(home, open_index):
    index = open_index()
    index.index([home / "a"], include=["*.md"])
    index.index([home / "a" / "sub"], include=["*.md", "*.txt"])  # other options: its own source
    write(home / "a" / "sub" / "notes.txt", "Pu-erh tea is aged for years in cakes.\n")
    index.refresh()
    # Indexed files under each path: notes.txt lies under both.
    assert [(s.path, s.documents) for s in index.sources()] == [(home / "a", 3), (home / "a" / "sub", 2)]
    assert index.remove_source(home / "a") == 1  # tea.md; sub's files belong to the other source too
    assert names(index.search("tea bread", k=10, mode="keyword")) == {"bread.md", "notes.txt"}
    assert index.remove_source(home / "a" / "sub") == 2
    assert index.status().documents == 0 and index.sources() == []


def test_a_path_a_remembered_folder_already_covers_is_not_remembered_again(home, open_index):
    index = open_index()
    index.index([home / "a" / "sub"])
    index.index([home / "a"])  # covers a/sub walked the same way: replaces it
    index.index([home / "a" / "sub"])
    index.index([home / "a" / "tea.md"])
    assert [s.path for s in index.sources()] == [home / "a"]
    index.index([home / "a"], exclude=["sub/**"])  # the same path again: its options change
    assert [(s.path, s.exclude, s.documents) for s in index.sources()] == [(home / "a", ("sub/**",), 1)]
    index.index([home / "a" / "sub"])  # no longer reached by a's walk: its own source
    assert [s.path for s in index.sources()] == [home / "a", home / "a" / "sub"]
    assert index.refresh().files_removed == 0  # the two walks do not undo each other
    assert index.status().documents == 2


def test_indexing_part_of_a_remembered_folder_leaves_the_files_that_folder_holds(home, open_index,
                                                                                  ollama_server):
    index = open_index()
    index.index([home / "a"])
    write(home / "a" / "sub" / "notes.txt", "Pu-erh tea is aged for years in cakes.\n")
    report = index.index([home / "a" / "sub"], include=["*.txt"])  # other options: bread.md is not its
    assert (report.files_added, report.files_removed) == (1, 0)
    assert names(index.search("sourdough bread", k=3, mode="keyword")) == {"bread.md"}
    (home / "a" / "sub" / "bread.md").unlink()
    assert index.index([home / "a" / "sub"], include=["*.txt"]).files_removed == 1  # a deleted file goes
    index.index([home / "a"], exclude=["sub/**"])  # a/sub (its own source now) keeps notes.txt
    assert names(index.search("tea", k=5, mode="keyword")) == {"tea.md", "notes.txt"}
    ollama_server.reset()
    assert index.refresh().files_removed == 0 and ollama_server.embed_texts == []


def test_a_vanished_source_is_reported_once_and_its_documents_kept(home, semsearch, open_index):
    semsearch("index", str(home / "a"), str(home / "b"))
    shutil.move(home / "b", home / "b-moved")
    result = semsearch("index")
    assert result.exit_code == 0
    problems = [line for line in result.output.splitlines() if "no longer exists" in line]
    assert len(problems) == 1 and f"semsearch sources --remove {home / 'b'}" in problems[0]
    assert "1 failed" in result.output and "2 unchanged" in result.output
    assert names(open_index().search("bicycle tyre patch", k=3, mode="keyword")) == {"bicycle.txt"}
    assert "MISSING" in semsearch("sources").output
    assert semsearch("sources", "--remove", str(home / "b")).exit_code == 0
    again = semsearch("index")
    assert again.exit_code == 0 and "0 failed" in again.output and "no longer exists" not in again.output
    semsearch("sources", "--remove", str(home / "a"))
    assert semsearch("sources").output.startswith("No remembered sources")


def test_a_moved_project_folder_still_refreshes_its_sources_without_embedding(home, tmp_path, open_index,
                                                                             ollama_server):
    index = open_index()
    index.index([home / "a", home / "b"])
    index.close()
    moved = tmp_path / "elsewhere" / "project"
    moved.parent.mkdir()
    shutil.move(str(home), str(moved))
    ollama_server.reset()
    reopened = open_index(moved / ".semsearch")
    assert [s.path for s in reopened.sources()] == [moved / "a", moved / "b"]
    report = reopened.refresh()
    assert (report.files_unchanged, report.files_removed, report.files_failed, report.chunks_embedded) == (3, 0, 0, 0)
    assert ollama_server.embed_texts == []


def test_index_with_no_path_needs_an_index_with_sources(home, tmp_path, semsearch, ollama_server):
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = CliRunner().invoke(cli, ["index", "-i", str(empty / ".semsearch")],
                                 env={"OLLAMA_HOST": ollama_server.url}, catch_exceptions=False)
    assert nothing.exit_code == 1 and not (empty / ".semsearch").exists()
    usage = semsearch("index", "--exclude", "*.md")
    assert usage.exit_code == 2 and "go with the paths" in usage.output
    missing = semsearch("sources")
    assert missing.exit_code == 1 and "semsearch index FOLDER" in missing.output


def test_an_older_index_migrates_without_sources_and_says_how_to_add_them(tmp_path, ollama_server):
    home = tmp_path / "home"
    index_dir = copy_v3_index(home)
    with Index.open(index_dir, ollama_host=ollama_server.url) as index:
        assert index.sources() == [] and index.status().documents == 5
        with pytest.raises(SourceNotFoundError, match="semsearch index FOLDER"):
            index.refresh()
        index.index([home / "notes"])
        assert [(s.path, s.documents) for s in index.sources()] == [(home / "notes", 4)]
    with sqlite3.connect(index_dir / "semsearch.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 5  # the sources step ran
        assert conn.execute("SELECT path FROM sources").fetchall() == [("notes",)]
