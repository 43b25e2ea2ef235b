"""Optional dependencies: import them lazily and, when missing, say in one line how to install them."""

from __future__ import annotations

import importlib
from types import ModuleType

from semsearch.errors import MissingDependencyError, SemsearchError

# extra name → what it is for (the pyproject.toml extras of the same names).
EXTRAS = {
    "pdf": "reading PDF files",
    "docx": "reading Word (.docx) files",
    "local": "the local: embedding provider",
    "serve": "semsearch serve",
    "mcp": "semsearch mcp",
    "langchain": "the LangChain retriever",
    "code": "code-aware chunking (--code-chunks)",
    "milvus": "the Milvus store (--store milvus:...)",
}


def install_hint(extra: str) -> str:
    return f"pip install 'semsearch[{extra}]'"


def require(module: str, extra: str, *, package: str | None = None,
            error: type[SemsearchError] = MissingDependencyError) -> ModuleType:
    """Import `module`, or raise `error` naming the extra that provides it and the pip command.

    `package` is the name pip knows it by, when that differs from the module's. Extractors
    pass `error=ExtractError` so a missing library is reported per file, not fatal.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        name = package or module.split(".")[0]
        raise error(f"{EXTRAS.get(extra, extra)} needs the {name} package — {install_hint(extra)}") from exc
