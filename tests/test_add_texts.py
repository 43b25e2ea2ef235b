"""`Index.add_texts` keeps the index whole: repeated ids, and data SQLite's JSON cannot hold, over the test server."""

from __future__ import annotations

import pytest

from semsearch import ConfigError, Index, InvalidInputError, TextItem

NOTES = [
    ("bike/1", "Pump road bike tyres to the pressure printed on the sidewall."),
    ("bike/2", "A chain that squeaks needs a drop of oil on every link."),
    ("tea/1", "Green tea is brewed with water at about eighty degrees."),
    ("tea/2", "Oolong leaves can be steeped five or six times."),
]


@pytest.fixture
def index(tmp_path, ollama_server):
    opened = Index.open(tmp_path / "idx", ollama_host=ollama_server.url)
    opened.add_texts([TextItem(key, text, {"topic": key.split("/")[0]}) for key, text in NOTES])
    yield opened
    opened.close()


def test_an_id_given_twice_keeps_its_last_text_and_leaves_no_orphan_vector(index):
    report = index.add_texts([
        {"id": "dup", "text": "Descale the kettle with citric acid once a month."},
        {"id": "other", "text": "Sourdough starter wants feeding every day."},
        {"id": "dup", "text": "Kettle limescale dissolves in warm vinegar overnight."},
    ])
    assert report.files_added == 2

    status = index.status()
    assert status.documents == len(NOTES) + 2
    assert status.chunks == status.faiss_vectors == len(NOTES) + 2
    assert status.in_sync

    hits = index.search("removing limescale from a kettle", k=3)
    assert len(hits) == 3
    assert hits[0].path == "dup" and "vinegar" in hits[0].text
    assert not any("citric" in hit.text for hit in index.search("citric acid", k=len(NOTES) + 2))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), [1, float("nan")],
                                   {"nested": float("nan")}, {1, 2}, b"bytes", object()],
                         ids=["nan", "inf", "-inf", "nan-in-list", "nan-in-dict", "set", "bytes", "object"])
def test_metadata_json_cannot_hold_is_refused_before_anything_is_written(index, value):
    with pytest.raises(InvalidInputError, match=r"metadata\['v'\].*JSON cannot hold"):
        index.add_texts([{"id": "fine", "text": "Written only if the whole call is valid."},
                         {"id": "bad", "text": "Odd metadata.", "metadata": {"v": value}}])
    assert index.status().documents == len(NOTES)
    hits = index.search("tea", k=2, where={"topic": "tea"})
    assert [hit.path for hit in hits] and {hit.path for hit in hits} <= {"tea/1", "tea/2"}


@pytest.mark.parametrize("item", [
    {"id": "\ud800", "text": "A lone surrogate in the id."},
    {"id": "s", "text": "A lone surrogate \udfff in the text."},
    {"id": "s", "text": "ok", "title": "\ud800"},
    {"id": "s", "text": "ok", "metadata": {"k\ud800": 1}},
    {"id": "", "text": "An empty id."},
    {"id": 7, "text": "A number for an id."},
    {"id": "s", "text": None},
    {"id": "s", "text": "ok", "metadata": ["not", "a", "dict"]},
    {"id": "s", "text": "ok", "metadata": {1: "a key that is no string"}},
    {"id": "s", "text": "ok", "colour": "an unknown key"},
    {"text": "no id at all"},
], ids=["surrogate-id", "surrogate-text", "surrogate-title", "surrogate-key", "empty-id", "int-id", "none-text",
        "list-metadata", "int-key", "unknown-key", "missing-id"])
def test_malformed_items_raise_a_semsearch_error(index, item):
    with pytest.raises(InvalidInputError) as raised:
        index.add_texts([item])
    assert isinstance(raised.value, ConfigError)
    assert index.status().documents == len(NOTES)


def test_text_item_itself_refuses_nan():
    with pytest.raises(InvalidInputError, match="finite number"):
        TextItem("x", "text", {"score": float("nan")})
