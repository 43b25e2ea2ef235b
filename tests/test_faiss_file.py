"""vectors.faiss upkeep (semsearch/faiss_file.py): a stale, missing, truncated or foreign file is
rebuilt from SQLite without embedding, saved and stamped; a good one is trusted as it is.

Real SQLite and FAISS, no HTTP: an in-process embedder hashes words into a small vector space and
counts what it is asked to embed, so a rebuild that called it would show.
"""

import hashlib
import shutil
from collections.abc import Sequence

import filelock
import numpy as np
import pytest

from semsearch import Index
from semsearch.embed.base import EmbedderInfo
from semsearch.embed.presets import PRESETS
from semsearch.faiss_file import VectorFile
from semsearch.options import FAISS_NAME, LOCK_NAME
from semsearch.store import DB_NAME, Store
from semsearch.vectors import TEMP_PREFIX, TEMP_SUFFIX

DIMENSIONS = 32

TEXTS = {
    "tea": "Green tea is steamed or pan fired soon after picking",
    "coffee": "Coffee beans are roasted before they are ground and brewed",
    "rust": "The borrow checker rejects code that keeps two mutable references",
    "python": "Python lists grow by over allocating their backing array",
    "river": "The Yangtze river flows east into the sea at Shanghai",
    "bread": "Sourdough bread rises with wild yeast and lactic bacteria",
    "chess": "A knight moves two squares one way and one square the other",
    "moon": "The moon keeps the same face turned toward the earth",
}
OTHER_TEXTS = {f"other-{i}": f"unrelated passage number {i} about {word}"
               for i, word in enumerate(["glass", "paper", "stone", "wool", "tin", "salt", "clay", "silk"])}
QUERIES = ["roasted coffee beans", "mutable references", "the moon and the earth", "wild yeast bread"]


class WordHashEmbedder:
    """Each word adds a fixed pseudo-random direction: texts sharing words land near each other."""

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def info(self) -> EmbedderInfo:
        return EmbedderInfo("test", "word-hash", DIMENSIONS, 512, PRESETS["none"])

    def embed(self, texts: Sequence[str], kind: str) -> np.ndarray:
        self.embedded.extend(texts)
        return np.stack([_vector(text) for text in texts])


def _vector(text: str) -> np.ndarray:
    total = np.zeros(DIMENSIONS, np.float32)
    for word in text.lower().split():
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        total += np.random.default_rng(seed).standard_normal(DIMENSIONS).astype(np.float32)
    return total / np.linalg.norm(total)


def build(path, texts=TEXTS) -> None:
    with Index.open(path, embedder=WordHashEmbedder()) as index:
        index.add_texts([{"id": key, "text": text} for key, text in texts.items()])


def answers(index: Index) -> list[list[tuple[str, float]]]:
    return [[(hit.path, round(hit.score, 5)) for hit in index.search_vector(_vector(query), k=5)]
            for query in QUERIES]


def file_state(path):
    """What a user could see of the index's FAISS file: whether SQLite's stamp describes it."""
    store = Store(path / DB_NAME)
    try:
        meta = store.meta()
        chunks = store.counts()[1]
        return VectorFile(path, store, filelock.FileLock(str(path / LOCK_NAME))).stamp_ok(meta, chunks)
    finally:
        store.close()


@pytest.fixture
def index_dir(tmp_path):
    path = tmp_path / "idx"
    build(path)
    return path


def fresh_answers(tmp_path, texts) -> list[list[tuple[str, float]]]:
    """What an index built from scratch with `texts` answers."""
    path = tmp_path / "fresh"
    build(path, texts)
    with Index.open(path, embedder=WordHashEmbedder()) as index:
        found = answers(index)
    assert all(found)
    return found


def _missing(index_dir, tmp_path):
    (index_dir / FAISS_NAME).unlink()
    return TEXTS


def _truncated(index_dir, tmp_path):
    faiss_path = index_dir / FAISS_NAME
    faiss_path.write_bytes(faiss_path.read_bytes()[: faiss_path.stat().st_size // 2])
    return TEXTS


def _stale(index_dir, tmp_path):
    # The file from before the last write: this index's own, one generation behind.
    old = tmp_path / "old.faiss"
    shutil.copy2(index_dir / FAISS_NAME, old)
    changed = {"tea": "Black tea is fully oxidised before drying"}
    with Index.open(index_dir, embedder=WordHashEmbedder()) as index:
        index.add_texts([{"id": key, "text": text} for key, text in changed.items()])
    shutil.copy2(old, index_dir / FAISS_NAME)
    return {**TEXTS, **changed}


def _foreign(index_dir, tmp_path):
    # Another index's file: same dimensions, count and size; only the contents differ.
    other = tmp_path / "other"
    build(other, OTHER_TEXTS)
    assert (other / FAISS_NAME).stat().st_size == (index_dir / FAISS_NAME).stat().st_size
    shutil.copy2(other / FAISS_NAME, index_dir / FAISS_NAME)
    return TEXTS


def _zeroed(index_dir, tmp_path):
    faiss_path = index_dir / FAISS_NAME
    faiss_path.write_bytes(bytes(faiss_path.stat().st_size))
    return TEXTS


@pytest.mark.parametrize("damage", [_missing, _truncated, _stale, _foreign, _zeroed],
                         ids=["missing", "truncated", "stale", "foreign", "zeroed"])
def test_a_bad_file_is_rebuilt_from_sqlite_saved_and_trusted_next_time(index_dir, tmp_path, damage):
    texts = damage(index_dir, tmp_path)
    expected = fresh_answers(tmp_path, texts)
    assert not file_state(index_dir)

    embedder = WordHashEmbedder()
    with Index.open(index_dir, embedder=embedder) as index:
        assert answers(index) == expected
        assert index.repaired and "rebuilt it from SQLite" in index.repaired
    assert embedder.embedded == []  # the vectors came from SQLite
    assert file_state(index_dir)  # rewritten and stamped

    with Index.open(index_dir, embedder=WordHashEmbedder()) as index:
        assert answers(index) == expected
        assert index.repaired is None  # loaded as saved, not rebuilt again


def test_a_good_file_is_searched_as_it_is_never_rewritten(index_dir, tmp_path):
    expected = fresh_answers(tmp_path, TEXTS)
    before = (index_dir / FAISS_NAME).stat()
    with Index.open(index_dir, embedder=WordHashEmbedder()) as index:
        assert answers(index) == expected
        assert index.repaired is None
    after = (index_dir / FAISS_NAME).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_reader_repairs_in_memory_while_a_writer_holds_the_lock_and_saves_later(index_dir, tmp_path):
    expected = fresh_answers(tmp_path, TEXTS)
    (index_dir / FAISS_NAME).unlink()
    writer = filelock.FileLock(str(index_dir / LOCK_NAME), timeout=0)
    with writer:
        with Index.open(index_dir, embedder=WordHashEmbedder()) as index:
            assert answers(index) == expected  # answered at once, without waiting for the writer
            assert index.repaired
        assert not (index_dir / FAISS_NAME).exists()
    with Index.open(index_dir, embedder=WordHashEmbedder()) as index:
        assert answers(index) == expected
        assert index.repaired
    assert file_state(index_dir)


def test_a_write_clears_temp_files_a_killed_writer_left_and_stamps_the_file(index_dir):
    leftover = index_dir / f"{TEMP_PREFIX}killed{TEMP_SUFFIX}"
    leftover.write_bytes(b"half a FAISS file")
    embedder = WordHashEmbedder()
    with Index.open(index_dir, embedder=embedder) as index:
        index.add_texts([{"id": "kite", "text": "A kite climbs when the string pulls it into the wind"}])
        assert index.search_vector(_vector("kite string wind"), k=1)[0].path == "kite"
    assert not leftover.exists()
    assert embedder.embedded == ["A kite climbs when the string pulls it into the wind"]
    assert file_state(index_dir)


def test_rebuild_converts_the_file_and_stamps_its_type_without_embedding(index_dir, tmp_path):
    expected = fresh_answers(tmp_path, TEXTS)
    store = Store(index_dir / DB_NAME)
    lock = filelock.FileLock(str(index_dir / LOCK_NAME), timeout=0)
    try:
        with lock:
            vector_file = VectorFile(index_dir, store, lock)
            assert vector_file.rebuild("hnsw") == len(TEXTS)
        meta = store.meta()
        assert meta["faiss_type"] == "hnsw" and meta["faiss_vectors"] == str(len(TEXTS))
        assert vector_file.stamp_ok(meta, len(TEXTS))
    finally:
        store.close()
    with Index.open(index_dir, embedder=WordHashEmbedder()) as index:
        assert index.repaired is None
        assert index.vectors().kind == "hnsw"
        assert [[path for path, _ in hits] for hits in answers(index)] == \
            [[path for path, _ in hits] for hits in expected]
