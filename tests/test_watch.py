"""`semsearch watch` / `Index.watch`: creates, edits, deletes, renames and bursts reach search
within ~2 s plus embedding, in few commits; writers and readers alongside; Ctrl-C; serve --watch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from semsearch import Index, TextItem
from semsearch.errors import IndexLockedError, SourceNotFoundError

from tests.test_serve import stop_server

SETTLE = 2.0  # what a change may take beyond its embedding: debounce, rescan, commit


class Watching:
    """`Index.watch` of `folder` on a thread, with the batches it reported."""

    def __init__(self, index: Index, folder: Path, **options):
        self.index = index
        self.options = options
        self.batches: list = []
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(folder,), daemon=True)

    def _run(self, folder: Path) -> None:
        try:
            self.index.watch(None if folder is None else [folder], on_batch=self.batches.append, stop_event=self.stop, **self.options)
        except BaseException as exc:  # handed to the test
            self.error = exc

    def __enter__(self) -> Watching:
        self.thread.start()
        self.wait_for(lambda: self.batches, 120)
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()

    def wait_for(self, condition, seconds: float) -> float:
        """Seconds until `condition()` held (fails after `seconds`)."""
        started = time.monotonic()
        while not condition():
            assert self.error is None, self.error
            assert time.monotonic() - started < seconds, f"not within {seconds} s; batches: {self.batches}"
            time.sleep(0.05)
        return time.monotonic() - started


def paths_found(index: Index, query: str, mode: str = "keyword") -> set[str]:
    return {Path(hit.path).name for hit in index.search(query, k=20, mode=mode)}


def embed_seconds(server, texts: int) -> float:
    """A generous bound on embedding `texts` short texts on this (shared, busy) machine."""
    return 30.0 + 6.0 * texts


@pytest.fixture
def folder(tmp_path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text("Cats purr when they are content and sleep most of the day.\n")
    return docs


def test_create_edit_delete_and_rename_reach_search(tmp_path, folder, ollama_server):
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index, Watching(index, folder) as w:
        assert w.batches[0].number == 0 and w.batches[0].files_added == 1
        reader = Index.open(tmp_path / "idx", ollama_host=ollama_server.url)  # another handle, as another process

        (folder / "lava.md").write_text("Volcanoes pour molten lava down their slopes.\n")
        w.wait_for(lambda: "lava.md" in paths_found(reader, "volcanoes lava"), SETTLE + embed_seconds(ollama_server, 1))
        # Keyword terms are committed first, vectors follow (two-phase indexing).
        w.wait_for(lambda: Path(reader.search("molten rock from a volcano", k=1)[0].path).name == "lava.md",
                   SETTLE + embed_seconds(ollama_server, 1))

        (folder / "lava.md").write_text("Glaciers carve valleys out of granite mountains.\n")
        w.wait_for(lambda: "lava.md" in paths_found(reader, "glaciers granite"), SETTLE + embed_seconds(ollama_server, 1))
        assert paths_found(reader, "volcanoes lava") == set()
        w.wait_for(lambda: Path(reader.search("ice carving valleys in rock", k=1)[0].path).name == "lava.md",
                   SETTLE + embed_seconds(ollama_server, 1))  # its vectors have landed too

        before = len(ollama_server.embed_texts)
        os.rename(folder / "lava.md", folder / "ice.md")
        # wait_for fails past its bound: the rename reaches search within SETTLE + 5 s.
        w.wait_for(lambda: paths_found(reader, "glaciers granite") == {"ice.md"}, SETTLE + 5)
        # The batch is reported once applied, a moment after searches see its commits.
        w.wait_for(lambda: any(b.files_added == 1 and b.files_removed == 1 for b in w.batches), 5)
        assert ollama_server.embed_texts[before:] == []  # the rename embedded nothing

        (folder / "ice.md").unlink()
        w.wait_for(lambda: paths_found(reader, "glaciers granite") == set(), SETTLE + 5)
        assert reader.status().documents == 1
        reader.close()


def test_a_burst_of_a_thousand_files_is_a_few_commits(tmp_path, folder, ollama_server):
    topics = ["tea", "bicycles", "volcanoes", "comets", "bread"]  # few distinct texts: embedding stays cheap
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index, Watching(index, folder) as w:
        generation = w.batches[-1].generation
        for i in range(1000):
            (folder / f"note{i:04}.txt").write_text(f"A short note about {topics[i % len(topics)]}.\n")
        w.wait_for(lambda: sum(b.files_added for b in w.batches[1:]) == 1000,
                   SETTLE + embed_seconds(ollama_server, len(topics)) + 60)
        commits = w.batches[-1].generation - generation
        assert 1 <= commits <= 10, commits
        assert len(w.batches) - 1 <= 10
        assert index.status().documents == 1001
        assert len(index.search("bicycles", k=300, mode="keyword")) == 200


def test_writers_take_turns_with_watch_and_index_is_told_watch_keeps_it_current(tmp_path, folder, ollama_server):
    for i in range(3):
        (folder / f"slow{i}.md").write_text(f"Slow embedding number {i} about lighthouses.\n")
    ollama_server.delay = 4.0  # the initial run holds the write lock for a while
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        w = Watching(index, folder)
        w.thread.start()
        other = Index.open(tmp_path / "idx", ollama_host=ollama_server.url)
        try:
            time.sleep(1.0)
            with pytest.raises(IndexLockedError, match="keeps this index current"):
                other.index([folder])
            with pytest.raises(IndexLockedError, match="already keeping the index"):
                other.watch([folder])
            w.wait_for(lambda: w.batches, 120)
            ollama_server.delay = 0.0
            # Idle between batches, watch holds no write lock: other writers are not locked out.
            report = other.add_texts([TextItem("memo", "Lighthouse keepers trimmed the wicks at dusk.")])
            assert report.files_added == 1
        finally:
            other.close()
            w.__exit__(None, None, None)


def run_env(host: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "SEMSEARCH_INDEX"}
    env["OLLAMA_HOST"] = host
    return env


def test_ctrl_c_stops_watch_with_130_and_the_index_opens(tmp_path, folder, ollama_server):
    process = subprocess.Popen([sys.executable, "-m", "semsearch", "watch", str(folder), "-i", str(tmp_path / "idx"),
                                "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=run_env(ollama_server.url))
    try:
        first = json.loads(process.stdout.readline())
        assert first["batch"] == 0 and first["files_added"] == 1
        (folder / "tide.md").write_text("Tides follow the moon's pull on the oceans.\n")
        second = json.loads(process.stdout.readline())
        assert second["batch"] == 1 and second["files_added"] == 1 and second["generation"] > first["generation"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in process.stderr.read()
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url, create=False) as index:
        assert paths_found(index, "tides moon") == {"tide.md"}
        assert index.status().in_sync


def test_serve_watch_answers_searches_while_files_change(tmp_path, folder, ollama_server):
    with Index.open(folder / ".semsearch", ollama_host=ollama_server.url) as index:
        index.index([folder])  # remembered: serve --watch follows the folders the index remembers
    (folder / "cats.md").write_text("Cats purr when they are content and nap in the sun.\n")  # while no one watches
    process = subprocess.Popen([sys.executable, "-m", "semsearch", "serve", "--port", "0", "-i", str(folder / ".semsearch"),
                                "--watch"], stderr=subprocess.PIPE, text=True,
                               env=run_env(ollama_server.url))
    try:
        line = process.stderr.readline()
        assert " on http" in line, line + process.stderr.read()
        url = line.split(" on ", 1)[1].split()[0]
        answered = 0
        with httpx.Client(base_url=url, timeout=60) as client:
            def search(query: str) -> set[str]:
                nonlocal answered
                response = client.post("/search", json={"query": query, "mode": "keyword"})
                assert response.status_code == 200, response.text
                answered += 1
                return {Path(hit["path"]).name for hit in response.json()["hits"]}

            deadline = time.monotonic() + 120
            while "cats.md" not in search("cats nap sun"):  # the initial run caught the edit
                assert time.monotonic() < deadline
                time.sleep(0.1)
            for i in range(3):
                (folder / f"comet{i}.md").write_text(f"Comet {i} grows a tail of dust near the sun.\n")
                deadline = time.monotonic() + SETTLE + embed_seconds(ollama_server, 1)
                while f"comet{i}.md" not in search("comet tail dust"):
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
        assert answered > 3
    finally:
        stop_server(process)


def test_awatch_follows_changes_until_its_event_is_set(tmp_path, folder, ollama_server):
    import asyncio

    async def main(index: Index) -> list:
        batches: list = []
        stop = asyncio.Event()
        task = asyncio.create_task(index.awatch([folder], on_batch=batches.append, stop_event=stop))
        while not batches:
            await asyncio.sleep(0.05)
        (folder / "owl.md").write_text("Owls hunt mice at night by hearing alone.\n")
        deadline = time.monotonic() + SETTLE + embed_seconds(ollama_server, 1)
        while "owl.md" not in {Path(h.path).name for h in await index.asearch("owls mice", mode="keyword")}:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 30)
        return batches

    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        batches = asyncio.run(main(index))
    assert [b.number for b in batches] == [0, 1] and batches[1].files_added == 1


def test_watch_help_has_examples_and_loads_no_faiss_or_numpy():
    from tests.test_imports import HEAVY, loaded, run_cli

    result, modules = run_cli("watch", "--help")
    assert result.returncode == 0 and "semsearch watch notes/" in result.stdout
    assert loaded(modules, HEAVY + ("watchfiles",)) == []


def test_a_second_writer_is_told_who_holds_the_lock(tmp_path, ollama_server):
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index, index._writing():
        with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as other:
            with pytest.raises(IndexLockedError, match=rf"another semsearch process is writing .*\(pid {os.getpid()}: "):
                other.add_texts([TextItem("x", "Some text.")])


def test_mcp_watch_answers_from_files_that_change(tmp_path, folder, ollama_server):
    import asyncio

    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    with Index.open(folder / ".semsearch", ollama_host=ollama_server.url) as index:
        index.index([folder])  # remembered: mcp --watch follows the folders the index remembers
    params = StdioServerParameters(command=sys.executable, env=run_env(ollama_server.url),
                                   args=["-m", "semsearch", "mcp", "--watch", "-i", str(folder / ".semsearch")])

    async def found(session, query: str) -> set[str]:
        result = await session.call_tool("search", {"query": query, "mode": "keyword"})
        assert not result.is_error, result
        return {Path(hit["path"]).name for hit in json.loads(result.content[0].text)["hits"]}

    async def session_run():
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            while "cats.md" not in await found(session, "cats purr"):
                await asyncio.sleep(0.1)
            (folder / "moss.md").write_text("Moss grows on the north side of damp stones.\n")
            while "moss.md" not in await found(session, "moss damp stones"):
                await asyncio.sleep(0.1)

    asyncio.run(asyncio.wait_for(session_run(), timeout=SETTLE + embed_seconds(ollama_server, 2) + 60))


def test_watch_keeps_to_the_include_and_exclude_globs(tmp_path, folder, ollama_server):
    (folder / "drafts").mkdir()
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index, \
            Watching(index, folder, include=["*.md", "*.txt"], exclude=["drafts/**"]) as w:
        (folder / "drafts" / "wip.md").write_text("Penguins huddle against the polar wind.\n")
        (folder / "notes.rst").write_text("Penguins cannot fly but swim fast.\n")
        (folder / "penguins.txt").write_text("Penguins raise chicks on the ice.\n")
        w.wait_for(lambda: paths_found(index, "penguins") == {"penguins.txt"}, SETTLE + embed_seconds(ollama_server, 1))
        time.sleep(SETTLE)  # give the excluded files every chance to show up
        assert paths_found(index, "penguins") == {"penguins.txt"}
        assert sum(b.files_added for b in w.batches[1:]) == 1


def test_watch_with_no_path_follows_the_remembered_folders(tmp_path, folder, ollama_server):
    other = tmp_path / "other"
    other.mkdir()
    (other / "fern.md").write_text("Ferns spread by spores, not seeds.\n")
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index:
        with pytest.raises(SourceNotFoundError, match="semsearch watch FOLDER"):
            index.watch()
        index.index([folder])
        index.index([other], include=["*.md"])
        with Watching(index, None) as w:
            assert w.batches[0].files_added == 0  # both already indexed
            (other / "fern.txt").write_text("Ferns unroll their fronds in spring.\n")  # not admitted by *.md
            (other / "moss.md").write_text("Moss needs damp shade to grow.\n")
            (folder / "kelp.md").write_text("Kelp forests sway in cold currents.\n")
            w.wait_for(lambda: paths_found(index, "moss damp kelp currents") == {"moss.md", "kelp.md"},
                       SETTLE + embed_seconds(ollama_server, 2))
            assert paths_found(index, "ferns fronds spring") == {"fern.md"}


def test_a_file_newly_gitignored_while_watching_leaves_the_index(tmp_path, folder, ollama_server):
    with Index.open(tmp_path / "idx", ollama_host=ollama_server.url) as index, Watching(index, folder) as w:
        assert paths_found(index, "cats purr") == {"cats.md"}
        (folder / ".gitignore").write_text("cats.md\n")
        w.wait_for(lambda: paths_found(index, "cats purr") == set(), SETTLE + 5)
        w.wait_for(lambda: any(b.files_removed == 1 for b in w.batches), 5)  # reported once applied
