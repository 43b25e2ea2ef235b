"""Dump per-query vector and keyword candidate lists of an eval index, for tuning fusion offline.

For each judged query of a BEIR dataset (restricted to the documents indexed so far, as
`quality.py --indexed-only` scores them) this records the cosine of the query with every
indexed chunk (exact: all stored vectors), the FTS5 bm25 keyword list (up to `--depth`), and
each chunk's document and text. `fusion_tune.py` replays fusion rules over the dump
in numpy, so a rule is measured in seconds instead of re-running every query.

    python benchmarks/fusion_lists.py ../shared/data/cmrc2018 \
        --index /work/eval-cache/cmrc2018-qwen3-embedding-0.6b-c512 \
        --ollama-host http://127.0.0.1:11500 --out /tmp/cmrc2018.pkl
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.quality import MODEL, restrict_to_indexed  # noqa: E402
from semsearch import Index  # noqa: E402
from semsearch.evaluate import load_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--ollama-host", required=True)
    parser.add_argument("--depth", type=int, default=1000, help="keyword hits kept per query")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reuse", type=Path, default=None, help="an earlier dump whose query vectors to reuse")
    args = parser.parse_args()

    dataset = load_dataset(args.dataset)
    with Index.open(args.index, model=MODEL, ollama_host=args.ollama_host, timeout=900) as index:
        owners = index.chunk_documents()
        chunk_ids = sorted(owners)
        stored = index.chunk_vectors(chunk_ids)
        chunk_ids = [c for c in chunk_ids if c in stored and len(stored[c][1])]
        matrix = np.stack([stored[c][1] for c in chunk_ids])
        scored = restrict_to_indexed(dataset, {owners[c] for c in chunk_ids})
        query_ids = list(scored.queries)
        texts = [scored.queries[q] for q in query_ids]
        known_vectors = {}
        if args.reuse is not None and args.reuse.exists():
            earlier = pickle.loads(args.reuse.read_bytes())
            known_vectors = dict(zip(earlier["query_texts"], earlier["query_vectors"]))
        todo = [t for t in dict.fromkeys(texts) if t not in known_vectors]
        embedder = index.embedder()
        for i in range(0, len(todo), 256):
            known_vectors.update(zip(todo[i:i + 256], embedder.embed(todo[i:i + 256], "query")))
        vectors = np.stack([known_vectors[t] for t in texts])
        known = set(chunk_ids)
        keyword = []
        for text in texts:
            hits = index._store.keyword_search(text, args.depth)  # the raw list, as search.py gets it
            keyword.append([(c, s) for c, s in hits if c in known])
    dump = {
        "dataset": dataset.name,
        "corpus_documents": len(dataset.documents),
        "documents": len(scored.documents),
        "chunk_ids": np.array(chunk_ids),
        "chunk_documents": [owners[c] for c in chunk_ids],
        "chunk_texts": [stored[c][0] for c in chunk_ids],
        "chunk_vectors": matrix,
        "query_ids": query_ids,
        "query_texts": texts,
        "query_vectors": vectors,
        "keyword": keyword,
        "qrels": {q: scored.qrels[q] for q in query_ids},
    }
    args.out.write_bytes(pickle.dumps(dump))
    print(f"{dataset.name}: {len(chunk_ids)} chunks, {len(scored.documents)}/{len(dataset.documents)} documents, "
          f"{len(query_ids)} queries → {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
