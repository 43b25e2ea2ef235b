"""`semsearch serve` against its own OpenAPI schema: Schemathesis sends generated requests, valid and not.

A real server subprocess on 127.0.0.1 (the test Ollama behind it) answers them; every answer must
be a status the schema documents, in the documented shape, and never a 5xx. A bounded number of
examples keeps the run to seconds.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from semsearch import Index, TextItem

from tests.test_serve import AUTH, TOKEN, start_server, stop_server

NOTES = [
    ("tea/green", "Green tea leaves are heated soon after picking to stop oxidation.", {"topic": "tea"}),
    ("bike/chain", "A chain that squeaks needs a drop of oil on every link.", {"topic": "bike", "year": 2024}),
    ("cook/rice", "Rinse rice until the water runs clear, then simmer it covered.", {"topic": ["cooking", "rice"]}),
]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory, ollama_server_session):
    ollama_server_session.reset()
    index_path = tmp_path_factory.mktemp("schema") / "idx"
    with Index.open(index_path, ollama_host=ollama_server_session.url) as index:
        index.add_texts([TextItem(key, text, metadata) for key, text, metadata in NOTES])
    process, url = start_server(["-i", str(index_path), "--ollama-host", ollama_server_session.url,
                                 "--timeout", "60"], {"SEMSEARCH_TOKEN": TOKEN})
    try:
        yield schemathesis.openapi.from_url(url + "/openapi.json", headers=AUTH, timeout=60)
    finally:
        stop_server(process)


# Schemathesis's own `@schema.parametrize()` on a fixture schema (`schemathesis.pytest.from_fixture`)
# breaks under pytest 9 (it renames items through a private attribute pytest removed), so the
# cases come from its Hypothesis strategy over every operation instead.
def test_every_answer_is_documented_and_none_is_a_server_error(api_schema):
    assert {operation.ok().label for operation in api_schema.get_all_operations()} == {
        "GET /status", "POST /search", "POST /context", "POST /texts", "POST /texts/delete"}

    # Requests that fit the schema, then requests that break it (wrong types, missing fields,
    # bodies that are not JSON): both kinds must get a documented answer.
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=api_schema.as_strategy(mode))
        @settings(max_examples=20, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                         HealthCheck.data_too_large])
        def call(case):
            case.call_and_validate(headers=AUTH, timeout=60)

        call()
