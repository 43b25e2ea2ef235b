"""nDCG@10 of vector, keyword, RRF hybrid and adaptive hybrid on an eval index, by query-id parity.

Runs `semsearch.evaluate` (what `semsearch eval` runs) over the documents indexed so far
(`quality.restrict_to_indexed`), for all judged queries and for the odd and even query ids
apart: fusion constants were tuned on the odd ids (`fusion_lists.py` dumps, replayed offline),
the even ids are held out. The query vectors come from a `fusion_lists.py` dump (same server,
same model) so nothing is embedded again; "hybrid (RRF, before)" is the fusion hybrid used before
(`semsearch.search.rrf`, scaled), run through the same code path for comparison.

    python benchmarks/fusion_eval.py ../shared/data/cmrc2018 \
        --index /work/eval-cache/cmrc2018-qwen3-embedding-0.6b-c512 --vectors /tmp/cmrc2018.pkl
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._corpus import CachedQueryEmbedder  # noqa: E402
from benchmarks.quality import MODEL, restrict_to_indexed  # noqa: E402
from semsearch import Index, search  # noqa: E402
from semsearch.evaluate import evaluate, load_dataset  # noqa: E402


def rrf_lists(store, query, vector, keyword):
    return search.scale_fused(search.rrf(vector, keyword), 2)


def parity(query_id: str) -> int:
    digits = re.findall(r"\d+", query_id)
    return int(digits[-1]) % 2 if digits else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--vectors", type=Path, required=True, help="a fusion_lists.py dump")
    parser.add_argument("--ollama-host", default="http://127.0.0.1:11500")
    parser.add_argument("--rows", nargs="+", default=["vector", "keyword", "hybrid (RRF, before)", "hybrid (adaptive)"])
    parser.add_argument("--splits", nargs="+", default=["all", "odd (tuning)", "even (held out)"])
    args = parser.parse_args()
    dump = pickle.loads(args.vectors.read_bytes())
    cached = dict(zip(dump["query_texts"], dump["query_vectors"]))
    dataset = load_dataset(args.dataset)
    out = {"dataset": dataset.name, "corpus_documents": len(dataset.documents), "rows": {}}
    with Index.open(args.index, model=MODEL, ollama_host=args.ollama_host, timeout=900) as opened:
        index = Index.open(args.index, embedder=CachedQueryEmbedder(opened.embedder(), cached))
        scored = restrict_to_indexed(dataset, set(index.chunk_documents().values()))
        # Only queries whose vectors the dump holds (documents indexed after it are still scored).
        keep = {q for q, text in scored.queries.items() if text in cached}
        scored = replace(scored, queries={q: t for q, t in scored.queries.items() if q in keep},
                         qrels={q: r for q, r in scored.qrels.items() if q in keep})
        out["documents"] = len(scored.documents)
        splits = {"all": scored}
        for name, bit in (("odd (tuning)", 1), ("even (held out)", 0)):
            ids = {q for q in scored.queries if parity(q) == bit}
            splits[name] = replace(scored, queries={q: t for q, t in scored.queries.items() if q in ids},
                                   qrels={q: r for q, r in scored.qrels.items() if q in ids})
        adaptive = search.fuse_lists
        for label, mode, fuse in (("vector", "vector", adaptive), ("keyword", "keyword", adaptive),
                                  ("hybrid (RRF, before)", "hybrid", rrf_lists), ("hybrid (adaptive)", "hybrid", adaptive)):
            if label not in args.rows:
                continue
            search.fuse_lists = fuse
            try:
                row = {}
                for split, data in splits.items():
                    if split not in args.splits:
                        continue
                    report = evaluate(index, data, mode=mode)
                    row[split] = {"queries": report.queries, "nDCG@10": round(report.metrics["nDCG@10"], 4),
                                  "p50_ms": round(report.latency["total"].p50 * 1000, 1)}
                out["rows"][label] = row
                print(label, json.dumps(row), file=sys.stderr, flush=True)
            finally:
                search.fuse_lists = adaptive
        index.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
