"""Generated inputs for the ingestion benchmarks: a folder of Markdown notes and a zero-cost embedder."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from semsearch.embed import EmbedderInfo, preset_for_model

WORDS = ("index vector search query chunk embed model passage folder note meaning result rank score store "
         "latency memory batch commit page graph cluster recall filter token heading paragraph sentence").split()
CHINESE = "文档 检索 向量 语义 索引 段落 模型 查询".split()
CHINESE_SHARE = 5  # every fifth note mixes Chinese words into its English


def write_notes(folder: Path, files: int = 10_000, seed: int = 7) -> Path:
    """`files` Markdown notes, each a title and two sections of about 230 words; one note in
    CHINESE_SHARE mixes in Chinese words.

    Reused when the folder already holds exactly that many notes, so mtimes stay unchanged.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if sum(1 for _ in folder.rglob("*.md")) == files:
        return folder
    rng = random.Random(seed)
    for i in range(files):
        sub = folder / f"d{i // 500:02d}"
        sub.mkdir(exist_ok=True)
        sections = []
        words = WORDS + CHINESE if i % CHINESE_SHARE == 0 else WORDS
        for s in range(2):
            paragraphs = [" ".join(rng.choice(words) for _ in range(rng.randint(60, 95))) + "."
                          for _ in range(3)]
            sections.append(f"## Section {s + 1} of note {i}\n\n" + "\n\n".join(paragraphs))
        (sub / f"note{i:05d}.md").write_text(f"# Note {i}\n\n" + "\n\n".join(sections) + "\n", encoding="utf-8")
    return folder


class ZeroCostEmbedder:
    """An in-process embedder that answers instantly with stored random unit vectors."""

    def __init__(self, dimensions: int = 384):
        rng = np.random.default_rng(0)
        table = rng.standard_normal((4096, dimensions)).astype(np.float32)
        self._table = table / np.linalg.norm(table, axis=1, keepdims=True)
        self._next = 0
        self.dimensions = dimensions
        self.calls = 0
        self.texts = 0

    def info(self) -> EmbedderInfo:
        return EmbedderInfo("bench", "zero-cost", self.dimensions, 32768, preset_for_model("qwen3-embedding:0.6b"))

    def embed(self, texts, kind):
        self.calls += 1
        self.texts += len(texts)
        rows = (np.arange(len(texts)) + self._next) % len(self._table)
        self._next += len(texts)
        return self._table[rows]


class CachedQueryEmbedder:
    """The index's embedder, answering queries from vectors embedded earlier by the same model."""

    def __init__(self, inner, vectors: dict[str, np.ndarray]):
        self.inner, self.vectors = inner, vectors

    def info(self):
        return self.inner.info()

    def embed(self, texts, kind):
        if kind == "query" and all(t in self.vectors for t in texts):
            return np.stack([self.vectors[t] for t in texts])
        return self.inner.embed(texts, kind)
