"""How far below the best hit a passage may score and still be packed into a context block.

`context` fills a token budget best hit first; without a stop, a question about bicycle tyres
in a folder of baking notes would fill its budget with sourdough. A hit is packed only if its
*relative score* reaches `min_relative` (default DEFAULT_MIN_RELATIVE):

    relative = (score - zero) / (best - zero)

where `best` is the best hit's score and `zero` the score that means "no evidence" on the
hits' scale: 0 for keyword bm25, hybrid fused scores and rerank scores (all 0 when nothing
matches), and for vector cosine the query's mean similarity to the indexed chunks (its
*background*: an embedding model gives unrelated text a cosine well above 0 — about 0.8 for
multilingual-e5, 0.2–0.4 for others — so a ratio of raw cosines would mean something different
for every model). The best hit is always packed; when `best` is not above `zero` nothing is
left out, since the scores then tell nothing apart.

DEFAULT_MIN_RELATIVE was chosen on tests/relevance_corpus.py (bicycle tyres among sourdough
and gardening notes, multilingual-e5-small; benchmarks/context_threshold.py): in vector mode
passages answering the question scored 0.93–1.0 relative, unrelated ones at most 0.03, and
passages on its topic that do not answer it at most 0.68; in hybrid mode (the default) answers
scored 0.51–1.0 and unrelated passages at most 0.23; keyword bm25 put unrelated passages
sharing only common words with the question at up to 0.79. See benchmarks/RESULTS.md,
"Context relative threshold".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from semsearch.errors import ConfigError
from semsearch.types import Hit

if TYPE_CHECKING:
    import numpy as np

    from semsearch.store import Store

DEFAULT_MIN_RELATIVE = 0.5
BACKGROUND_SAMPLE = 512  # chunk vectors averaged to estimate a query's background similarity


def check_min_relative(min_relative: float) -> None:
    """Raise ConfigError unless 0 <= min_relative <= 1."""
    if not 0.0 <= min_relative <= 1.0:
        raise ConfigError(f"min_relative must be between 0 and 1 (0 = no threshold), not {min_relative}")


def keep_relevant(hits: Sequence[Hit], min_relative: float, zero: float = 0.0) -> tuple[list[Hit], int]:
    """(the hits whose relative score reaches `min_relative`, in order; how many were left out).

    `hits` come best first; `zero` is the scale's no-evidence score (see the module docstring).
    """
    if not hits or min_relative <= 0:
        return list(hits), 0
    best = hits[0].score
    if best <= zero:
        return list(hits), 0
    kept = [hits[0]] + [hit for hit in hits[1:] if (hit.score - zero) / (best - zero) >= min_relative]
    return kept, len(hits) - len(kept)


def chunk_centroid(store: Store) -> np.ndarray | None:
    """The mean of an even sample of the index's stored vectors (None when it holds none).

    A query's mean cosine with unit vectors is its dot product with their (unnormalised) mean,
    so this one vector gives every query its background similarity.
    """
    import numpy as np

    blobs = store.vector_sample(BACKGROUND_SAMPLE)
    if not blobs:
        return None
    return np.stack([np.frombuffer(blob, dtype="<f4") for blob in blobs]).astype(np.float32).mean(axis=0)


def background_similarity(centroid: np.ndarray | None, query_vector: np.ndarray) -> float:
    """The query's mean cosine with the indexed chunks, from `chunk_centroid` (0 without one)."""
    import numpy as np

    if centroid is None:
        return 0.0
    return float(np.asarray(query_vector, dtype=np.float32) @ centroid)
