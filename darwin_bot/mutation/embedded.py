"""Static refusal of embedded data and of the back doors that decode or smuggle it.

A program that carries the held-out text (or a table derived from it) can
recall it instead of learning, and one that reaches the page cache or the
loader by a side road can pass bits between sandboxes. Neither is ever needed
by an honest training program, so the validator refuses them before anything
runs. Each reason says what to do instead, for the LLM's repair.

The rules, and why each threshold sits where it does (the honest seed, every
offline mutator edit and karpathy/nanoGPT's own files stay well inside them):

- a string, bytes or f-string literal (implicit concatenation and ``+`` chains
  of literals count as one) longer than :data:`STRING_LIMIT` characters; a
  docstring longer than :data:`DOCSTRING_LIMIT`; all literal text of a file
  (docstrings aside) over :data:`FILE_TEXT_LIMIT`, all its docstrings over
  :data:`FILE_DOC_LIMIT`;
- a list, tuple, set or dict display holding more than :data:`TABLE_LIMIT`
  constants, or a file whose displays hold more than :data:`FILE_TABLE_LIMIT`;
- decoders and loaders, imported or reached through an attribute
  (``pickle.codecs``): :data:`DECODER_MODULES`; ``__import__``, ``__builtins__``,
  ``import_module``, ``sys.modules``;
- ``getattr``/``setattr``/``hasattr``/``vars`` on a module with a computed name,
  and ``module.__dict__``;
- paths under ``/proc`` or ``/sys`` (``/proc/self/cmdline`` and the like show
  what the harness is running);
- what only a page-cache channel needs: :data:`CHANNEL_NAMES`.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator

from darwin_bot.errors import MutationRejected

STRING_LIMIT = 256
DOCSTRING_LIMIT = 2048
FILE_TEXT_LIMIT = 2048
FILE_DOC_LIMIT = 4096
TABLE_LIMIT = 64
FILE_TABLE_LIMIT = 512

DECODER_MODULES: frozenset[str] = frozenset(
    {
        "base64",
        "binascii",
        "bz2",
        "codecs",
        "ctypes",
        "cffi",
        "gzip",
        "importlib",
        "lzma",
        "marshal",
        "mmap",
        "pickletools",
        "quopri",
        "runpy",
        "shelve",
        "tarfile",
        "uu",
        "zipfile",
        "zipimport",
        "zlib",
    }
)
LOADER_NAMES: frozenset[str] = frozenset(
    {"__import__", "__builtins__", "__loader__", "__spec__", "import_module"}
)
CHANNEL_NAMES: frozenset[str] = frozenset(
    {
        "posix_fadvise",
        "preadv",
        "pwritev",
        "readahead",
        "madvise",
        "mincore",
        "RWF_NOWAIT",
        "RWF_HIPRI",
        "POSIX_FADV_DONTNEED",
        "POSIX_FADV_WILLNEED",
        "POSIX_FADV_NOREUSE",
    }
)
REFLECTION_CALLS: frozenset[str] = frozenset({"getattr", "setattr", "hasattr", "delattr", "vars"})
SYSTEM_PATHS: tuple[str, ...] = ("/proc/", "/sys/")

DATA_HINT = (
    "a program may not carry data: learn it from DARWIN_DATA during training, "
    "or compute the values in code"
)


def _docstrings(tree: ast.Module) -> set[int]:
    found: set[int] = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = n.body[0] if n.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _text_length(node: ast.expr) -> int | None:
    """Characters of a literal text expression (a literal, an f-string, a + chain), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        return len(node.value)
    if isinstance(node, ast.JoinedStr):
        return sum(_text_length(v) or 0 for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text_length(node.left), _text_length(node.right)
        if left is not None and right is not None:
            return left + right
    return None


def _literal_text(tree: ast.Module, path: str) -> Iterator[str]:
    docs = _docstrings(tree)
    inner: set[int] = set()  # parts of an expression already measured whole
    total = doc_total = 0
    for n in ast.walk(tree):
        if id(n) in inner or not isinstance(n, ast.expr):
            continue
        size = _text_length(n)
        if size is None:
            continue
        inner.update(id(c) for c in ast.walk(n))
        if id(n) in docs:
            doc_total += size
            if size > DOCSTRING_LIMIT:
                yield f"{path}:{n.lineno}: a {size}-character docstring (limit {DOCSTRING_LIMIT}); {DATA_HINT}"
            continue
        total += size
        if size > STRING_LIMIT:
            yield f"{path}:{n.lineno}: a {size}-character text literal (limit {STRING_LIMIT}); {DATA_HINT}"
    if total > FILE_TEXT_LIMIT:
        yield f"{path}: {total} characters of literal text in one file (limit {FILE_TEXT_LIMIT}); {DATA_HINT}"
    if doc_total > FILE_DOC_LIMIT:
        yield f"{path}: {doc_total} characters of docstrings in one file (limit {FILE_DOC_LIMIT}); {DATA_HINT}"


def _tables(tree: ast.Module, path: str) -> Iterator[str]:
    inner: set[int] = set()
    total = 0
    for n in ast.walk(tree):
        if id(n) in inner or not isinstance(n, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
            continue
        nodes = list(ast.walk(n))
        inner.update(id(c) for c in nodes)
        size = sum(isinstance(c, ast.Constant) for c in nodes)
        total += size
        if size > TABLE_LIMIT:
            yield f"{path}:{n.lineno}: a table of {size} constants (limit {TABLE_LIMIT}); {DATA_HINT}"
    if total > FILE_TABLE_LIMIT:
        yield f"{path}: {total} constants in tables in one file (limit {FILE_TABLE_LIMIT}); {DATA_HINT}"


def _bound_by_import(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in n.names)
    return names


def _root_name(node: ast.expr) -> str:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def _imports(tree: ast.Module, path: str) -> Iterator[str]:
    for n in ast.walk(tree):
        mods: list[str] = []
        if isinstance(n, ast.Import):
            mods = [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.module:
            mods = [n.module] + [f"{n.module}.{a.name}" for a in n.names]
        for mod in mods:
            hit = set(mod.split(".")) & DECODER_MODULES
            if hit:
                yield (
                    f"{path}:{n.lineno}: import of {mod!r}: {sorted(hit)[0]} decodes hidden data "
                    f"or loads code by a side road; {DATA_HINT}"
                )


def _names(tree: ast.Module, path: str) -> Iterator[str]:
    modules = _bound_by_import(tree)
    for n in ast.walk(tree):
        name = n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else ""
        line = f"{path}:{getattr(n, 'lineno', 0)}"
        if name in DECODER_MODULES and isinstance(n, ast.Attribute):
            yield f"{line}: {name} reached through an attribute decodes or loads hidden data; {DATA_HINT}"
        elif name in LOADER_NAMES:
            yield f"{line}: {name} loads modules by computed names; import what you need by name"
        elif name in CHANNEL_NAMES:
            yield (
                f"{line}: {name} only steers or probes the page cache; read files with open() "
                "or numpy (np.fromfile, np.memmap) instead"
            )
        elif isinstance(n, ast.Attribute) and (
            (n.attr == "modules" and _root_name(n) == "sys")
            or (n.attr == "__dict__" and _root_name(n) in modules)
        ):
            yield f"{line}: {n.attr} of a module looks names up by computed strings; use the names directly"
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            if n.value in DECODER_MODULES | LOADER_NAMES | CHANNEL_NAMES:
                yield f"{line}: the string {n.value!r} names what the validator refuses by name"
            elif n.value in ("/proc", "/sys") or any(p in n.value for p in SYSTEM_PATHS):
                yield (
                    f"{line}: the path {n.value[:40]!r} reads the system's or the harness's "
                    "process state; a program reads only DARWIN_DATA and writes only DARWIN_OUT"
                )
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            yield from _reflection(n, line, modules)


def _reflection(call: ast.Call, line: str, modules: set[str]) -> Iterator[str]:
    func = call.func.id if isinstance(call.func, ast.Name) else ""
    if func not in REFLECTION_CALLS or not call.args or _root_name(call.args[0]) not in modules:
        return
    name = call.args[1] if len(call.args) > 1 else None
    if func == "vars" or not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
        yield (
            f"{line}: {func}() on a module with a computed name; refer to the attribute by "
            "name, or keep an explicit dict of the few choices"
        )


def findings(path: str, tree: ast.Module) -> list[str]:
    """Every reason ``tree`` (the file ``path``) is refused, as ``path:line: why``."""
    return [
        *_literal_text(tree, path),
        *_tables(tree, path),
        *_imports(tree, path),
        *_names(tree, path),
    ]


def _key(reason: str) -> str:
    """A finding without its line (an edit moves lines), for matching against the original."""
    head, _, why = reason.partition(": ")
    return head.split(":")[0] + ": " + why


def check_embedded(path: str, old: ast.Module, new: ast.Module) -> None:
    """MutationRejected for a finding the edit added; what the original already held stays."""
    kept = Counter(_key(r) for r in findings(path, old))
    for reason in findings(path, new):
        key = _key(reason)
        if kept[key] > 0:
            kept[key] -= 1
            continue
        raise MutationRejected(reason)
