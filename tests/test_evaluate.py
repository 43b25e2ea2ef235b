"""`semsearch eval` and semsearch.evaluate: BEIR loading, metrics, index reuse, text and JSON reports."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch.cli import cli
from semsearch.errors import ConfigError
from semsearch.evaluate import (
    default_index_dir,
    document_text,
    documents_by_best_chunk,
    evaluate_dataset,
    load_dataset,
    mrr_at,
    ndcg_at,
    recall_at,
)
from semsearch.types import Hit

MINI = Path(__file__).resolve().parent / "data" / "beir-mini"
METRICS = ("nDCG@10", "Recall@10", "Recall@100", "MRR@10")


# -- metrics ---------------------------------------------------------------------------------

def test_ndcg_uses_graded_gains_and_the_ideal_order():
    relevance = {"a": 2, "b": 1}
    assert ndcg_at(["a", "b", "x"], relevance) == pytest.approx(1.0)
    # b first, a second: DCG = 1/log2(2) + 2/log2(3); ideal = 2/log2(2) + 1/log2(3)
    expected = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert ndcg_at(["b", "a"], relevance) == pytest.approx(expected)
    assert ndcg_at(["x"] * 10 + ["a"], relevance) == 0.0  # beyond the cut-off


def test_recall_and_mrr_count_only_positive_relevance():
    relevance = {"a": 1, "b": 1, "z": 0}
    ranked = ["z", "x", "a"] + [f"n{i}" for i in range(200)] + ["b"]
    assert recall_at(ranked, relevance, 10) == 0.5
    assert recall_at(ranked, relevance, 100) == 0.5
    assert recall_at(ranked, relevance, 1000) == 1.0
    assert mrr_at(ranked, relevance) == pytest.approx(1 / 3)  # z (relevance 0) does not count
    assert mrr_at(["x"] * 10 + ["a"], relevance) == 0.0


def _hit(rank: int, document: str) -> Hit:
    return Hit(rank=rank, score=1 / rank, text="", path=document, document_id=ord(document), chunk_id=rank,
               line_start=1, line_end=1, char_start=0, char_end=0, is_file=False)


def test_documents_are_ranked_by_their_best_chunk():
    hits = [_hit(1, "a"), _hit(2, "b"), _hit(3, "a"), _hit(4, "c")]
    assert documents_by_best_chunk(hits, depth=10) == ["a", "b", "c"]
    assert documents_by_best_chunk(hits, depth=2) == ["a", "b"]


# -- loading ---------------------------------------------------------------------------------

def test_load_dataset_keeps_judged_queries_and_graded_qrels():
    dataset = load_dataset(MINI)
    assert dataset.name == "beir-mini"
    assert len(dataset.documents) == 12
    assert set(dataset.queries) == {"q1", "q2", "q3", "q4", "q5", "q6"}  # q7 has no qrels
    assert dataset.qrels["q2"] == {"d2": 2, "d1": 1}
    assert dataset.documents[6].indexed_text == "造纸术\n\n东汉时期蔡伦改进了造纸术，用树皮、麻头和破布造纸，降低了成本。"


def test_document_text_joins_title_and_body():
    assert document_text("Title", "Body\r\ntext ") == "Title\n\nBody\ntext"
    assert document_text("", " Body") == "Body"
    assert document_text("Only title", "") == "Only title"


def test_load_dataset_names_the_missing_file(tmp_path):
    shutil.copytree(MINI, tmp_path / "ds")
    (tmp_path / "ds" / "qrels" / "test.tsv").unlink()
    with pytest.raises(ConfigError, match=r"qrels/test\.tsv is missing"):
        load_dataset(tmp_path / "ds")


def test_default_index_dir_is_per_dataset_and_model_under_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SEMSEARCH_CACHE", str(tmp_path))
    dataset = load_dataset(MINI)
    path = default_index_dir(dataset, "qwen3-embedding:0.6b", 512)
    assert path.parent.parent == tmp_path / "eval"
    assert path.parent.name.startswith("beir-mini-")
    assert path.name == "qwen3-embedding-0.6b-c512"
    assert default_index_dir(dataset, "nomic-embed-text", 512) != path


# -- end to end ------------------------------------------------------------------------------

def _query_texts(server) -> list[str]:
    return [text for text in server.embed_texts if text.startswith("Instruct: ")]


def test_eval_reuses_its_index_and_embeds_only_the_queries(tmp_path, ollama_server, monkeypatch):
    monkeypatch.setenv("SEMSEARCH_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    args = ["eval", str(MINI), "--ollama-host", ollama_server.url]

    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert len(ollama_server.embed_texts) - len(_query_texts(ollama_server)) == 12  # every document once

    ollama_server.reset()
    second = runner.invoke(cli, [*args, "--json"])
    assert second.exit_code == 0, second.output
    report = json.loads(second.output)
    # Only the six judged queries reach the embedder, each once, in the query format.
    assert len(ollama_server.embed_texts) == 6
    assert len(_query_texts(ollama_server)) == 6
    assert report["chunks_embedded"] == 0
    assert report["queries"] == 6 and report["documents"] == 12
    assert set(report["metrics"]) == set(METRICS)
    assert report["metrics"]["nDCG@10"] > 0.8  # the fixture's queries are easy for the model
    assert set(report["latency"]) == {"embed", "retrieve", "fuse", "total"}
    assert Path(report["index"]).is_relative_to(tmp_path / "cache" / "eval")

    ollama_server.reset()
    text = runner.invoke(cli, args)
    assert text.exit_code == 0, text.output
    for name in METRICS:
        assert name in text.output
    assert "0 chunks embedded" in text.output
    assert len(ollama_server.embed_texts) == 6


def test_eval_keyword_mode_needs_no_query_embedding(tmp_path, ollama_server):
    index_dir = tmp_path / "idx"
    evaluate_dataset(MINI, index_dir=index_dir, ollama_host=ollama_server.url, max_queries=1)
    ollama_server.reset()
    report = evaluate_dataset(MINI, index_dir=index_dir, ollama_host=ollama_server.url, mode="keyword")
    assert ollama_server.embed_texts == []
    assert report.mode == "keyword" and report.queries == 6
    # The Chinese questions share bigrams with exactly their documents.
    assert report.metrics["Recall@10"] >= 0.8
    assert set(report.latency) == {"retrieve", "fuse", "total"}


def test_eval_hybrid_reports_the_fuse_stage(tmp_path, ollama_server):
    report = evaluate_dataset(MINI, index_dir=tmp_path / "idx", ollama_host=ollama_server.url, mode="hybrid",
                              max_queries=3)
    assert report.queries == 3
    assert set(report.latency) == {"embed", "retrieve", "fuse", "total"}
    assert 0.0 <= report.metrics["MRR@10"] <= 1.0


def test_eval_rerank_reranks_the_top_candidates_and_reports_its_latency(tmp_path, ollama_server):
    index_dir = tmp_path / "idx"
    plain = evaluate_dataset(MINI, index_dir=index_dir, ollama_host=ollama_server.url, max_queries=3)
    ollama_server.reset()
    result = CliRunner().invoke(cli, ["eval", str(MINI), "-i", str(index_dir), "--max-queries", "3", "--rerank",
                                      "--rerank-top", "4", "--ollama-host", ollama_server.url, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    generate_calls = [body for path, body in ollama_server.requests if path == "/api/generate"]
    assert len(generate_calls) == 3 * 4  # one request per reranked candidate, for each query
    assert set(report["latency"]) == {"embed", "retrieve", "fuse", "total", "rerank"}
    assert report["latency"]["rerank"]["p50_ms"] > 0
    assert report["queries"] == plain.queries == 3
    assert set(report["metrics"]) == set(METRICS)
    assert report["metrics"]["Recall@100"] == pytest.approx(plain.metrics["Recall@100"])  # the tail is kept


def test_eval_refuses_an_index_chunked_differently(tmp_path, ollama_server):
    index_dir = tmp_path / "idx"
    evaluate_dataset(MINI, index_dir=index_dir, ollama_host=ollama_server.url, max_queries=1, chunk_tokens=256)
    result = CliRunner().invoke(cli, ["eval", str(MINI), "-i", str(index_dir), "--chunk-tokens", "128",
                                      "--ollama-host", ollama_server.url])
    assert result.exit_code == 1
    assert "chunked at 256 tokens, not 128" in result.output
    assert "Traceback" not in result.output


def test_eval_on_a_folder_that_is_not_a_dataset_is_one_clean_error(tmp_path, ollama_server):
    result = CliRunner().invoke(cli, ["eval", str(tmp_path), "--ollama-host", ollama_server.url])
    assert result.exit_code == 1
    assert "corpus.jsonl is missing" in result.output
