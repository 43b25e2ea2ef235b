"""One result per document: `search` groups chunk hits by document, `--chunks` and `--json` keep
chunk hits (with `document_rank`), and k counts documents when grouped."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from semsearch import Index
from semsearch.cli import cli
from semsearch.grouping import group_by_document
from semsearch.types import Hit

PAPER_HISTORY = "\n\n".join([
    "# The invention of paper in China",
    "Paper was invented in China during the Han dynasty, about two thousand years ago.",
    "Cai Lun, an official of the Han court, improved paper making around 105 AD.",
    "Early Chinese paper was made from bark, hemp, old rags and fishing nets.",
    "The fibres were soaked, pounded into a pulp, and spread on a screen to dry as paper sheets.",
    "Chinese paper makers kept the method secret for centuries before it spread to Korea and Japan.",
    "Paper reached the Islamic world after the battle of Talas in 751, where Chinese paper makers were captured.",
    "From Samarkand and Baghdad, paper making spread to Europe by the twelfth century.",
    "Before paper, Chinese scribes wrote on bamboo strips and silk, which were heavy or costly.",
    "Paper money was first printed in China under the Song dynasty.",
])

OTHERS = {
    "printing.md": "# Printing\n\nWoodblock printing on paper began in Tang dynasty China; movable type came later.\n",
    "papyrus.md": "# Papyrus\n\nAncient Egyptians wrote on papyrus sheets made from reeds of the Nile.\n",
    "compass.md": "# The compass\n\nThe magnetic compass was invented in China and first used for divination.\n",
    "gunpowder.md": "# Gunpowder\n\nChinese alchemists discovered gunpowder while searching for an elixir of life.\n",
    "sourdough.md": "# Sourdough\n\nFeed the starter twice a day with flour and water.\n",
}
QUERY = "invention of paper in China"


@pytest.fixture(scope="module")
def history(tmp_path_factory, ollama_server_session):
    """(index directory, test server URL): one long file matching in many chunks, five short files."""
    root = tmp_path_factory.mktemp("grouping")
    folder = root / "notes"
    folder.mkdir()
    (folder / "paper-history.md").write_text(PAPER_HISTORY + "\n", encoding="utf-8")
    for name, text in OTHERS.items():
        (folder / name).write_text(text, encoding="utf-8")
    with Index.open(root / "idx", ollama_host=ollama_server_session.url, chunk_tokens=30) as index:
        index.index([folder])
    return root / "idx", ollama_server_session.url


def invoke(history, *args):
    index_dir, host = history
    return CliRunner().invoke(cli, ["search", QUERY, "-i", str(index_dir), "--color", "never",
                                    "--ollama-host", host, *args])


def headers(output: str) -> list[str]:
    """The result lines (rank, score, citation), not the snippets or the `also` lines under them."""
    return [line for line in output.splitlines() if re.match(r"\s*\d+\. ", line)]


def file_of(header: str) -> str:
    return re.search(r"([\w-]+\.md):\d+", header).group(1)


def test_the_long_file_would_fill_the_chunk_hits(history, ollama_server_session):
    index_dir, _ = history
    with Index.open(index_dir, ollama_host=ollama_server_session.url) as index:
        chunk_hits = index.search(QUERY, k=6)
    assert [hit.path.endswith("paper-history.md") for hit in chunk_hits].count(True) >= 4


def test_search_shows_each_document_once_with_the_lines_of_its_other_chunks(history):
    result = invoke(history, "-k", "3")
    assert result.exit_code == 0, result.output
    files = [file_of(line) for line in headers(result.stdout)]
    assert len(files) == 3 and len(set(files)) == 3
    assert files[0] == "paper-history.md"
    lines = result.stdout.splitlines()
    first = lines.index(headers(result.stdout)[0])
    also = next(line for line in lines[first + 1:] if not re.match(r"\s*\d+\. ", line) and "also lines" in line)
    ranges = re.findall(r"\d+(?:-\d+)?", also)
    assert len(ranges) >= 2, also
    assert [h.split(".")[0].strip() for h in headers(result.stdout)] == ["1", "2", "3"]


def test_k_counts_documents_and_is_met_when_that_many_exist(history):
    # Six documents are all the index holds (18 chunks, 13 of them the long file's), so -k 6 shows
    # every one and -k 50 no more; fetching more chunks until k documents show is tested with k=4.
    result = invoke(history, "-k", "6")
    files = [file_of(line) for line in headers(result.stdout)]
    assert sorted(files) == sorted(["paper-history.md", *OTHERS])
    assert invoke(history, "-k", "50").exit_code == 0
    assert len(headers(invoke(history, "-k", "50").stdout)) == 6


def test_chunks_prints_raw_chunk_hits(history):
    result = invoke(history, "-k", "5", "--chunks")
    assert result.exit_code == 0, result.output
    files = [file_of(line) for line in headers(result.stdout)]
    assert len(files) == 5 and files.count("paper-history.md") >= 3
    assert "also lines" not in result.stdout


def test_json_keeps_chunk_hits_and_gives_each_its_document_rank(history):
    result = invoke(history, "-k", "6", "--json")
    hits = json.loads(result.stdout)
    assert len(hits) == 6 and [hit["rank"] for hit in hits] == [1, 2, 3, 4, 5, 6]
    order: dict[str, int] = {}
    for hit in hits:
        order.setdefault(hit["path"], len(order) + 1)
        assert hit["document_rank"] == order[hit["path"]]
    assert len(order) < 6  # several chunks of one document


def test_library_search_documents_and_by_document(history, ollama_server_session):
    index_dir, _ = history
    with Index.open(index_dir, ollama_host=ollama_server_session.url) as index:
        documents = index.search_documents(QUERY, k=4)
        chunk_hits = index.search(QUERY, k=40)
        grouped_hits = index.search(QUERY, k=4, by_document=True)
        floor = index.search_documents(QUERY, k=6, min_score=documents[1].score)
    assert [d.document_rank for d in documents] == [1, 2, 3, 4]
    assert len({d.path for d in documents}) == 4
    expected = group_by_document(chunk_hits, limit=4)
    assert [d.path for d in documents] == [d.path for d in expected]
    long_file = documents[0]
    assert long_file.path.endswith("paper-history.md") and len(long_file.others) >= 2
    assert all(hit.score <= long_file.best.score for hit in long_file.others)
    assert {hit.document_rank for hit in grouped_hits} == {1, 2, 3, 4}
    assert [d.path for d in floor] == [d.path for d in documents[:2]]


def test_k_documents_embed_the_query_once_however_many_searches_they_take(history, ollama_server):
    index_dir, host = history
    with Index.open(index_dir, ollama_host=host) as index:
        first_try = index.search(QUERY, k=4 * 3)  # what the first search for four documents gets
        ollama_server.requests.clear()
        documents = index.search_documents(QUERY, k=4)
    assert len({hit.document_id for hit in first_try}) < 4 and len(documents) == 4
    assert [path for path, _ in ollama_server.requests].count("/api/embed") == 1


def _hit(rank: int, document: int, line: int) -> Hit:
    return Hit(rank=rank, score=1 / rank, text="", path=f"doc-{document}", document_id=document, chunk_id=rank,
               line_start=line, line_end=line + 2, char_start=0, char_end=0)


def test_other_ranges_are_in_document_order_and_joined_when_they_overlap():
    hits = [_hit(1, 7, 40), _hit(2, 8, 1), _hit(3, 7, 88), _hit(4, 7, 10), _hit(5, 7, 12)]
    documents = group_by_document(hits)
    assert [d.path for d in documents] == ["doc-7", "doc-8"]
    assert [str(r) for r in documents[0].other_ranges()] == ["lines 10-14", "lines 88-90"]
    assert group_by_document(hits, limit=1)[0].others == (hits[2], hits[3], hits[4])


# -- HTTP and MCP: chunk hits with document_rank ------------------------------------------------------

def test_http_search_gives_document_ranks_and_takes_the_score_floors(history):
    import httpx

    from tests.test_serve import start_server, stop_server

    index_dir, host = history
    process, url = start_server(["-i", str(index_dir), "--ollama-host", host])
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            hits = client.post("/search", json={"query": QUERY, "k": 14}).json()["hits"]
            floor = (hits[0]["score"] + hits[1]["score"]) / 2
            floored = client.post("/search", json={"query": QUERY, "k": 14, "min_score": floor}).json()["hits"]
            padded = client.post("/context", json={"query": QUERY, "min_relative": 0, "neighbours": 0}).json()
            bad = client.post("/context", json={"query": QUERY, "min_relative": 1.5})
    finally:
        stop_server(process)
    assert [hit["document_rank"] for hit in hits][:12] == [1] * 12 and hits[12]["document_rank"] == 2
    assert [hit["chunk_id"] for hit in floored] == [hits[0]["chunk_id"]]
    assert padded["below_threshold"] == 0 and padded["min_relative"] == 0
    assert bad.status_code == 422


def test_mcp_search_gives_document_ranks_and_takes_min_score(history):
    from tests.test_mcp import _params, _session

    index_dir, host = history

    async def calls(session):
        hits = json.loads((await session.call_tool("search", {"query": QUERY, "k": 14, "min_score": -1}))
                          .content[0].text)["hits"]
        floor = (hits[0]["score"] + hits[1]["score"]) / 2
        floored = await session.call_tool("search", {"query": QUERY, "k": 14, "min_score": floor})
        return hits, json.loads(floored.content[0].text)["hits"]

    hits, floored = _session(_params(index_dir, host), calls)
    assert [hit["document_rank"] for hit in hits][:12] == [1] * 12 and hits[12]["document_rank"] == 2
    assert [hit["chunk_id"] for hit in floored] == [hits[0]["chunk_id"]]
