"""A writer process for the kill tests: applies numbered text operations through the library.

    python -m tests.fault_writer INDEX OLLAMA_URL SEED START STOP

Opens the index, prints `ready`, then applies operations START..STOP-1 of `text_operations(SEED)`
with `Index.add_texts` / `Index.delete_texts`, printing `ack N` once operation N returned — the
caller's proof of what was acknowledged before it killed this process.
"""

from __future__ import annotations

import hashlib
import random
import sys
from dataclasses import dataclass

TOPICS = ("tea", "bread", "bicycles", "stars", "rivers", "gardens", "trains", "music")
TEXT_IDS = 40


@dataclass(frozen=True)
class TextOperation:
    """Add (or replace) `texts` by id, or delete `ids`."""

    number: int
    texts: dict[str, str]
    ids: tuple[str, ...] = ()

    def effect(self) -> dict[str, str | None]:
        """id → content sha256 after this operation (None: deleted)."""
        if self.texts:
            return {key: hashlib.sha256(text.encode("utf-8")).hexdigest() for key, text in self.texts.items()}
        return {key: None for key in self.ids}

    def to_json(self) -> dict:
        if self.texts:
            return {"texts": [{"id": key, "text": text} for key, text in self.texts.items()]}
        return {"ids": list(self.ids)}


def text_operations(seed: int, count: int) -> list[TextOperation]:
    """A reproducible mix of adds (three texts, new versions of existing ids too) and deletes."""
    rng = random.Random(seed)
    operations = []
    for number in range(count):
        if rng.random() < 0.7:
            chosen = rng.sample(range(TEXT_IDS), 3)
            texts = {}
            for i in chosen:
                topic = TOPICS[(i + number) % len(TOPICS)]
                texts[f"id{i}"] = (f"Text id{i}, version {number}, is about {topic}. It mentions {topic} "
                                   f"{rng.randrange(1000)} times and item {i * 7 + number}.")
            operations.append(TextOperation(number, texts))
        else:
            operations.append(TextOperation(number, {}, tuple(f"id{i}" for i in rng.sample(range(TEXT_IDS), 2))))
    return operations


def apply(index, operation: TextOperation) -> None:
    if operation.texts:
        index.add_texts({"id": key, "text": text} for key, text in operation.texts.items())
    else:
        index.delete_texts(operation.ids)


def main() -> None:
    from semsearch import Index

    path, host, seed, start, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    operations = text_operations(seed, stop)
    with Index.open(path, ollama_host=host) as index:
        print("ready", flush=True)
        for operation in operations[start:stop]:
            apply(index, operation)
            print(f"ack {operation.number}", flush=True)


if __name__ == "__main__":
    main()
