"""The relative score threshold of `context` (semsearch.relevance), measured on tests/relevance_corpus.py.

For each question and mode, the relative score of every hit — (score - zero) / (best - zero),
zero being vector mode's background cosine or 0 — by class: passages that answer the question,
passages on its topic that do not, unrelated passages; then, for thresholds 0.3..0.8, how many
of each class `context` would pack. Runs the Ollama-protocol test server (multilingual-e5-small)
in this process; takes about a minute.

    python benchmarks/context_threshold.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import emit, machine, table  # noqa: E402
from semsearch import Index  # noqa: E402
from semsearch.relevance import DEFAULT_MIN_RELATIVE, background_similarity, chunk_centroid  # noqa: E402
from semsearch.relevance import keep_relevant  # noqa: E402
from tests.ollama_server import OllamaTestServer  # noqa: E402
from tests.relevance_corpus import CHUNK_TOKENS, QUESTIONS, write_corpus  # noqa: E402

MODES = ("vector", "keyword", "hybrid")
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def kind(hit, topic: str, answers: tuple[str, ...]) -> str:
    if hit.text.startswith(answers):
        return "answer"
    return "topic" if topic in hit.path else "unrelated"


def main() -> None:
    rows, sweep, data = [], {(mode, r): {"answer": 0, "topic": 0, "unrelated": 0} for mode in MODES
                             for r in THRESHOLDS}, {"machine": machine(), "questions": {}}
    with OllamaTestServer() as server, tempfile.TemporaryDirectory() as tmp:
        folder = write_corpus(Path(tmp) / "notes")
        with Index.open(Path(tmp) / "idx", ollama_host=server.url, chunk_tokens=CHUNK_TOKENS) as index:
            index.index([folder])
            centroid = chunk_centroid(index._store)
            for question, (topic, answers) in QUESTIONS.items():
                query_vector = index.embedder().embed([question], "query")[0]
                for mode in MODES:
                    hits = index.search(question, k=10, mode=mode)
                    zero = background_similarity(centroid, query_vector) if mode == "vector" else 0.0
                    best = hits[0].score
                    by_kind: dict[str, list[float]] = {"answer": [], "topic": [], "unrelated": []}
                    for hit in hits:
                        by_kind[kind(hit, topic, answers)].append(round((hit.score - zero) / (best - zero), 3))
                    data["questions"].setdefault(question, {})[mode] = {"zero": round(zero, 4), **by_kind}
                    span = lambda values: f"{min(values):.2f}–{max(values):.2f}" if values else "–"  # noqa: E731
                    rows.append([question, mode, span(by_kind["answer"]), span(by_kind["topic"]),
                                 span(by_kind["unrelated"])])
                    for r in THRESHOLDS:
                        kept, _ = keep_relevant(hits, r, zero)
                        for hit in kept:
                            sweep[(mode, r)][kind(hit, topic, answers)] += 1
    answers_total = sum(len(answers) for _, answers in QUESTIONS.values())
    sweep_rows = [[mode, r, f"{counts['answer']}/{answers_total}", counts["topic"], counts["unrelated"]]
                  for (mode, r), counts in sweep.items()]
    data["sweep"] = {f"{mode}@{r}": counts for (mode, r), counts in sweep.items()}
    body = (
        "Relative score (score − zero) / (best − zero) of the top 10 hits of each question on "
        "tests/relevance_corpus.py (14 one-paragraph chunks: two on bicycle tyres, six on sourdough, six on "
        "a vegetable garden), with the test server's multilingual-e5-small; zero = the query's mean cosine "
        "with the chunks in vector mode, 0 otherwise. Hybrid is the adaptive fusion of semsearch/fusion.py.\n\n"
        + table(["question", "mode", "answers", "same topic", "unrelated"], rows)
        + "\n\nHits `context` packs at each threshold, summed over the four questions (answers found / "
          "answers that exist; same-topic and unrelated hits packed):\n\n"
        + table(["mode", "min_relative", "answers", "same topic", "unrelated"], sweep_rows)
        + f"\n\nDefault chosen: {DEFAULT_MIN_RELATIVE} — in vector mode it keeps every answer and no unrelated "
          "passage, and so it does in hybrid (the default mode), whose min-max-normalised fusion leaves "
          "unrelated passages far below the best one. Keyword mode keeps passages that share only common "
          "words (\"do\", \"and\") with a question.\n"
    )
    emit("Context relative threshold", data, body)


if __name__ == "__main__":
    main()
