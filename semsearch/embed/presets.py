"""Per-model query/document text formats (instructions and prefixes) for embedding models.

Models are trained with a specific way of marking queries and documents; using the wrong one
costs retrieval quality silently. The preset is chosen from the model name, can be overridden,
and the one used is recorded in the index so queries are always formatted like the documents were.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL = "qwen3-embedding:0.6b"
QWEN3_DEFAULT_TASK = "Given a web search query, retrieve relevant passages that answer the query"
BGE_EN_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "


@dataclass(frozen=True)
class Preset:
    """How to turn a raw text into the text a model expects.

    `query_template` and `document_template` are `str.format` templates with `{text}` (and
    `{task}` for instruction-style models).
    """

    name: str
    query_template: str = "{text}"
    document_template: str = "{text}"
    task: str = ""

    def format_query(self, text: str) -> str:
        return self.query_template.format(text=text, task=self.task)

    def format_document(self, text: str) -> str:
        return self.document_template.format(text=text, task=self.task)

    @property
    def query_instruction(self) -> str:
        """What is put before a query (the template with the task filled in), as `status` shows it."""
        return self.query_template.replace("{task}", self.task).replace("{text}", "")


PRESETS: dict[str, Preset] = {
    "qwen3": Preset("qwen3", query_template="Instruct: {task}\nQuery:{text}", task=QWEN3_DEFAULT_TASK),
    "e5": Preset("e5", query_template="query: {text}", document_template="passage: {text}"),
    "nomic": Preset("nomic", query_template="search_query: {text}", document_template="search_document: {text}"),
    "mxbai": Preset("mxbai", query_template=BGE_EN_QUERY_INSTRUCTION + "{text}"),
    "bge": Preset("bge", query_template=BGE_EN_QUERY_INSTRUCTION + "{text}"),
    "none": Preset("none"),
}

# Checked in order against the lower-cased model name; the first match wins.
_NAME_HINTS: tuple[tuple[str, str], ...] = (
    ("qwen3-embedding", "qwen3"),
    ("e5", "e5"),
    ("nomic-embed", "nomic"),
    ("mxbai-embed", "mxbai"),
    ("bge-m3", "none"),  # bge-m3 uses no instruction
    ("bge", "bge"),
)


def preset_for_model(model: str) -> Preset:
    """The preset for a model name (any provider prefix like `ollama:` is ignored)."""
    name = model.split(":", 1)[1] if model.startswith(("ollama:", "openai:", "local:")) else model
    lowered = name.lower()
    for hint, preset_name in _NAME_HINTS:
        if hint in lowered:
            return PRESETS[preset_name]
    return PRESETS["none"]


# Context lengths (tokens) of model families whose server cannot be asked (OpenAI-compatible
# APIs have no "show model"); checked in order against the lower-cased name.
_CONTEXT_HINTS: tuple[tuple[str, int], ...] = (
    ("text-embedding-3", 8191),
    ("text-embedding-ada", 8191),
    ("qwen3-embedding", 32768),
    ("nomic-embed", 8192),
    ("bge-m3", 8192),
    ("e5", 512),
    ("bge", 512),
    ("mxbai-embed", 512),
    ("minilm", 512),
)
DEFAULT_CONTEXT_LENGTH = 2048


def context_length_for(model: str) -> int:
    """The context length of a model known by name, else a conservative 2048 tokens."""
    lowered = model.lower()
    return next((length for hint, length in _CONTEXT_HINTS if hint in lowered), DEFAULT_CONTEXT_LENGTH)


def custom_preset(base: Preset, *, query_template: str | None = None, document_template: str | None = None,
                  task: str | None = None) -> Preset:
    """A preset with user overrides applied; the name records that it was customised."""
    changed = any(value is not None for value in (query_template, document_template, task))
    return Preset(
        name=base.name + ("+custom" if changed else ""),
        query_template=query_template if query_template is not None else base.query_template,
        document_template=document_template if document_template is not None else base.document_template,
        task=task if task is not None else base.task,
    )
