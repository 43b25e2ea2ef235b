"""Document identity and paths: one document per real file, relocatable indexes, --path globs, stale hints.

Runs the library and the `semsearch` command (in-process, through click's runner) against the
Ollama-protocol test server, on a small corpus of one-chunk files so each test indexes quickly.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch import Index
from semsearch.cli import cli

from tests.helpers import V3_INDEX, copy_v3_index

FIXTURE = V3_INDEX
# Where tests/data/index-v3 was indexed by semsearch 0.1.0 (schema 3, before documents were keyed
# by their real path): `index notes`, `index notes/sub`, an edit of notes/sub/stars.txt, `index
# notes/sub` again, and `add_texts([faq-1])`. notes/sub's two files are stored twice, and the
# notes/ copy of stars.txt holds the text from before the edit.
FIXTURE_HOME = "/tmp/semsearch-v3-home"


@pytest.fixture
def home(tmp_path) -> Path:
    """A project folder holding notes/ (4 files, 2 under notes/sub); its index goes in home/.semsearch."""
    home = tmp_path / "project"
    shutil.copytree(FIXTURE / "notes", home / "notes")
    return home


def paths_of(hits) -> list[str]:
    return [hit.path for hit in hits]


def test_reindexing_a_subfolder_or_a_file_updates_the_same_documents(home, open_index, ollama_server):
    index = open_index()
    assert index.index([home / "notes"]).files_added == 4
    ollama_server.reset()
    sub = index.index([home / "notes" / "sub"])
    single = index.index([home / "notes" / "sub" / "bicycle.md"])
    assert sub.files_added == single.files_added == 0
    assert sub.files_unchanged == 2 and single.files_unchanged == 1
    assert ollama_server.embed_texts == []
    assert index.status().documents == 4
    hits = index.search("binoculars Jupiter Pleiades", k=10)
    assert len(paths_of(hits)) == len(set(paths_of(hits))) == 4

    stars = home / "notes" / "sub" / "stars.txt"
    stars.write_text("Saturn's rings need a small telescope and a steady tripod.\n", encoding="utf-8")
    report = index.index([home / "notes" / "sub"])
    assert report.files_updated == 1 and report.files_added == 0
    hits = index.search("telescope", k=10, mode="keyword")
    assert [h.path for h in hits] == [str(stars.resolve())]
    assert index.search("Pleiades binoculars", k=10, mode="keyword") == []


def test_a_folder_reached_through_a_symlink_is_the_same_documents(home, open_index):
    index = open_index()
    index.index([home / "notes"])
    (home / "shortcut").symlink_to(home / "notes" / "sub", target_is_directory=True)
    report = index.index([home / "shortcut"])
    assert (report.files_added, report.files_unchanged, report.files_removed) == (0, 2, 0)
    assert index.status().documents == 4
    assert index.search("fixing a flat tyre", k=1)[0].path == str(home / "notes" / "sub" / "bicycle.md")


def test_reindexing_a_subfolder_removes_only_what_vanished_under_it(home, open_index):
    index = open_index()
    index.index([home / "notes"])
    (home / "notes" / "sub" / "bicycle.md").unlink()
    report = index.index([home / "notes" / "sub"])
    assert report.files_removed == 1 and report.files_unchanged == 1
    report = index.index([home / "notes" / "bread.md"])
    assert report.files_removed == 0
    kept = {Path(h.path).name for h in index.search("anything at all", k=10)}
    assert kept == {"bread.md", "green-tea.md", "stars.txt"}


def test_reindexing_a_folder_above_the_home_removes_vanished_files_inside_the_home(home, open_index):
    index = open_index()
    assert index.index([home.parent]).files_added == 4
    (home / "notes" / "bread.md").unlink()
    report = index.index([home.parent])
    assert (report.files_removed, report.files_unchanged, report.files_added) == (1, 3, 0)


def test_index_of_an_older_version_is_migrated_merging_duplicates_and_keeping_vectors(tmp_path, ollama_server):
    home = tmp_path / "home"
    copy_v3_index(home)
    with sqlite3.connect(home / ".semsearch" / "semsearch.db") as conn:  # as if built right here
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM documents WHERE kind = 'file'").fetchone()[0] == 6
        conn.execute("UPDATE documents SET root = replace(root, ?, ?)", (FIXTURE_HOME, str(home)))
    with Index.open(home / ".semsearch", ollama_host=ollama_server.url) as index:
        status = index.status()
        assert (status.documents, status.chunks) == (5, 5)
        hits = index.search("binoculars Jupiter", k=10)
        assert len(hits) == 5 and len(set(paths_of(hits))) == 5
        stars = [h for h in hits if h.path == str(home / "notes" / "sub" / "stars.txt")]
        assert len(stars) == 1 and "Saturn" in stars[0].text  # the copy indexed last won
        assert index.status().in_sync and index.status().faiss_vectors == 5
        assert index.search("opening hours", k=1)[0].path == "faq-1"
        ollama_server.reset()
        report = index.index([home / "notes"])
        assert (report.files_added, report.files_updated, report.files_removed) == (0, 0, 0)
        assert report.chunks_embedded == 0 and ollama_server.embed_texts == []
        assert index.status().documents == 5


def test_a_moved_project_folder_still_cites_and_reindexes_without_embedding(home, tmp_path, open_index,
                                                                          ollama_server):
    index = open_index()
    index.index([home / "notes"])
    index.close()
    moved = tmp_path / "elsewhere" / "project"
    moved.parent.mkdir()
    shutil.move(str(home), str(moved))
    reopened = open_index(moved / ".semsearch")
    hit = reopened.search("fixing a flat tyre", k=1)[0]
    assert hit.path == str(moved / "notes" / "sub" / "bicycle.md")
    assert Path(hit.path).read_text(encoding="utf-8")[hit.char_start:hit.char_end] == hit.text
    ollama_server.reset()
    report = reopened.index([moved / "notes"])
    assert (report.files_added, report.files_removed, report.chunks_embedded) == (0, 0, 0)
    assert report.files_unchanged == 4 and ollama_server.embed_texts == []


def test_files_outside_the_index_home_keep_absolute_paths(tmp_path_factory, home, ollama_server):
    elsewhere = tmp_path_factory.mktemp("index-home") / "idx"
    with Index.open(elsewhere, ollama_host=ollama_server.url) as index:
        index.index([home / "notes"])
        hit = index.search("fixing a flat tyre", k=1)[0]
        assert hit.path == str((home / "notes" / "sub" / "bicycle.md").resolve())
        assert len(index.search("tea", k=10, paths=[str(home / "notes" / "sub" / "*")])) == 2


def test_library_path_globs_match_home_relative_and_absolute_paths(home, open_index):
    index = open_index()
    index.index([home / "notes" / "sub"])
    index.index([home / "notes"])
    for glob in ("notes/sub/*", str(home / "notes" / "sub" / "*"), "*.txt"):
        hits = index.search("tea", k=5, paths=[glob])
        assert hits, glob
        assert all("/notes/sub/" in h.path or h.path.endswith(".txt") for h in hits), glob
    assert len(index.search("tea", k=2, paths=["notes/sub/*"])) == 2  # k hits when k documents match
    assert index.search("tea", k=5, paths=["sub/*"]) == []  # relative to the home, not to notes/


def invoke(args, cwd: Path, monkeypatch, host: str):
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("SEMSEARCH_INDEX", raising=False)
    monkeypatch.setenv("OLLAMA_HOST", host)
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_cli_path_glob_matches_the_printed_path(home, monkeypatch, ollama_host):
    assert invoke(["index", "notes"], home, monkeypatch, ollama_host).exit_code == 0
    result = invoke(["search", "tea", "--path", "notes/sub/*", "--json"], home, monkeypatch, ollama_host)
    assert result.exit_code == 0, result.output
    assert sorted(h["path"] for h in json.loads(result.stdout)) == ["notes/sub/bicycle.md", "notes/sub/stars.txt"]
    # From inside notes/, the printed path is sub/...: the same glob form works there.
    result = invoke(["search", "tea", "--path", "sub/*"], home / "notes", monkeypatch, ollama_host)
    assert result.exit_code == 0, result.output
    cited = [line.split()[2] for line in result.stdout.splitlines() if line[:3].strip().rstrip(".").isdigit()]
    assert sorted(c.split(":")[0] for c in cited) == ["sub/bicycle.md", "sub/stars.txt"]
    help_text = invoke(["search", "--help"], home, monkeypatch, ollama_host).stdout
    assert "current directory" in help_text


def test_status_reports_files_changed_or_missing_since_indexing(home, monkeypatch, ollama_host):
    assert invoke(["index", "notes"], home, monkeypatch, ollama_host).exit_code == 0
    (home / "notes" / "bread.md").write_text("# Rye bread\n\nRye needs a sour starter.\n", encoding="utf-8")
    (home / "notes" / "sub" / "stars.txt").unlink()
    data = json.loads(invoke(["status", "--json"], home, monkeypatch, ollama_host).stdout)
    assert data["files_changed"] == 1 and data["files_missing"] == 1
    human = invoke(["status"], home, monkeypatch, ollama_host).stdout
    assert "Files changed since indexing: 1, missing: 1" in human and "semsearch index" in human
    assert "In sync" not in human
    invoke(["index", "notes"], home, monkeypatch, ollama_host)
    data = json.loads(invoke(["status", "--json"], home, monkeypatch, ollama_host).stdout)
    assert data["files_changed"] == data["files_missing"] == 0
    assert "Files changed since indexing: 0, missing: 0" in invoke(["status"], home, monkeypatch, ollama_host).stdout


def test_hits_from_changed_or_deleted_files_are_marked_stale(home, open_index, monkeypatch, ollama_host):
    assert invoke(["index", "notes"], home, monkeypatch, ollama_host).exit_code == 0
    (home / "notes" / "green-tea.md").write_text("# Green tea\n\nNow about matcha.\n", encoding="utf-8")
    (home / "notes" / "bread.md").unlink()
    index = open_index()
    stale = {Path(h.path).name: h.stale for h in index.search("tea", k=10)}
    assert stale == {"green-tea.md": True, "bread.md": True, "bicycle.md": False, "stars.txt": False}
    hits = json.loads(invoke(["search", "tea", "--json"], home, monkeypatch, ollama_host).stdout)
    assert {Path(h["path"]).name: h["stale"] for h in hits} == stale
    out = invoke(["search", "tea"], home, monkeypatch, ollama_host).stdout
    headers = [line for line in out.splitlines() if line[:3].strip().rstrip(".").isdigit()]
    assert len(headers) == 4
    for line in headers:
        assert ("stale" in line) == ("green-tea.md" in line or "bread.md" in line), line


def test_file_keys_of_a_walk_are_the_keys_of_each_file_alone(tmp_path):
    """FileKeys resolves each directory once; every key is still the file's real-path key."""
    from semsearch.paths import FileKeys, document_key

    home = tmp_path / "project"
    (home / "notes" / "sub").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for path in (home / "notes" / "a.md", home / "notes" / "sub" / "b.md", outside / "c.md"):
        path.write_text("x")
    (home / "notes" / "link-to-b.md").symlink_to(home / "notes" / "sub" / "b.md")
    (home / "notes" / "link-out.md").symlink_to(outside / "c.md")
    (home / "notes" / "linked-dir").symlink_to(outside, target_is_directory=True)
    (home / "notes" / "sub" / "up").symlink_to(home / "notes", target_is_directory=True)
    files = [home / "notes" / "a.md", home / "notes" / "sub" / "b.md", home / "notes" / "link-to-b.md",
             home / "notes" / "link-out.md", home / "notes" / "linked-dir" / "c.md",
             home / "notes" / "sub" / "up" / "a.md", outside / "c.md", home / "notes" / "sub" / ".." / "a.md"]
    keys = FileKeys(home.resolve())
    assert [keys.key(path) for path in files] == [document_key(path, home.resolve()) for path in files] == [
        "notes/a.md", "notes/sub/b.md", "notes/sub/b.md", (outside / "c.md").resolve().as_posix(),
        (outside / "c.md").resolve().as_posix(), "notes/a.md", (outside / "c.md").resolve().as_posix(),
        "notes/a.md"]
    assert document_key(home, home.resolve()) == "."


def test_a_symlinked_file_in_a_folder_is_the_document_stored_under_its_target(home, open_index):
    """A file whose key lies outside the folder being indexed is still found, not added twice."""
    index = open_index()
    assert index.index([home / "notes" / "sub"]).files_added == 2
    target = sorted((home / "notes" / "sub").iterdir())[0]
    other = home / "other"
    other.mkdir()
    (other / target.name).symlink_to(target)
    report = index.index([other])
    assert (report.files_added, report.files_unchanged) == (0, 1)
    assert index.status().documents == 2
