"""Run the Ollama-protocol test server (tests/ollama_server.py) in this process, with free vectors.

The model's work is replaced by a deterministic lookup (the server's memo answers every text),
so the only embedding cost is the server's `delay_per_text`, spent in its single model slot as
Ollama would. Prints the server URL, then serves until stdin closes.

    python benchmarks/_server.py DELAY_PER_TEXT_SECONDS
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import ollama_server  # noqa: E402

_TABLE = np.random.default_rng(0).standard_normal((4096, 384)).astype(np.float32)
_TABLE /= np.linalg.norm(_TABLE, axis=1, keepdims=True)


class FreeVectors(dict):
    """Stands in for the memo of e5 vectors: every (kind, text) already has one."""

    def __contains__(self, key) -> bool:
        return True

    def __getitem__(self, key) -> np.ndarray:
        return _TABLE[zlib.crc32(key[1].encode("utf-8")) % len(_TABLE)]


def main() -> None:
    ollama_server._memo = FreeVectors()
    ollama_server._token_counts = lambda texts: [len(t) // 4 + 1 for t in texts]  # no tokenizer either
    server = ollama_server.OllamaTestServer().start()
    server.delay_per_text = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    print(server.url, flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
