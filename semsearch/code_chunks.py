"""Source code → spans at function and class boundaries, found by parsing the file with tree-sitter.

The `code` extra (`pip install 'semsearch[code]'`) brings tree-sitter and one grammar wheel per
language; grammars ship inside the wheels, nothing is downloaded at run time. `chunking.chunk`
calls `split_code` for code documents in a language listed in `LANGUAGES` and uses the text
chunker for everything else, and for a file that does not parse cleanly (`split_code` → None).

How a file is cut
-----------------
The file's top-level syntax nodes are the first units. Units are taken in order and added to the
current piece while the piece (from its first unit's start to the last one's end) fits the
budget. A unit that alone is over budget is replaced by its children: a definition by its header
(signature, decorators) and the statements of its body, a statement by its own parts — so a long
function is split at statement boundaries, its first piece keeping the signature. A unit with no
children that is still over budget (a huge string literal) is returned, with what precedes it in
its piece, as an over-budget span for the text chunker to cut.

A definition that fits is never split. With `pack` false (the default, see `PACK_DEFINITIONS`) a
piece holds at most one definition: top-level statements between definitions form pieces of
their own, and comments directly before a definition go with it. With `pack` true, small
adjacent definitions share a piece up to the budget.

A piece's heading path is the names of the definitions enclosing it (class, then method): the
common enclosing names of its units, plus the name of the one definition it holds, if any.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate
from os.path import commonprefix
from typing import TYPE_CHECKING, Any

from semsearch.optional import require
from semsearch.tokens import estimate_tokens

if TYPE_CHECKING:
    from tree_sitter import Node, Parser

__all__ = ["CHUNKER_VERSION", "LANGUAGES", "PACK_DEFINITIONS", "CodeSpan", "available", "language_for", "require_extra",
           "split_code"]

# Recorded in the index; bump it when the cut changes, so code files are chunked again (only them).
CHUNKER_VERSION = "tree-sitter/1"

# File suffix (as `extract.text.parse_code` records it, without the dot) → grammar name.
LANGUAGES: dict[str, str] = {
    "py": "python", "pyi": "python",
    "js": "javascript", "jsx": "javascript", "mjs": "javascript", "cjs": "javascript",
    "ts": "typescript", "mts": "typescript", "cts": "typescript", "tsx": "tsx",
    "go": "go", "rs": "rust", "java": "java",
    "c": "c", "h": "c",
    "cpp": "cpp", "cc": "cpp", "cxx": "cpp", "hpp": "cpp", "hh": "cpp", "hxx": "cpp",
}

# Grammar name → (module, function returning the language pointer, pip package).
_GRAMMARS: dict[str, tuple[str, str, str]] = {
    "python": ("tree_sitter_python", "language", "tree-sitter-python"),
    "javascript": ("tree_sitter_javascript", "language", "tree-sitter-javascript"),
    "typescript": ("tree_sitter_typescript", "language_typescript", "tree-sitter-typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx", "tree-sitter-typescript"),
    "go": ("tree_sitter_go", "language", "tree-sitter-go"),
    "rust": ("tree_sitter_rust", "language", "tree-sitter-rust"),
    "java": ("tree_sitter_java", "language", "tree-sitter-java"),
    "c": ("tree_sitter_c", "language", "tree-sitter-c"),
    "cpp": ("tree_sitter_cpp", "language", "tree-sitter-cpp"),
}

# Measured on the code-search set (benchmarks/code_search.py, benchmarks/RESULTS.md): one
# definition per piece retrieves better than packing small neighbours together.
PACK_DEFINITIONS = False

# Nodes that define a named thing, in every supported grammar (the names do not collide).
_DEFINITIONS = frozenset({
    # Python
    "function_definition", "class_definition",
    # JavaScript / TypeScript
    "function_declaration", "generator_function_declaration", "class_declaration", "class",
    "abstract_class_declaration", "method_definition", "interface_declaration", "enum_declaration",
    "internal_module", "module",
    # Go
    "method_declaration", "type_declaration",
    # Rust
    "function_item", "impl_item", "struct_item", "enum_item", "trait_item", "mod_item", "union_item",
    # Java
    "constructor_declaration", "record_declaration", "annotation_type_declaration",
    # C / C++
    "struct_specifier", "class_specifier", "union_specifier", "namespace_definition",
})
# Wrappers whose name is the definition inside them (decorators, `export`, `template<...>`).
_WRAPPERS = {"decorated_definition": "definition", "export_statement": "declaration", "template_declaration": None}
# `const f = () => ...`: a declaration of one variable holding a function or class is a definition.
_VARIABLE_DECLARATIONS = frozenset({"lexical_declaration", "variable_declaration"})
_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "function", "class", "generator_function"})
_COMMENTS = frozenset({"comment", "line_comment", "block_comment"})


@dataclass(frozen=True)
class CodeSpan:
    """A piece of a source file: char offsets [start, end), its heading path, and whether it fits.

    `fits` is false only for a syntax node with no parts that is alone over the budget; the
    caller cuts it with the text chunker.
    """

    start: int
    end: int
    heading_path: tuple[str, ...]
    fits: bool = True


def language_for(suffix: str) -> str | None:
    """The grammar for a file suffix (with or without the dot, any case), or None."""
    return LANGUAGES.get(suffix.lower().lstrip("."))


def available() -> bool:
    """Whether the `code` extra is installed (tree-sitter and the grammar wheels import)."""
    try:
        require_extra()
    except Exception:  # noqa: BLE001 — any failure to load means "not usable here"
        return False
    return True


def require_extra() -> None:
    """Raise MissingDependencyError naming `pip install 'semsearch[code]'` unless every grammar loads."""
    for grammar in _GRAMMARS:
        _parser(grammar)


_PARSERS: dict[str, Parser] = {}


def _parser(grammar: str) -> Parser:
    parser = _PARSERS.get(grammar)
    if parser is None:
        tree_sitter = require("tree_sitter", "code", package="tree-sitter")
        module_name, function, package = _GRAMMARS[grammar]
        module = require(module_name, "code", package=package)
        parser = tree_sitter.Parser(tree_sitter.Language(getattr(module, function)()))
        _PARSERS[grammar] = parser
    return parser


@dataclass
class _Unit:
    start: int  # byte offsets into the encoded source
    end: int
    node: Node | None  # None for a definition's header, the text after its body, or text between nodes
    path: tuple[str, ...]  # names of the definitions enclosing the unit
    name: str | None = None  # the unit is a whole definition of this name
    comment: bool = False
    header: bool = False


def _wrapped(node: Node) -> Node | None:
    """What a wrapper node (decorators, `export`, `template<...>`) wraps: its field, else its last non-comment child."""
    field = _WRAPPERS[node.type]
    inner = node.child_by_field_name(field) if field else None
    if inner is None:
        inner = next((c for c in reversed(node.named_children) if c.type not in _COMMENTS), None)
    return inner


def _is_token(unit: _Unit) -> bool:
    """Punctuation or a keyword (an anonymous node), or the text after a definition's body."""
    return (unit.node is None and not unit.header) or (unit.node is not None and not unit.node.is_named)


def split_code(text: str, language: str, max_tokens: int, *, pack: bool | None = None) -> list[CodeSpan] | None:
    """Cut source `text` in `language` (a grammar name) into spans of at most `max_tokens` estimated tokens.

    Returns spans in text order that together cover every non-blank character, trimmed of
    surrounding whitespace; None when the file does not parse cleanly (the caller falls back to
    the text chunker). `pack` None follows `PACK_DEFINITIONS`. Raises MissingDependencyError
    when the `code` extra is not installed.
    """
    parser = _parser(language)
    data = text.encode("utf-8", "surrogatepass")
    tree = parser.parse(data)
    root = tree.root_node
    if root.has_error:
        return None
    splitter = _Splitter(text, data, max_tokens, PACK_DEFINITIONS if pack is None else pack)
    return splitter.run(root)


class _Splitter:
    def __init__(self, text: str, data: bytes, max_tokens: int, pack: bool):
        self.text = text
        self.data = data
        self.max_tokens = max_tokens
        self.pack = pack
        # Byte offset → char offset; tree-sitter works in UTF-8 bytes, chunks in characters.
        self._char_starts = None if len(data) == len(text) else list(
            accumulate((len(c.encode("utf-8", "surrogatepass")) for c in text), initial=0))
        self.spans: list[CodeSpan] = []

    def char(self, offset: int) -> int:
        return offset if self._char_starts is None else bisect_left(self._char_starts, offset)

    def tokens(self, start: int, end: int) -> int:
        return estimate_tokens(self.text[self.char(start) : self.char(end)])

    def run(self, root: Node) -> list[CodeSpan]:
        pending = self._children(root, ())
        pending.reverse()  # a stack: the next unit is at the end
        current: list[_Unit] = []
        while pending:
            unit = pending.pop()
            if self.tokens(unit.start, unit.end) > self.max_tokens:
                parts = self._expand(unit)
                if parts:
                    if current and unit.name is not None and not self.pack:
                        current = self._flush(current)  # a long definition's first piece starts at it
                    pending.extend(reversed(parts))
                    continue
                # What precedes it in the piece (a signature, an opening quote) is cut with it,
                # unless that holds a definition, which must stay whole.
                if any(u.name is not None for u in current):
                    current = self._flush(current)
                start = current[0].start if current else unit.start
                path = self._group_path(current + [unit]) if current else self._own_path(unit)
                current = []
                self._emit(start, unit.end, path, fits=False)
                continue
            if current and self._starts_piece(current, unit):
                current = self._flush(current, before=unit)
            current.append(unit)
        self._flush(current)
        return self.spans

    def _starts_piece(self, current: list[_Unit], unit: _Unit) -> bool:
        if self.tokens(current[0].start, unit.end) > self.max_tokens:
            return True
        if self.pack or _is_token(unit):
            return False  # a closing `}` or `;` stays with what it closes
        if any(u.name is not None for u in current):
            return True  # one definition per piece, and nothing after it
        # A definition starts a piece unless only its own comments (or its parent's header) precede it.
        return unit.name is not None and not all(u.comment or u.header or _is_token(u) for u in current)

    def _flush(self, current: list[_Unit], before: _Unit | None = None) -> list[_Unit]:
        """Emit `current` as one span; return the units the next piece starts with.

        Comments directly before a definition go with the definition when it then still fits.
        """
        carried: list[_Unit] = []
        if before is not None and before.name is not None:
            while (len(carried) < len(current) - 1 and current[-1 - len(carried)].comment
                   and self.tokens(current[-1 - len(carried)].start, before.end) <= self.max_tokens):
                carried.insert(0, current[-1 - len(carried)])
        kept = current[: len(current) - len(carried)]
        if kept:
            self._emit(kept[0].start, kept[-1].end, self._group_path(kept))
        return carried

    def _emit(self, start: int, end: int, path: tuple[str, ...], *, fits: bool = True) -> None:
        char_start, char_end = self.char(start), self.char(end)
        segment = self.text[char_start:char_end]
        stripped = segment.strip()
        if not stripped:
            return
        char_start += len(segment) - len(segment.lstrip())
        self.spans.append(CodeSpan(char_start, char_start + len(stripped), path, fits))

    def _group_path(self, units: list[_Unit]) -> tuple[str, ...]:
        named = [u for u in units if not (u.comment or _is_token(u))] or units
        common = tuple(commonprefix([u.path for u in named]))
        definitions = [u for u in named if u.name is not None]
        if len(definitions) == 1 and definitions[0].path == common and all(
            u is definitions[0] or u.header for u in named
        ):
            return common + (definitions[0].name,)  # type: ignore[operator]
        return common

    @staticmethod
    def _own_path(unit: _Unit) -> tuple[str, ...]:
        return unit.path + (unit.name,) if unit.name is not None else unit.path

    # -- units ---------------------------------------------------------------------------------

    def _children(self, node: Node, path: tuple[str, ...]) -> list[_Unit]:
        """The units of `node`'s children, and of the text between them that no child holds (a
        string's content around its escape sequences), so the units cover all of `node`."""
        units = []
        previous = node.start_byte
        for child in node.children:
            if child.end_byte <= child.start_byte:
                continue
            if self.data[previous : child.start_byte].strip():
                units.append(_Unit(previous, child.start_byte, None, path))
            units.append(self._unit(child, path))
            previous = max(previous, child.end_byte)
        if self.data[previous : node.end_byte].strip():
            units.append(_Unit(previous, node.end_byte, None, path))
        return units

    def _unit(self, node: Node, path: tuple[str, ...]) -> _Unit:
        return _Unit(node.start_byte, node.end_byte, node, path, name=self._name(node),
                     comment=node.type in _COMMENTS)

    def _expand(self, unit: _Unit) -> list[_Unit]:
        """The parts of an over-budget unit: a definition's header then its body's parts, else its children."""
        node = unit.node
        if node is None or node.child_count == 0:
            return []
        inner_path = self._own_path(unit)
        inner = self._definition_inside(node)
        body = inner.child_by_field_name("body") if inner is not None else None
        if body is None and inner is not None:
            body = self._body_like(inner)
        if unit.name is not None and body is not None and body.child_count > 0:
            parts = []
            if body.start_byte > unit.start:
                parts.append(_Unit(unit.start, body.start_byte, None, inner_path, header=True))
            parts.extend(self._children(body, inner_path))
            if unit.end > body.end_byte:
                parts.append(_Unit(body.end_byte, unit.end, None, inner_path))
            return parts
        return self._children(node, inner_path if unit.name is not None else unit.path)

    @staticmethod
    def _definition_inside(node: Node) -> Node | None:
        """The definition node itself for a wrapper (decorators, export, template), else `node`."""
        while node.type in _WRAPPERS:
            inner = _wrapped(node)
            if inner is None:
                return None
            node = inner
        if node.type in _VARIABLE_DECLARATIONS:
            declarator = next((c for c in node.named_children if c.type == "variable_declarator"), None)
            value = declarator.child_by_field_name("value") if declarator is not None else None
            return value
        if node.type == "type_declaration":  # Go: `type S struct {...}`
            spec = next((c for c in node.named_children if c.type == "type_spec"), None)
            return spec.child_by_field_name("type") if spec is not None else None
        return node

    @staticmethod
    def _body_like(node: Node) -> Node | None:
        """A body without a `body` field (Go struct fields, an arrow function's block)."""
        for child in reversed(node.named_children):
            if child.type.endswith(("_list", "block", "_body")) or child.type in ("compound_statement",):
                return child
        return None

    def _name(self, node: Node) -> str | None:
        """The name a definition node defines, None for other nodes."""
        kind = node.type
        if kind in _WRAPPERS:
            inner = _wrapped(node)
            return self._name(inner) if inner is not None else None
        if kind in _VARIABLE_DECLARATIONS:
            declarators = [c for c in node.named_children if c.type == "variable_declarator"]
            if len(declarators) == 1:
                value = declarators[0].child_by_field_name("value")
                name = declarators[0].child_by_field_name("name")
                if value is not None and value.type in _FUNCTION_VALUES and name is not None:
                    return self._text(name)
            return None
        if kind not in _DEFINITIONS:
            return None
        if kind == "type_declaration":
            spec = next((c for c in node.named_children if c.type in ("type_spec", "type_alias")), None)
            name = spec.child_by_field_name("name") if spec is not None else None
            return self._text(name) if name is not None else None
        if kind == "impl_item":
            target = node.child_by_field_name("type")
            return self._text(target) if target is not None else None
        name = node.child_by_field_name("name")
        if name is None and kind == "function_definition":  # C/C++: the name sits in the declarator
            name = node.child_by_field_name("declarator")
            while name is not None and name.type.endswith("declarator"):
                name = name.child_by_field_name("declarator")
        if name is None:
            return None  # an anonymous struct or class
        return self._text(name)

    def _text(self, node: Any) -> str:
        return self.text[self.char(node.start_byte) : self.char(node.end_byte)]
