"""Source surgery on one chunk: parse, locate nodes, splice text, keep the indentation.

Edits are made on the text (not by unparsing the tree), so comments and the
layout of everything the edit does not touch stay as they were.
"""

from __future__ import annotations

import ast
import difflib
import textwrap
from collections.abc import Callable
from functools import lru_cache


@lru_cache(maxsize=512)
def parse(text: str) -> ast.Module | None:
    """The module, or None when ``text`` is not valid Python.

    Cached: every transform parses the same chunk, once per offspring draw. The
    tree is shared, so callers only read it (edits are made on the text).
    """
    try:
        return ast.parse(text)
    except SyntaxError:
        return None


# The nodes under each node walked so far, with the node held so its id stays its own.
# Trees come from the cached parse, so a generation's offspring walk each chunk once.
_WALKED: dict[int, tuple[ast.AST, tuple[ast.AST, ...]]] = {}


def walk(node: ast.AST) -> tuple[ast.AST, ...]:
    """``ast.walk(node)`` as a tuple (same order), listed once per node; read-only."""
    hit = _WALKED.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    if len(_WALKED) >= 8192:  # a bound: the cached trees of one generation fit well under it
        _WALKED.clear()
    nodes = tuple(ast.walk(node))
    _WALKED[id(node)] = (node, nodes)
    return nodes


@lru_cache(maxsize=512)
def _offsets(text: str) -> tuple[int, ...]:
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return tuple(starts)


def span(text: str, node: ast.AST) -> tuple[int, int]:
    """Character offsets of ``node`` in ``text``."""
    starts = _offsets(text)
    a = starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
    b = starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
    return a, b


def splice(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Replace each ``(start, end, new)`` range; ranges must not overlap."""
    for a, b, new in sorted(edits, reverse=True):
        text = text[:a] + new + text[b:]
    return text


def src(text: str, node: ast.AST) -> str:
    a, b = span(text, node)
    return text[a:b]


def callee(call: ast.Call) -> str:
    """The called name: ``gelu`` for ``F.gelu(x)`` and for ``gelu(x)``."""
    f = call.func
    if isinstance(f, ast.Attribute):
        return f.attr
    if isinstance(f, ast.Name):
        return f.id
    return ""


def functions(tree: ast.Module, name: str) -> list[ast.FunctionDef]:
    return [n for n in walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]


def insert_before(text: str, stmt: ast.stmt, lines: list[str]) -> str:
    """``lines`` inserted above ``stmt`` at its indentation."""
    starts = _offsets(text)
    pad = " " * stmt.col_offset
    block = "".join(pad + ln + "\n" for ln in lines)
    at = starts[stmt.lineno - 1]
    return text[:at] + block + text[at:]


def insert_after(text: str, stmt: ast.stmt, line: str) -> str:
    """``line`` inserted below ``stmt`` at its indentation."""
    at = _offsets(text)[stmt.end_lineno]  # type: ignore[index]
    return text[:at] + " " * stmt.col_offset + line + "\n" + text[at:]


def stmt_containing(body: list[ast.stmt], pred: Callable[[ast.AST], bool]) -> ast.stmt | None:
    for st in body:
        if any(pred(n) for n in walk(st)):
            return st
    return None


def numeric(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def fmt_number(old: object, new: float) -> str:
    """``new`` written like ``old`` (an int stays an int; a float keeps a dot)."""
    if isinstance(old, int):
        return str(int(new))
    s = f"{new:.3g}"
    return s if any(c in s for c in ".e") else s + ".0"


def imported_names(imports: str) -> set[str]:
    """Names an import block binds (``import torch.nn as nn`` -> nn, ``import torch`` -> torch)."""
    tree = parse(textwrap.dedent(imports))
    out: set[str] = set()
    if tree is None:
        return out
    for n in walk(tree):
        if isinstance(n, ast.Import):
            out.update(a.asname or a.name.split(".")[0] for a in n.names)
        elif isinstance(n, ast.ImportFrom):
            out.update(a.asname or a.name for a in n.names)
    return out


def dedented(chunk_text: str) -> tuple[str, str]:
    """(the chunk without its common indentation, that indentation)."""
    indent = chunk_text[: len(chunk_text) - len(chunk_text.lstrip())].rsplit("\n", 1)[-1]
    return textwrap.dedent(chunk_text), indent


def indented(text: str, indent: str) -> str:
    if not indent:
        return text
    return "".join(indent + ln if ln.strip() else ln for ln in text.splitlines(keepends=True))


def search_replace(old: str, new: str) -> str | None:
    """SEARCH/REPLACE blocks turning ``old`` into ``new`` (None if a block would be ambiguous)."""
    a, b = old.splitlines(), new.splitlines()
    blocks: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if i1 == i2:  # pure insertion: anchor on the line above
            if i1 == 0:
                return None
            i1 -= 1
            j1 -= 1
        search = "\n".join(a[i1:i2])
        if old.count(search) != 1:
            return None
        blocks.append(
            f"<<<<<<< SEARCH\n{search}\n=======\n" + "\n".join(b[j1:j2]) + "\n>>>>>>> REPLACE"
        )
    return "\n".join(blocks)


def normalised(source: str) -> str:
    """``source`` with formatting and comments gone (``ast.unparse``); itself if it does not parse."""
    tree = parse(textwrap.dedent(source))
    return ast.unparse(tree) if tree is not None else source.strip()
