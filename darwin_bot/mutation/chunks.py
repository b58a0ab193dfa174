"""Split a Python file into chunks: the units an LLM rewrites one at a time.

A file becomes, in source order:

- ``imports``: the module docstring, ``from __future__`` and the import block at
  the top. Frozen: never sent for mutation (new imports go through validation).
- ``globals``: the first run of other top-level statements (the config block);
  later runs are ``globals2``, ``globals3``...
- one chunk per top-level function, and one per class; a class longer than
  ``SPLIT_CLASS_LINES`` is split into a header chunk ``Class`` (the class line,
  docstring and class attributes) and one chunk per method, ``Class.method``.

Each chunk keeps its exact line span, with its decorators and the comment lines
directly above it, so replacing a chunk's text changes only those lines.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from darwin_bot.errors import MutationRejected

ChunkKind = Literal["imports", "globals", "function", "class", "method"]
SPLIT_CLASS_LINES = 80


@dataclass(frozen=True)
class Chunk:
    """One rewritable span of one file; ``start``/``end`` are 1-based and inclusive."""

    file: str
    name: str
    kind: ChunkKind
    start: int
    end: int
    text: str
    signature: str

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"

    @property
    def frozen(self) -> bool:
        return self.kind == "imports"

    @property
    def indent(self) -> str:
        """Leading whitespace of the chunk's first code line (methods are indented)."""
        for line in self.text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                return line[: len(line) - len(line.lstrip())]
        return ""


def _signature(node: ast.AST) -> str:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return f"def {node.name}({ast.unparse(node.args)})"
    if isinstance(node, ast.ClassDef):
        bases = ", ".join(ast.unparse(b) for b in node.bases)
        methods = [
            f"{n.name}({ast.unparse(n.args)})"
            for n in node.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        head = f"class {node.name}({bases})" if bases else f"class {node.name}"
        return head + (": " + "; ".join(methods) if methods else "")
    return ""


def _assigned_names(stmts: list[ast.stmt]) -> list[str]:
    names: list[str] = []
    for st in stmts:
        targets: list[ast.expr] = []
        if isinstance(st, ast.Assign):
            targets = list(st.targets)
        elif isinstance(st, (ast.AnnAssign, ast.AugAssign)):
            targets = [st.target]
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name) and n.id not in names:
                    names.append(n.id)
    return names


def _span_start(node: ast.stmt, lines: list[str], floor: int) -> int:
    """First line of ``node`` including decorators and comment lines directly above."""
    start = node.lineno
    decos = getattr(node, "decorator_list", [])
    if decos:
        start = min(start, min(d.lineno for d in decos))
    while start - 1 > floor and lines[start - 2].strip().startswith("#"):
        start -= 1
    return start


def _is_header(st: ast.stmt, index: int) -> bool:
    if isinstance(st, (ast.Import, ast.ImportFrom)):
        return True
    # the module docstring
    return (
        index == 0
        and isinstance(st, ast.Expr)
        and isinstance(st.value, ast.Constant)
        and isinstance(st.value.value, str)
    )


def chunk_source(file: str, source: str) -> list[Chunk]:
    """The chunks of ``source`` (the text of ``file``); raises MutationRejected on a syntax error."""
    return list(_chunk_source(file, source))


# Why cached (bot time): every offspring of a generation chunks its parent's files
# again (the session, the change signature, the mutator). A pure function of its arguments
# returning frozen chunks; a syntax error is raised again each time (lru_cache keeps no errors).
@lru_cache(maxsize=256)
def _chunk_source(file: str, source: str) -> tuple[Chunk, ...]:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise MutationRejected(f"{file}: syntax error at line {exc.lineno}: {exc.msg}") from exc
    lines = source.splitlines()
    chunks: list[Chunk] = []

    def add(name: str, kind: ChunkKind, start: int, end: int, signature: str) -> None:
        text = "\n".join(lines[start - 1 : end]) + "\n"
        chunks.append(Chunk(file, name, kind, start, end, text, signature))

    body = tree.body
    i = 0
    prev_end = 0
    if body and _is_header(body[0], 0):
        while i < len(body) and _is_header(body[i], i):
            i += 1
        add("imports", "imports", 1, body[i - 1].end_lineno or body[i - 1].lineno, "")
        prev_end = chunks[-1].end
    run = 0
    while i < len(body):
        st = body[i]
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = _span_start(st, lines, prev_end)
            add(st.name, "function", start, st.end_lineno or st.lineno, _signature(st))
            i += 1
        elif isinstance(st, ast.ClassDef):
            start = _span_start(st, lines, prev_end)
            end = st.end_lineno or st.lineno
            if end - start + 1 > SPLIT_CLASS_LINES:
                _split_class(st, lines, start, add)
            else:
                add(st.name, "class", start, end, _signature(st))
            i += 1
        else:
            j = i
            while j < len(body) and not isinstance(
                body[j], (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            ):
                j += 1
            run += 1
            stmts = body[i:j]
            start = _span_start(stmts[0], lines, prev_end)
            end = stmts[-1].end_lineno or stmts[-1].lineno
            name = "globals" if run == 1 else f"globals{run}"
            add(name, "globals", start, end, ", ".join(_assigned_names(stmts)))
            i = j
        prev_end = chunks[-1].end
    return tuple(chunks)


def _split_class(node: ast.ClassDef, lines: list[str], start: int, add) -> None:  # type: ignore[no-untyped-def]
    methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    first = methods[0]
    head_end = _span_start(first, lines, start) - 1
    while head_end > start and not lines[head_end - 1].strip():
        head_end -= 1
    add(node.name, "class", start, head_end, _signature(node))
    prev_end = head_end
    extra = 0
    for st in node.body:
        if st.lineno <= head_end:
            continue
        s = _span_start(st, lines, prev_end)
        e = st.end_lineno or st.lineno
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            add(f"{node.name}.{st.name}", "method", s, e, _signature(st))
        else:
            extra += 1
            add(f"{node.name}.attrs{extra}", "globals", s, e, "")
        prev_end = e


def find_chunk(chunks: list[Chunk], name: str) -> Chunk | None:
    for c in chunks:
        if c.name == name:
            return c
    return None


def replace_chunk(source: str, chunk: Chunk, new_text: str) -> str:
    """``source`` with the lines of ``chunk`` replaced by ``new_text``."""
    lines = source.splitlines(keepends=True)
    body = new_text if new_text.endswith("\n") else new_text + "\n"
    return "".join(lines[: chunk.start - 1]) + body + "".join(lines[chunk.end :])


def reindent(text: str, indent: str) -> str:
    """Shift ``text`` so its least-indented code sits at ``indent`` (a method's depth).

    LLMs often return a method flush-left; this puts it back where the chunk was.
    """
    body = textwrap.dedent(text.expandtabs(4))
    if not indent:
        return body
    return "".join(indent + ln if ln.strip() else ln for ln in body.splitlines(keepends=True))
