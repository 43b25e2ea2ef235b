"""Replay fusion rules over `fusion_lists.py` dumps: nDCG@10 by query-id parity, in seconds.

Each judged query's vector list (top chunks by exact cosine) and keyword list (FTS5 bm25) are
cut to the depth `semsearch eval` asks for, fused by `semsearch.fusion.fuse` (the shipped code,
its two constants swept) or by the RRF it replaced, aggregated to documents by their best chunk
and scored as `semsearch.evaluate` scores them. Constants are chosen on the odd query ids; the
even ids are held out. The vector and keyword rows equal `semsearch eval`'s figures on the same
index (checked on cmrc2018: 0.9728 / 0.9821 / RRF 0.9846 both ways).

    python benchmarks/fusion_tune.py /tmp/cmrc2018.pkl /tmp/scifact.pkl [--demo /tmp/demo.pkl]
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fusion_eval import parity, rrf_lists  # noqa: E402
from semsearch import fusion  # noqa: E402
from semsearch.evaluate import documents_by_best_chunk, ndcg_at  # noqa: E402
from semsearch.fusion import Candidate  # noqa: E402

WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)
FULL_COVERAGES = (0.34, 0.5, 0.67, 1.0)


class _Hit:
    __slots__ = ("path",)

    def __init__(self, path: str):
        self.path = path


def load(path: Path) -> dict:
    dump = pickle.loads(path.read_bytes())
    dump["scores"] = dump["query_vectors"] @ dump["chunk_vectors"].T
    chunks, documents = len(dump["chunk_ids"]), max(1, dump["documents"])
    dump["depth"] = 100 * max(2, math.ceil(2 * chunks / documents))  # as semsearch.evaluate asks
    dump["owner"] = dict(zip(dump["chunk_ids"].tolist(), dump["chunk_documents"]))
    dump["text"] = dict(zip(dump["chunk_ids"].tolist(), dump["chunk_texts"]))
    return dump


def candidate_lists(dump: dict, i: int, depth: int) -> tuple[list[Candidate], list[Candidate]]:
    scores = dump["scores"][i]
    top = np.argsort(-scores, kind="stable")[:depth]
    ids = dump["chunk_ids"]
    vector = [Candidate(int(ids[j]), float(scores[j])) for j in top]
    keyword = [Candidate(int(c), float(s)) for c, s in dump["keyword"][i][:depth]]
    return vector, keyword


def run(dump: dict, rule, depth: int | None = None) -> dict[str, float]:
    """Mean nDCG@10 over all, odd and even query ids."""
    per = {"all": [], "odd": [], "even": []}
    for i, query_id in enumerate(dump["query_ids"]):
        vector, keyword = candidate_lists(dump, i, depth or dump["depth"])
        ranked = rule(dump["query_texts"][i], vector, keyword, dump)
        documents = documents_by_best_chunk((_Hit(dump["owner"][c.chunk_id]) for c in ranked), 100)
        value = ndcg_at(documents, dump["qrels"][query_id])
        per["all"].append(value)
        per["odd" if parity(query_id) else "even"].append(value)
    return {split: round(float(np.mean(values)), 4) for split, values in per.items() if values}


def vector_rule(query, vector, keyword, dump):
    return vector


def keyword_rule(query, vector, keyword, dump):
    return keyword


def rrf_rule(query, vector, keyword, dump):
    return rrf_lists(None, query, vector, keyword)  # the same RRF fusion_eval.py runs through semsearch.evaluate


def adaptive_rule(query, vector, keyword, dump):
    best = dump["text"][keyword[0].chunk_id] if keyword else None
    return fusion.fuse(vector, keyword, fusion.coverage(query, best))


def demo_top1(dump: dict, rule) -> str:
    right = 0
    for i, query_id in enumerate(dump["query_ids"]):
        vector, keyword = candidate_lists(dump, i, 50)
        ranked = rule(dump["query_texts"][i], vector, keyword, dump)
        right += bool(ranked) and dump["owner"][ranked[0].chunk_id] in dump["qrels"][query_id]
    return f"{right}/{len(dump['query_ids'])}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dumps", nargs="+", type=Path)
    parser.add_argument("--demo", type=Path, default=None, help="a dump of the demo corpus's example queries")
    args = parser.parse_args()
    dumps = [load(path) for path in args.dumps]
    demo = load(args.demo) if args.demo else None
    report: dict = {"datasets": {}, "sweep": []}
    for dump in dumps:
        rows = {name: run(dump, rule) for name, rule in
                (("vector", vector_rule), ("keyword", keyword_rule), ("hybrid (RRF)", rrf_rule))}
        rows["hybrid (adaptive, shipped)"] = run(dump, adaptive_rule)
        rows["hybrid (adaptive, 50 candidates)"] = run(dump, adaptive_rule, depth=50)
        report["datasets"][dump["dataset"]] = {"documents": dump["documents"], "corpus": dump["corpus_documents"],
                                               "queries": len(dump["query_ids"]), "rows": rows}
        print(dump["dataset"], json.dumps(rows), file=sys.stderr, flush=True)
    shipped = (fusion.KEYWORD_WEIGHT, fusion.FULL_COVERAGE)
    try:
        for weight in WEIGHTS:
            for full in FULL_COVERAGES:
                fusion.KEYWORD_WEIGHT, fusion.FULL_COVERAGE = weight, full
                row = {"keyword_weight": weight, "full_coverage": full}
                for dump in dumps:
                    row[dump["dataset"]] = run(dump, adaptive_rule)
                if demo is not None:
                    row["demo top-1"] = demo_top1(demo, adaptive_rule)
                report["sweep"].append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        fusion.KEYWORD_WEIGHT, fusion.FULL_COVERAGE = shipped
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
