"""The Qwen3-Reranker prompt, spelled exactly as its model card gives it (DESIGN §5), in one place.

The model judges one (instruction, query, document) triple and answers "yes" or "no"; the
probability of "yes" is the relevance score. The query comes before the document, so the
requests for one query share a prompt prefix that the server can cache.
"""

from __future__ import annotations

from semsearch.embed.presets import QWEN3_DEFAULT_TASK

# The model card's default instruction is the same web-search task Qwen3-Embedding uses.
DEFAULT_RERANK_INSTRUCTION = QWEN3_DEFAULT_TASK

QWEN3_RERANK_SYSTEM = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided. "
    'Note that the answer can only be "yes" or "no".'
)
QWEN3_RERANK_PREFIX = f"<|im_start|>system\n{QWEN3_RERANK_SYSTEM}<|im_end|>\n<|im_start|>user\n"
QWEN3_RERANK_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def qwen3_rerank_prompt(query: str, document: str, instruction: str = DEFAULT_RERANK_INSTRUCTION) -> str:
    """The raw prompt (chat template already applied) for one query/document pair."""
    return (
        f"{QWEN3_RERANK_PREFIX}<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"
        f"{QWEN3_RERANK_SUFFIX}"
    )
