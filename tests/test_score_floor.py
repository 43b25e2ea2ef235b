"""Score floors: `min_score` on the scale of every mode, and `context` leaving out hits that score
far below the best one (the relative threshold) instead of padding its budget with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch import Index
from semsearch.cli import cli
from semsearch.errors import ConfigError
from semsearch.relevance import DEFAULT_MIN_RELATIVE

from tests.relevance_corpus import CHUNK_TOKENS, TYRE_FILES, write_corpus

QUESTION = "How do I look after my bicycle tyres: pressure and punctures?"
# Words only the tyre passages hold: a keyword-style query, whose hybrid scores leave the second
# answer just above the default threshold (0.5 fused against 0.98).
KEYWORDS = "bicycle tyre pressure punctures"


@pytest.fixture(scope="module")
def notes(tmp_path_factory, ollama_server_session):
    """(index directory, test server URL) over tests/relevance_corpus.py: 14 one-paragraph chunks."""
    root = tmp_path_factory.mktemp("floor")
    folder = write_corpus(root / "notes")
    with Index.open(root / "idx", ollama_host=ollama_server_session.url, chunk_tokens=CHUNK_TOKENS) as index:
        index.index([folder])
    return root / "idx", ollama_server_session.url


@pytest.fixture
def index(notes):
    with Index.open(notes[0], ollama_host=notes[1]) as opened:
        yield opened


def invoke(notes, *args):
    return CliRunner().invoke(cli, [*args, "-i", str(notes[0]), "--ollama-host", notes[1]])


def names(context) -> list[str]:
    return [Path(source.path).name for source in context.sources]


# -- context: the relative threshold -------------------------------------------------------------

@pytest.mark.parametrize("mode, query", [("vector", QUESTION), ("hybrid", QUESTION), ("hybrid", KEYWORDS),
                                         ("keyword", QUESTION)])
def test_context_holds_the_two_relevant_passages_and_stops(index, mode, query):
    context = index.context(query, mode=mode, k=10, max_tokens=2000, neighbours=0)
    assert sorted(names(context)) == sorted(TYRE_FILES)
    assert context.below_threshold == 8 and context.min_relative == DEFAULT_MIN_RELATIVE
    assert context.tokens < 200  # the budget is not filled with sourdough and gardening
    padded = index.context(query, mode=mode, k=10, max_tokens=2000, neighbours=0, min_relative=0)
    assert len(padded.sources) > 2 and padded.below_threshold == 0
    assert names(padded)[:2] == names(context)


def test_context_json_says_how_many_hits_the_threshold_left_out(notes):
    result = invoke(notes, "context", QUESTION, "--json", "--neighbours", "0")
    assert result.exit_code == 0, result.output
    block = json.loads(result.stdout)
    assert sorted(Path(source["path"]).name for source in block["sources"]) == sorted(TYRE_FILES)
    assert block["below_threshold"] == 8 and block["min_relative"] == DEFAULT_MIN_RELATIVE
    everything = json.loads(invoke(notes, "context", QUESTION, "--json", "--min-relative", "0").stdout)
    assert everything["below_threshold"] == 0 and len(everything["sources"]) > 2


def test_min_relative_outside_0_to_1_is_refused(index, notes):
    with pytest.raises(ConfigError, match="min_relative"):
        index.context(QUESTION, min_relative=1.5)
    result = invoke(notes, "context", QUESTION, "--min-relative", "2")
    assert result.exit_code == 2 and "--min-relative" in result.output


# -- min_score in every mode -----------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_min_score_is_a_floor_on_the_mode_scale_in_the_library_and_the_cli(index, notes, mode):
    everything = index.search(QUESTION, k=8, mode=mode)
    floor = (everything[1].score + everything[2].score) / 2
    kept = index.search(QUESTION, k=8, mode=mode, min_score=floor)
    assert [hit.chunk_id for hit in kept] == [hit.chunk_id for hit in everything[:2]]
    documents = index.search_documents(QUESTION, k=8, mode=mode, min_score=floor)
    assert [document.best.chunk_id for document in documents] == [hit.chunk_id for hit in kept]
    cli_hits = json.loads(invoke(notes, "search", QUESTION, "--mode", mode, "--json", "--min-score",
                                 str(floor)).stdout)
    assert [hit["chunk_id"] for hit in cli_hits] == [hit.chunk_id for hit in kept]
    grouped = invoke(notes, "search", QUESTION, "--mode", mode, "--min-score", str(floor), "--color", "never")
    results = [line for line in grouped.stdout.splitlines() if not line.startswith("    ")]
    assert grouped.exit_code == 0 and len(results) == len({hit.document_id for hit in kept}), grouped.stdout
    above_all = str(everything[0].score + 1)
    for command in ("search", "context"):
        nothing = invoke(notes, command, QUESTION, "--mode", mode, "--min-score", above_all)
        assert nothing.exit_code == 1 and nothing.stdout == ""
        assert f"no passage scored at least {float(above_all):g} (--min-score)" in nothing.stderr
