"""Ignore files: `.gitignore` and `.semsearchignore` leave files out as git would; `--no-ignore` brings them back.

The walk is compared with git itself on a tree of nested ignore files; indexing runs against the
Ollama-protocol test server (the `semsearch` command in-process, through click's runner).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch import Index
from semsearch.cli import cli
from semsearch.sources import SourceFile, WalkIgnored, admits, walk
from semsearch.types import IndexSource


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text or f"The note {path.stem} talks about {path.stem.replace('-', ' ')}.\n", encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path) -> Path:
    """A folder with a .gitignore (build/, *.log but !keep.log), a nested one in docs/, and a .git."""
    root = tmp_path / "project"
    write(root / ".gitignore", "build/\n*.log\n!keep.log\n/draft.md\n")
    write(root / "docs" / ".gitignore", "*.txt\n!important.txt\n")
    for name in ("readme.md", "draft.md", "app.log", "keep.log", "notes.txt", "docs/guide.md", "docs/draft.md",
                 "docs/scratch.txt", "docs/important.txt", "build/output.md", "build/deep/more.md",
                 "src/build/gen.md", "src/trace.log"):
        write(root / name)
    write(root / ".git" / "config.md", "the repository's own files are never indexed\n")
    return root


INDEXED = {"readme.md", "keep.log", "notes.txt", "docs/guide.md", "docs/draft.md", "docs/important.txt"}
EVERYTHING = INDEXED | {"draft.md", "app.log", "docs/scratch.txt", "build/output.md", "build/deep/more.md",
                        "src/build/gen.md", "src/trace.log"}


def walked(root: Path, **options) -> set[str]:
    return {item.relpath for item in walk(root, include=["*.md", "*.txt", "*.log"], **options)
            if isinstance(item, SourceFile)}


def invoke(root: Path, host: str, *args: str):
    return CliRunner().invoke(cli, [*args, "-i", str(root / ".semsearch")],
                              env={"OLLAMA_HOST": host, "SEMSEARCH_INDEX": None}, catch_exceptions=False)


def test_the_walk_leaves_out_what_git_ignores(project):
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    write(project / ".git" / "info" / "exclude", "secret.md\n")  # git's per-clone ignore list
    write(project / "docs" / "secret.md")
    listed = subprocess.run(["git", "-C", str(project), "ls-files", "--others", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert {path for path in listed if not path.endswith(".gitignore")} == INDEXED
    assert walked(project) == INDEXED
    assert walked(project, use_ignore_files=False) == EVERYTHING | {"docs/secret.md"}  # .git/ stays out


def test_ignored_folders_are_counted_once_and_never_entered(project):
    items = list(walk(project, include=["*.md", "*.txt", "*.log"]))
    ignored = {(item.path.relative_to(project).as_posix(), item.is_dir) for item in items
               if isinstance(item, WalkIgnored)}
    assert ignored == {("build", True), ("src/build", True), ("draft.md", False), ("app.log", False),
                       ("src/trace.log", False), ("docs/scratch.txt", False)}


def test_index_leaves_ignored_files_out_and_no_ignore_brings_them_back(project, ollama_server):
    result = invoke(project, ollama_server.url, "index", str(project), "--include", "*.md", "--include", "*.txt",
                    "--include", "*.log", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["files_added"], report["files_ignored"], report["folders_ignored"]) == (6, 4, 2)
    assert report["problems"] == []
    with Index.open(project / ".semsearch", ollama_host=ollama_server.url) as index:
        paths = {Path(hit.path).relative_to(project).as_posix() for hit in index.search("note", k=50, mode="keyword")}
    assert paths == INDEXED

    human = invoke(project, ollama_server.url, "index", str(project), "--include", "*.md", "--include", "*.txt",
                   "--include", "*.log")
    assert "6 unchanged" in human.output and "6 ignored (4 files, 2 folders)" in human.output

    everything = invoke(project, ollama_server.url, "index", str(project), "--include", "*.md", "--include",
                        "*.txt", "--include", "*.log", "--no-ignore", "--json")
    report = json.loads(everything.output)
    assert (report["files_added"], report["files_ignored"], report["folders_ignored"]) == (7, 0, 0)
    with Index.open(project / ".semsearch", ollama_host=ollama_server.url) as index:
        assert index.status().documents == len(EVERYTHING)
        assert [s.use_ignore_files for s in index.sources()] == [False]  # refresh keeps --no-ignore
        assert index.refresh().files_removed == 0


def test_a_newly_ignored_file_leaves_the_index_on_the_next_run(project, ollama_server):
    with Index.open(project / ".semsearch", ollama_host=ollama_server.url) as index:
        index.index([project], include=["*.md", "*.txt", "*.log"])
        assert index.search("readme", k=5, mode="keyword")
        with (project / ".gitignore").open("a", encoding="utf-8") as gitignore:
            gitignore.write("readme.md\ndocs/\n")
        report = index.refresh()
        assert (report.files_removed, report.files_ignored, report.folders_ignored) == (4, 4, 3)
        assert index.search("readme", k=5, mode="keyword") == []
        assert index.sources()[0].documents == 2  # keep.log, notes.txt


def test_semsearchignore_wins_over_gitignore_and_the_repository_rules_above_count(project):
    write(project / ".semsearchignore", "!build/\nnotes.txt\n")
    assert walked(project) == (INDEXED - {"notes.txt"}) | {"build/output.md", "build/deep/more.md",
                                                           "src/build/gen.md"}
    (project / ".semsearchignore").unlink()
    # Indexing a subfolder of a repository: the .gitignore files above it, up to the .git, apply.
    assert walked(project / "src") == set()
    source = IndexSource(project / "src", include=("*.md", "*.log"))
    assert not admits(source, project / "src" / "trace.log")
    assert not admits(source, project / "src" / "build" / "gen.md")
    assert admits(IndexSource(project / "src", include=("*.md", "*.log"), use_ignore_files=False),
                  project / "src" / "trace.log")
    # A folder the rules above ignore is indexed when named: they are set aside for it.
    assert walked(project / "build") == {"output.md", "deep/more.md"}


def test_outside_a_repository_only_the_indexed_folders_own_ignore_files_count(project):
    (project / ".git" / "config.md").unlink()
    (project / ".git").rmdir()
    assert walked(project / "src") == {"trace.log", "build/gen.md"}  # project/.gitignore is not theirs
    assert walked(project) == INDEXED  # the folder's own .gitignore counts without a repository
