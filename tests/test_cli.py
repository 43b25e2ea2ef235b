"""The `semsearch` command through real subprocesses against the Ollama-protocol test server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import EXAMPLE_QUERIES, assert_one_clean_line, free_port, run, write_notes
from tests.helpers import embedded

HIT_FIELDS = {"rank", "score", "path", "line_start", "line_end", "char_start", "char_end", "heading", "text",
              "chunk_id", "document_id"}


@pytest.fixture
def workdir(corpus) -> Path:
    """A folder holding a copy of data/ (the `corpus` fixture's parent)."""
    return corpus.parent


def test_index_then_search_json_finds_right_documents(workdir, ollama_server):
    host = ollama_server.url
    report = json.loads(run(["index", "data", "--json"], cwd=workdir, host=host).stdout)
    assert report["files_added"] >= 14 and report["files_failed"] == 0
    assert report["chunks_embedded"] > 0 and report["chunks_reused"] == 0
    assert (workdir / ".semsearch" / "semsearch.db").exists()
    for query, expected in EXAMPLE_QUERIES[:2]:  # one Chinese → English, one English → Chinese
        hits = json.loads(run(["search", "--json", "-k", "3", query], cwd=workdir, host=host).stdout)
        assert len(hits) == 3
        assert HIT_FIELDS <= set(hits[0])
        assert hits[0]["path"] == f"data/{expected}"
        assert [h["rank"] for h in hits] == [1, 2, 3]
        assert hits[0]["score"] >= hits[1]["score"]


def test_human_search_output_cites_path_and_lines(workdir, ollama_server):
    run(["index", "data"], cwd=workdir, host=ollama_server.url)
    out = run(["search", "feeding a sourdough starter", "-k", "2"], cwd=workdir, host=ollama_server.url).stdout
    first = out.splitlines()[0]
    assert first.lstrip().startswith("1.")
    assert "data/cooking/sourdough-bread.md:" in first


def test_index_summary_and_reindex_reuses_everything(workdir, ollama_server):
    first = run(["index", "data"], cwd=workdir, host=ollama_server.url).stdout
    assert "added" in first and "embedded" in first
    ollama_server.reset()
    second = json.loads(run(["index", "data", "--json"], cwd=workdir, host=ollama_server.url).stdout)
    assert second["files_unchanged"] >= 14 and second["chunks_embedded"] == 0
    assert ollama_server.embed_texts == []


def test_status_reports_model_counts_and_sync(workdir, ollama_server):
    run(["index", "data"], cwd=workdir, host=ollama_server.url)
    status = json.loads(run(["status", "--json"], cwd=workdir, host=ollama_server.url).stdout)
    assert status["model"] == "qwen3-embedding:0.6b"
    assert status["dimensions"] == 384
    assert status["query_instruction"].startswith("Instruct: Given a web search query")
    assert status["documents"] >= 14 and status["chunks"] >= status["documents"]
    assert status["in_sync"] is True and status["index_type"] == "auto" and status["faiss_type"] == "flat"
    human = run(["status"], cwd=workdir, host=ollama_server.url).stdout
    assert "qwen3-embedding:0.6b" in human and "FAISS file matches SQLite" in human


def test_index_found_from_a_subdirectory_and_by_env(workdir, ollama_server):
    run(["index", "data"], cwd=workdir, host=ollama_server.url)
    nested = workdir / "data" / "tea"
    hits = json.loads(run(["search", "--json", "types of Chinese tea"], cwd=nested, host=ollama_server.url).stdout)
    assert hits[0]["path"] == "chinese-tea.md"
    elsewhere = workdir.parent
    env = {"SEMSEARCH_INDEX": str(workdir / ".semsearch")}
    hits = json.loads(run(["search", "--json", "types of Chinese tea"], cwd=elsewhere, host=ollama_server.url,
                          env=env).stdout)
    assert hits[0]["path"].endswith("data/tea/chinese-tea.md")


def test_search_without_index_says_how_to_create_one(tmp_path, ollama_server):
    result = run(["search", "anything"], cwd=tmp_path, host=ollama_server.url, check=False)
    assert_one_clean_line(result, "semsearch index FOLDER")


def test_rebuild_cli(workdir, ollama_server):
    run(["index", "data"], cwd=workdir, host=ollama_server.url)
    (workdir / ".semsearch" / "vectors.faiss").unlink()
    ollama_server.reset()
    out = json.loads(run(["rebuild", "--json"], cwd=workdir, host=ollama_server.url).stdout)
    assert out["vectors"] > 0 and ollama_server.embed_texts == []


# -- clear failures (acceptance 8) --------------------------------------------------------------

def test_unreachable_ollama_is_one_line_naming_host(workdir):
    host = f"http://127.0.0.1:{free_port()}"
    result = run(["index", "data"], cwd=workdir, host=host, check=False)
    assert_one_clean_line(result, host, "ollama serve")


def test_model_not_pulled_names_the_pull_command(workdir, ollama_server):
    result = run(["index", "data", "-m", "nomic-embed-text"], cwd=workdir, host=ollama_server.url, check=False)
    assert_one_clean_line(result, "ollama pull nomic-embed-text")


def test_misspelt_model_lists_the_server_models_closest_first(workdir, ollama_server):
    result = run(["index", "data", "-m", "qwen3-embeding:0.6b"], cwd=workdir, host=ollama_server.url, check=False)
    assert_one_clean_line(result, "did you mean `qwen3-embedding:0.6b`?")
    line = result.stderr.strip()
    assert "ollama pull qwen3-embeding" not in line
    listed = line.split("It has: ", 1)[1].split(", ")
    assert listed[0] == "qwen3-embedding:0.6b"
    assert set(listed) == {"qwen3-embedding:0.6b", "multilingual-e5-small:latest",
                           "dengcao/Qwen3-Reranker-0.6B:Q8_0", "llama3.2:latest"}
    assert not (workdir / ".semsearch" / "semsearch.db").exists() or not any(
        path == "/api/embed" for path, _ in ollama_server.requests)


def test_pull_flag_pulls_a_missing_model(workdir, ollama_server):
    (workdir / "small").mkdir()
    (workdir / "small" / "a.md").write_text("# Tea\n\nGreen tea is not oxidised.\n", encoding="utf-8")
    run(["index", "small", "-m", "nomic-embed-text", "--pull"], cwd=workdir, host=ollama_server.url)
    assert any(path == "/api/pull" for path, _ in ollama_server.requests)
    status = json.loads(run(["status", "--json"], cwd=workdir, host=ollama_server.url).stdout)
    assert status["model"] == "nomic-embed-text" and status["chunks"] == 1


def test_other_model_on_existing_index_names_both(workdir, ollama_server):
    run(["index", "data"], cwd=workdir, host=ollama_server.url)
    result = run(["search", "-m", "multilingual-e5-small", "tea"], cwd=workdir, host=ollama_server.url, check=False)
    assert_one_clean_line(result, "qwen3-embedding:0.6b", "multilingual-e5-small")


def test_bad_usage_exits_2(workdir, ollama_server):
    result = run(["search", "tea", "--mode", "telepathy"], cwd=workdir, host=ollama_server.url, check=False)
    assert result.returncode == 2


# -- problem files (acceptance 9) ---------------------------------------------------------------

def test_problem_files_are_reported_and_skipped(tmp_path, ollama_server):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# Notes\n\nSourdough needs a lively starter.\n", encoding="utf-8")
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (folder / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me br\xfbl\xe9e, d\xe9j\xe0 vu".encode("latin-1"))
    (folder / "empty.txt").write_bytes(b"")
    (folder / "gone.txt").symlink_to(folder / "does-not-exist.txt")
    unreadable = folder / "secret.txt"
    unreadable.write_text("top secret", encoding="utf-8")
    unreadable.chmod(0)
    chinese = "龙井茶产于杭州西湖，是中国最著名的绿茶之一。冲泡时水温宜在八十度左右。"
    (folder / "longjing.txt").write_bytes(chinese.encode("gb18030"))

    result = run(["index", "mixed", "--json"], cwd=tmp_path, host=ollama_server.url)
    report = json.loads(result.stdout)
    reasons = {Path(p["path"]).name: p["reason"] for p in report["problems"]}
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "empty" in reasons["empty.txt"]
    assert "cannot read" in reasons["gone.txt"]
    if os.geteuid() != 0:  # root reads any file regardless of its mode
        assert "permission" in reasons["secret.txt"].lower()
    assert report["files_added"] >= 2  # good.md and the GB18030 file

    hits = json.loads(run(["search", "--json", "龙井茶", "-k", "1"], cwd=tmp_path, host=ollama_server.url).stdout)
    assert hits[0]["path"] == "mixed/longjing.txt"
    assert "西湖" in hits[0]["text"]
    human = run(["index", "mixed"], cwd=tmp_path, host=ollama_server.url).stderr
    assert "binary.txt" in human  # problems are also shown to a person


# -- crash safety (acceptance 6) ----------------------------------------------------------------

def _snapshot(cwd: Path, index_dir: Path, host: str) -> tuple:
    status = json.loads(run(["status", "--json", "-i", str(index_dir)], cwd=cwd, host=host).stdout)
    searched = run(["search", "--json", "-k", "5", "-i", str(index_dir), "notes about bicycles"],
                   cwd=cwd, host=host, check=False)
    hits = json.loads(searched.stdout)
    # Exit 1 with [] is "no results" (an index killed before its first commit); anything else is an error.
    assert searched.returncode == (0 if hits else 1), searched.stderr
    return status["documents"], status["chunks"], [(h["path"], h["text"]) for h in hits]


def test_sigkill_during_index_loses_nothingcommitted(tmp_path, ollama_server):
    host = ollama_server.url
    write_notes(tmp_path / "notes", 96)
    run(["index", "notes", "-i", "reference"], cwd=tmp_path, host=host)
    expected = _snapshot(tmp_path, tmp_path / "reference", host)
    assert expected[0] == 96

    ollama_server.delay_per_text = 0.05  # 0.4 s per committed batch of 8
    env = {**os.environ, "OLLAMA_HOST": host}
    killed_at: list[int] = []
    # Kill once the run has committed at least this many vectors (0: as soon as the database
    # exists), plus a little so some kills land mid-batch rather than between batches. Every
    # file's text is committed long before its vector (two-phase indexing).
    for target, extra in ((0, 0.0), (16, 0.1), (40, 0.25), (72, 0.0)):
        process = subprocess.Popen([sys.executable, "-m", "semsearch", "index", "notes", "-i", "killed",
                                    "--batch", "8"], cwd=tmp_path, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while embedded(tmp_path / "killed") < target or not (tmp_path / "killed" / "semsearch.db").exists():
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(extra)
        process.send_signal(signal.SIGKILL)
        process.wait()
        documents, chunks, _ = _snapshot(tmp_path, tmp_path / "killed", host)  # opens and answers
        with_vectors = embedded(tmp_path / "killed")
        assert chunks == documents and with_vectors < 96
        killed_at.append(with_vectors)
    assert killed_at == sorted(killed_at) and killed_at[-1] >= 72  # each run kept and continued the last
    ollama_server.delay_per_text = 0
    run(["index", "notes", "-i", "killed"], cwd=tmp_path, host=host)
    assert _snapshot(tmp_path, tmp_path / "killed", host) == expected
    status = json.loads(run(["status", "--json", "-i", "killed"], cwd=tmp_path, host=host).stdout)
    assert status["in_sync"] is True


def test_python_dash_m_and_help_work(tmp_path):
    result = subprocess.run([sys.executable, "-m", "semsearch", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("index", "search", "status", "rebuild"):
        assert command in result.stdout


def test_indexing_a_missing_path_is_a_usage_error(tmp_path, ollama_server):
    result = run(["index", "no-such-folder"], cwd=tmp_path, host=ollama_server.url, check=False)
    assert result.returncode == 2
    assert "no-such-folder" in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / ".semsearch").exists()
