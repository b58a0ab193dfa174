"""Static checks on an edited tree, before any of its code runs.

Each check raises ``MutationRejected`` with a one-line reason that goes both to
memory and to the repair prompt:

- every edited file parses and stays under ``max_file_lines``;
- only files under the evolvable paths change;
- names other code uses still exist with a compatible signature (``load(path,
  device)`` always; any top-level function/class, or method, that another
  chunk or file refers to);
- no import of a module outside the original file's imports, the allowed list
  and the approved dependency requests; never a denied module;
- no denied call: subprocess, os.system/popen/exec*/spawn*/fork, sockets, HTTP
  clients, exec/eval/compile, ``__import__``, importlib, ctypes, and no
  ``open()`` of an absolute path for writing;
- no embedded data, decoder back door or page-cache call (``embedded.py``).

This is a tripwire for honest mistakes and obvious escapes, not the security
boundary: the sandbox is.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from darwin_bot.config import ProgramConfig
from darwin_bot.errors import MutationRejected
from darwin_bot.mutation.embedded import check_embedded
from darwin_bot.program import contract_for

DENIED_MODULES: frozenset[str] = frozenset(
    {
        "subprocess",
        "socket",
        "ssl",
        "urllib",
        "http",
        "requests",
        "httpx",
        "aiohttp",
        "ctypes",
        "importlib",
        "multiprocessing",
        "shutil",
        "ftplib",
        "smtplib",
        "telnetlib",
        "pty",
        "builtins",
    }
)
DENIED_OS_CALLS: frozenset[str] = frozenset(
    {
        "system",
        "popen",
        "fork",
        "forkpty",
        "kill",
        "killpg",
        "remove",
        "unlink",
        "rmdir",
        "removedirs",
        "rename",
        "replace",
        "chmod",
        "chown",
        "symlink",
        "link",
        "putenv",
    }
)
DENIED_OS_PREFIXES: tuple[str, ...] = ("exec", "spawn", "posix_spawn")
DENIED_BUILTINS: frozenset[str] = frozenset({"exec", "eval", "compile", "__import__", "breakpoint"})
REQUIRED_API: dict[str, tuple[str, ...]] = {"model.py": ("load",)}


@dataclass(frozen=True)
class Surface:
    """What code outside a definition relies on: names and their call signatures."""

    functions: dict[str, ast.arguments]
    classes: dict[str, dict[str, ast.arguments]]  # class -> method -> args
    globals: frozenset[str]


def parse_file(path: str, text: str) -> ast.Module:
    """The tree of ``text``; MutationRejected (naming ``path``) on a syntax error.

    Shared: the same text gives the same tree object while it is cached, so
    every check reads trees and none may change one.
    """
    return _parsed(path, text)


# a generation's offspring are validated against the same few
# parent files, so their trees (and node lists, _KEPT) are kept across calls, keyed by the
# text. A syntax error is raised again each time (lru_cache keeps no exceptions).
_KEPT: dict[int, tuple[ast.AST, list[ast.AST]]] = {}


@lru_cache(maxsize=64)
def _parsed(path: str, text: str) -> ast.Module:
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" if exc.lineno else "?"
        bad = (exc.text or "").strip()
        raise MutationRejected(
            f"{path}: {type(exc).__name__} at {where}: {exc.msg}" + (f" ({bad!r})" if bad else "")
        ) from exc
    if len(_KEPT) >= 128:  # a bound: trees evicted from the parse cache are dropped here too
        _KEPT.clear()
    _KEPT[id(tree)] = (tree, list(ast.walk(tree)))
    return tree


def surface(tree: ast.Module) -> Surface:
    functions: dict[str, ast.arguments] = {}
    classes: dict[str, dict[str, ast.arguments]] = {}
    names: set[str] = set()
    for st in tree.body:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions[st.name] = st.args
        elif isinstance(st, ast.ClassDef):
            classes[st.name] = {
                m.name: m.args
                for m in st.body
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))
            }
        elif isinstance(st, (ast.Assign, ast.AnnAssign)):
            targets = st.targets if isinstance(st, ast.Assign) else [st.target]
            for t in targets:
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    return Surface(functions, classes, frozenset(names))


# one ast.walk per tree per validate_files call instead of one per
# check (four checks walk every tree): the nodes are listed once and kept, with the tree, until
# validate_files returns. Keyed by id() with the tree held, so an id is never reused meanwhile.
_NODES: dict[int, tuple[ast.AST, list[ast.AST]]] = {}


def _nodes(tree: ast.AST) -> list[ast.AST]:
    for store in (_KEPT, _NODES):
        hit = store.get(id(tree))
        if hit is not None and hit[0] is tree:  # the value holds the tree: its id is its own
            return hit[1]
    nodes = list(ast.walk(tree))
    if len(_NODES) < 256:  # a bound, should a caller outside validate_files use these
        _NODES[id(tree)] = (tree, nodes)
    return nodes


def used_names(trees: Iterable[ast.Module]) -> tuple[set[str], set[str]]:
    """Bare names read and attribute names read anywhere in ``trees``."""
    bare: set[str] = set()
    attrs: set[str] = set()
    for tree in trees:
        for n in _nodes(tree):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                bare.add(n.id)
            elif isinstance(n, ast.Attribute):
                attrs.add(n.attr)
            elif isinstance(n, ast.ImportFrom):
                bare.update(a.name for a in n.names)
    return bare, attrs


def compatible(old: ast.arguments, new: ast.arguments) -> str:
    """'' when every call valid for ``old`` is valid for ``new``; else what breaks."""
    old_pos = [a.arg for a in old.posonlyargs + old.args]
    new_pos = [a.arg for a in new.posonlyargs + new.args]
    if new.vararg is None and new_pos[: len(old_pos)] != old_pos:
        return (
            f"positional parameters changed from ({', '.join(old_pos)}) to ({', '.join(new_pos)})"
        )
    n_new_required = len(new_pos) - len(new.defaults)
    if n_new_required > len(old_pos) - len(old.defaults):
        return f"new required parameter(s) {new_pos[len(old_pos) - len(old.defaults) : n_new_required]}"
    old_kw = {a.arg for a in old.kwonlyargs}
    new_kw = {a.arg for a in new.kwonlyargs}
    if new.kwarg is None and not old_kw <= (new_kw | set(new_pos)):
        return f"keyword parameter(s) removed: {sorted(old_kw - new_kw - set(new_pos))}"
    required_kw = {
        a.arg for a, d in zip(new.kwonlyargs, new.kw_defaults, strict=False) if d is None
    }
    if required_kw - old_kw:
        return f"new required keyword parameter(s): {sorted(required_kw - old_kw)}"
    return ""


def check_surface(path: str, old: ast.Module, new: ast.Module, others: list[ast.Module]) -> None:
    """Names used outside their own definition keep existing, with compatible signatures."""
    before, after = surface(old), surface(new)
    # uses from other files, and uses inside this file outside the definition itself
    bare, attrs = used_names(others)
    for st in new.body:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            inner_bare, inner_attrs = used_names([ast.Module(body=[st], type_ignores=[])])
            bare |= inner_bare - {st.name}
            attrs |= inner_attrs
        else:
            b, a = used_names([ast.Module(body=[st], type_ignores=[])])
            bare |= b
            attrs |= a
    required = set(REQUIRED_API.get(path.rsplit("/", 1)[-1], ()))
    for name, args in before.functions.items():
        if name not in bare and name not in required:
            continue
        if name not in after.functions:
            raise MutationRejected(
                f"{path}: function {name}() was removed or renamed, but other code calls it"
            )
        why = compatible(args, after.functions[name])
        if why:
            raise MutationRejected(
                f"{path}: {name}() is called elsewhere and its signature broke: {why}"
            )
    for cls, methods in before.classes.items():
        if cls not in bare:
            continue
        if cls not in after.classes:
            raise MutationRejected(
                f"{path}: class {cls} was removed or renamed, but other code uses it"
            )
        new_methods = after.classes[cls]
        for m, args in methods.items():
            if m in ("__init__", "forward") or m in attrs:
                if m not in new_methods:
                    raise MutationRejected(
                        f"{path}: method {cls}.{m} was removed, but other code uses it"
                    )
                why = compatible(args, new_methods[m])
                if why:
                    raise MutationRejected(f"{path}: {cls}.{m} signature broke: {why}")
    lost = sorted(n for n in before.globals - after.globals if n in bare)
    if lost:
        raise MutationRejected(
            f"{path}: global(s) {', '.join(lost)} removed, but other code reads them"
        )


def _root(module: str) -> str:
    return module.split(".")[0]


def imported_modules(tree: ast.Module) -> set[str]:
    mods: set[str] = set()
    for n in _nodes(tree):
        if isinstance(n, ast.Import):
            mods.update(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            mods.add(n.module)
    return mods


def check_imports(
    path: str, old: ast.Module, new: ast.Module, allowed: Iterable[str], siblings: Iterable[str]
) -> None:
    before = imported_modules(old)
    ok = {_root(m) for m in before} | {_root(m) for m in allowed} | set(siblings)
    for mod in sorted(imported_modules(new) - before):
        root = _root(mod)
        if root in DENIED_MODULES:
            raise MutationRejected(
                f"{path}: import of {mod!r} is not allowed (process, network or loader access)"
            )
        if root not in ok:
            raise MutationRejected(
                f"{path}: new import {mod!r} is not in the allowed list; ask for it with "
                "'REQUEST: dependency | ...' instead"
            )


def _dotted(node: ast.expr) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> full dotted name for imports (``import os as o``, ``from os import system``)."""
    out: dict[str, str] = {}
    for n in _nodes(tree):
        if isinstance(n, ast.Import):
            for a in n.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            for a in n.names:
                out[a.asname or a.name] = f"{n.module}.{a.name}"
    return out


def _write_mode(call: ast.Call) -> bool:
    mode: ast.expr | None = call.args[1] if len(call.args) > 1 else None
    for kw in call.keywords:
        if kw.arg == "mode":
            mode = kw.value
    if mode is None:
        return False
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return any(c in mode.value for c in "wax+")
    return True  # a computed mode: assume the worst


def check_calls(path: str, old: ast.Module, new: ast.Module) -> None:
    """Reject denied calls the edit added (a call the original already made is its author's)."""
    seen = Counter(r.split(": ", 1)[1] for r in _denied_calls(path, old))
    for reason in _denied_calls(path, new):
        key = reason.split(": ", 1)[1]
        if seen[key] > 0:
            seen[key] -= 1
            continue
        raise MutationRejected(reason)


def _denied_calls(path: str, tree: ast.Module) -> list[str]:
    """Reasons, one per denied call in ``tree`` (``path:line: what``)."""
    found: list[str] = []
    aliases = _aliases(tree)
    for n in _nodes(tree):
        if not isinstance(n, ast.Call):
            continue
        name = _dotted(n.func)
        if not name:
            continue
        head, _, rest = name.partition(".")
        full = aliases.get(head, head) + (f".{rest}" if rest else "")
        parts = full.split(".")
        line = f"{path}:{n.lineno}"
        if full in DENIED_BUILTINS:
            found.append(f"{line}: call to {full}() is not allowed")
        elif parts[0] in DENIED_MODULES:
            found.append(
                f"{line}: call to {full}() is not allowed (process, network or loader access)"
            )
        elif (
            parts[0] == "os"
            and len(parts) > 1
            and (parts[-1] in DENIED_OS_CALLS or parts[-1].startswith(DENIED_OS_PREFIXES))
        ):
            found.append(f"{line}: call to {full}() is not allowed")
        if full in ("open", "io.open", "builtins.open") and n.args:
            target = n.args[0]
            if (
                isinstance(target, ast.Constant)
                and isinstance(target.value, str)
                and target.value.startswith(("/", "~"))
                and _write_mode(n)
            ):
                found.append(
                    f"{line}: writing to the absolute path {target.value!r}; write only under DARWIN_OUT"
                )
    return found


def check_paths(changed: Iterable[str], evolvable: Iterable[str]) -> None:
    roots = tuple(evolvable)
    for p in changed:
        norm = p.replace("\\", "/")
        if (
            norm.startswith("/")
            or ".." in norm.split("/")
            or not any(
                norm == r.rstrip("/") or norm.startswith(r if r.endswith("/") else r + "/")
                for r in roots
            )
        ):
            raise MutationRejected(
                f"edit to {p!r} is outside the evolvable paths ({', '.join(roots)})"
            )


def validate_files(
    old: Mapping[str, str],
    new: Mapping[str, str],
    *,
    evolvable: Iterable[str],
    allowed_imports: Iterable[str],
    max_file_lines: int,
    program: ProgramConfig | None = None,  # what the contract keeps
) -> None:
    """Check the edited files ``new`` against their originals ``old`` (path -> text).

    ``old`` holds every evolvable Python file of the tree (the context for
    cross-file uses); ``new`` only the files an edit touched.
    """
    try:
        _validate(old, new, evolvable, allowed_imports, max_file_lines, program)
    finally:
        _NODES.clear()  # the node lists live for one call


def _validate(
    old: Mapping[str, str],
    new: Mapping[str, str],
    evolvable: Iterable[str],
    allowed_imports: Iterable[str],
    max_file_lines: int,
    program: ProgramConfig | None,
) -> None:
    check_paths(new, evolvable)
    trees_old = {p: parse_file(p, t) for p, t in old.items()}
    trees_new = dict(trees_old)
    for p, t in new.items():
        n_lines = t.count("\n") + (0 if t.endswith("\n") else 1)
        if n_lines > max_file_lines:
            raise MutationRejected(f"{p}: {n_lines} lines, over the limit of {max_file_lines}")
        trees_new[p] = parse_file(p, t)
    siblings = {p.rsplit("/", 1)[-1].removesuffix(".py") for p in old}
    allowed = tuple(allowed_imports)
    for p in new:
        if p not in trees_old:
            raise MutationRejected(f"{p}: only existing files under the evolvable paths may change")
        others = [t for q, t in trees_new.items() if q != p]
        check_surface(p, trees_old[p], trees_new[p], others)
        check_embedded(p, trees_old[p], trees_new[p])  # before imports: its reasons say more
        check_imports(p, trees_old[p], trees_new[p], allowed, siblings)
        check_calls(p, trees_old[p], trees_new[p])
        why = contract_for(program).check_edit(p, trees_old[p], trees_new[p])
        if why:
            raise MutationRejected(why)
