"""The house rules of darwin_bot/, read from the source with ``ast``.

* no module over :data:`MAX_MODULE_LINES` lines;
* no function over :data:`MAX_FUNCTION_LINES` lines (its ``def`` line to its
  last line, docstring included), but for the CLI tables in :data:`EXEMPT`;
* no import cycle between the packages of darwin_bot: ``darwin_bot.X`` where X
  is a subpackage or a top-level module. Every import counts, the ones inside
  functions and under ``TYPE_CHECKING`` too: a lazy import hides a cycle, it
  does not remove it;
* no import cycle between the modules inside a package either;
* each package (a directory under darwin_bot/) is reached through its surface:
  code outside it imports ``from darwin_bot.P import name`` with ``name`` in
  ``P.__all__``, never a module of P (but for :data:`SUBMODULE_IMPORTS`); every
  name in an ``__all__`` resolves, and the surfaces are the ones listed in
  ``tests/surface.txt``, so a change of a package's surface shows as a diff there;
* no function takes the Engine: the steps of a generation are built from the
  ports they need, and the Engine only sequences them;
* no dead code: ``vulture`` finds nothing unused but the names in :data:`ALIVE`,
  each with the reason it is kept.

Run by hand: ``python3 -m pytest -q tests/test_house.py``; the cycle check alone
prints the package graph's strongly connected components (see the failure
message).
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_tool

PACKAGE = Path(__file__).resolve().parents[1] / "darwin_bot"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
# (module, function) -> why it may be longer. Empty: no CLI command is a pure
# table today (each click command's options are decorators, not its body).
EXEMPT: dict[tuple[str, str], str] = {}
# What vulture reports as unused and is not: (module, name) -> who uses it.
ALIVE: dict[tuple[str, str], str] = {
    ("darwin_bot.cli", "list_commands"): "click calls it on the lazy command group",
    ("darwin_bot.cli", "format_commands"): "click calls it for --help",
    ("darwin_bot.cli.live", "signum"): "the signal handler's signature",
    ("darwin_bot.cli.live", "frame"): "the signal handler's signature",
    ("darwin_bot.evaluate.sandbox.proc", "stopping"): "the sandbox's stop flag, read by tests",
    ("darwin_bot.evaluate.curve", "budget_fraction"): "a curve point's field, read from the JSON "
    "by core.time_to_loss and the PR's plot",
    ("darwin_bot.program.base", "worker_args"): "the contract protocol's scoring-worker hook",
    ("darwin_bot.program.darwin", "worker_args"): "the darwin contract's scoring-worker hook",
    ("darwin_bot.program.nanogpt", "worker_args"): "the nanogpt contract's scoring-worker hook",
}
# Registered by a decorator, so never called by name: click commands, offline edits.
DECORATED = re.compile(r"_command$|^(approve|decline)$")
DECORATED_MODULES = ("darwin_bot.llm.offline.blocks", "darwin_bot.llm.offline.training")
# The PEP 562 hook of a package's lazy surface: Python calls it, nothing names it.
HOOKS = ("__getattr__",)
SURFACE_LISTING = Path(__file__).resolve().parent / "surface.txt"
# (importer, module of another package) -> why it may import that module. A module that
# defines a name spelled like itself (core.fitness.fitness) is also allowed: its package
# cannot hold both, since importing the module sets the package attribute to the module.
SUBMODULE_IMPORTS: dict[tuple[str, str], str] = {}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    """``darwin_bot.core.fitness`` for core/fitness.py; a package is its __init__."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _unit(module: str) -> str | None:
    """The package-level unit of a module: ``darwin_bot.X``, or None outside darwin_bot/."""
    parts = module.split(".")
    if parts[0] != "darwin_bot" or len(parts) < 2:
        return None
    top = parts[1]
    if (PACKAGE / top).is_dir() or (PACKAGE / f"{top}.py").is_file():
        return f"darwin_bot.{top}"
    return None  # a name imported from the package's __init__ (from darwin_bot import X)


def _imported(path: Path, tree: ast.AST) -> Iterator[str]:
    """Every darwin_bot module (or name under one) that ``path`` imports, anywhere in it."""
    here = _name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """``darwin_bot.X`` -> the ``darwin_bot.Y`` it imports (X != Y)."""
    graph: dict[str, set[str]] = {}
    for path in _modules():
        source = _unit(_name(path))
        if source is None:  # darwin_bot/__init__.py and __main__.py: the public face
            continue
        graph.setdefault(source, set())
        for module in _imported(path, ast.parse(path.read_text(encoding="utf-8"))):
            target = _unit(module)
            if target is not None and target != source:
                graph[source].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _path_in(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One closed path through ``component``, for the failure message: a -> b -> ... -> a."""
    start, members = component[0], set(component)
    path, seen = [start], {start}
    while True:
        nxt = min(n for n in graph[path[-1]] if n in members)
        if nxt in seen:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)
        seen.add(nxt)


def test_no_module_is_over_the_limit() -> None:
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}; split them by job"


def test_no_function_is_over_the_limit() -> None:
    long = {}
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in _functions(tree):
            lines = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            if lines > MAX_FUNCTION_LINES and (_name(path), fn.name) not in EXEMPT:
                long[f"{path.relative_to(PACKAGE.parent)}:{fn.lineno} {fn.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_exemptions_name_real_functions() -> None:
    """An exemption outlives its function only by mistake."""
    present = {
        (_name(p), fn.name)
        for p in _modules()
        for fn in _functions(ast.parse(p.read_text(encoding="utf-8")))
    }
    assert set(EXEMPT) <= present, set(EXEMPT) - present


def test_no_import_cycle_between_packages() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles between packages of darwin_bot: " + "; ".join(
        " -> ".join(_path_in(graph, c)) for c in found
    )


def test_the_cycle_check_sees_a_cycle() -> None:
    """The checker itself: a lazy import back up is a cycle; a chain is not."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert _path_in(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    from darwin_bot.llm import x\n", {"darwin_bot.llm"}),
        ("from . import prompts\n", {"darwin_bot.mutation"}),
        ("from ..engine import loop\n", {"darwin_bot.engine"}),
        ("import darwin_bot.config as c\n", {"darwin_bot.config"}),
    ],
)
def test_the_graph_reads_every_kind_of_import(source: str, expected: set[str]) -> None:
    path = PACKAGE / "mutation" / "example.py"
    found = {u for m in _imported(path, ast.parse(source)) if (u := _unit(m))}
    assert found == expected


@functools.cache
def _module_of(name: str) -> str | None:
    """The darwin_bot module (file or package) ``name`` is, or is a name inside."""
    parts = name.split(".")
    while parts:
        rel = PACKAGE.parent.joinpath(*parts)
        if rel.with_suffix(".py").is_file() or (rel / "__init__.py").is_file():
            return ".".join(parts)
        parts = parts[:-1]
    return None


def _module_targets(path: Path, tree: ast.AST) -> Iterator[str]:
    """The modules ``path`` imports; ``from pkg import mod`` is ``pkg.mod``, not ``pkg``."""
    here = _name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names = [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            found = _module_of(name)
            if found is not None and found.startswith("darwin_bot."):
                yield found


def module_graph() -> dict[str, set[str]]:
    """Every darwin_bot module -> the darwin_bot modules it imports."""
    graph: dict[str, set[str]] = {}
    for path in _modules():
        source = _name(path)
        targets = _module_targets(path, ast.parse(path.read_text(encoding="utf-8")))
        graph[source] = {t for t in targets if t != source}
    return graph


def test_no_import_cycle_between_modules() -> None:
    """Inside a package too: a circle of modules is one module split by line count."""
    graph = module_graph()
    found = cycles(graph)
    assert not found, "import cycles between modules of darwin_bot: " + "; ".join(
        " -> ".join(_path_in(graph, c)) for c in found
    )


def test_the_module_graph_reads_submodule_imports() -> None:
    path = PACKAGE / "engine" / "example.py"
    tree = ast.parse("from darwin_bot.engine import ports\nfrom . import rows\n")
    assert set(_module_targets(path, tree)) == {
        "darwin_bot.engine.ports",
        "darwin_bot.engine.rows",
    }


def _takes_engine(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
    for arg in args:
        note = ast.unparse(arg.annotation) if arg.annotation is not None else ""
        if arg.arg == "engine" or note.strip("'\"").split(".")[-1] == "Engine":
            return True
    return False


def test_no_function_takes_the_engine() -> None:
    takers = [
        f"{path.relative_to(PACKAGE.parent)}:{fn.lineno} {fn.name}"
        for path in _modules()
        for fn in _functions(ast.parse(path.read_text(encoding="utf-8")))
        if _takes_engine(fn)
    ]
    assert not takers, f"functions that take the Engine (give them the ports they need): {takers}"


def test_the_engine_check_sees_an_engine_parameter() -> None:
    tree = ast.parse("def a(engine): ...\ndef b(e: 'Engine'): ...\ndef c(repo: Repo): ...\n")
    assert [_takes_engine(fn) for fn in _functions(tree)] == [True, True, False]


def _unused() -> set[tuple[str, str]]:
    """vulture's findings over the package, its tests and benchmarks: (module, name)."""
    root = PACKAGE.parent
    args = [sys.executable, "-m", "vulture", "darwin_bot", "tests", "benchmarks"]
    out = subprocess.run(
        [*args, "--min-confidence", "60"], cwd=root, capture_output=True, text=True, check=False
    ).stdout
    found = set()
    for line in out.splitlines():
        m = re.match(r"(darwin_bot/\S+\.py):\d+: unused \w+ '([^']+)'", line)
        if m is None:
            continue
        module, name = _name(root / m.group(1)), m.group(2)
        if DECORATED.search(name) or module in DECORATED_MODULES:
            continue
        if name in HOOKS and m.group(1).endswith("__init__.py"):
            continue
        found.add((module, name))
    return found


def test_no_dead_code() -> None:
    require_tool(importlib.util.find_spec("vulture") is not None, "vulture is not installed")
    unused = _unused()
    dead = sorted(unused - set(ALIVE))
    assert not dead, f"unused (delete it, or name it in ALIVE with its user): {dead}"
    stale = sorted(set(ALIVE) - unused)
    assert not stale, f"ALIVE names what vulture no longer reports: {stale}"


def _packages() -> list[str]:
    """``darwin_bot.P`` for each directory P under darwin_bot/ (nested ones are P's own)."""
    return sorted(f"darwin_bot.{p.parent.name}" for p in PACKAGE.glob("*/__init__.py"))


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2 or not (PACKAGE / parts[1] / "__init__.py").is_file():
        return None
    return ".".join(parts[:2])


def _declared(package: str) -> list[str]:
    """The names in the package's ``__all__``, read from its __init__ without importing it."""
    init = PACKAGE / package.split(".")[1] / "__init__.py"
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == "__all__" and node.value is not None:
            return [ast.literal_eval(e) for e in node.value.elts]
    return []


@functools.cache
def _self_named(module: str) -> bool:
    """The module defines a top-level name spelled like itself (``core.fitness.fitness``)."""
    path = PACKAGE.parent.joinpath(*module.split(".")).with_suffix(".py")
    if not path.is_file():
        return False
    own = module.split(".")[-1]
    return any(
        getattr(node, "name", None) == own for node in ast.parse(path.read_text("utf-8")).body
    )


def surface_breaches(sources: dict[Path, ast.AST]) -> list[str]:
    """Imports in ``sources`` (path -> tree) that reach past another package's surface."""
    surfaces = {p: set(_declared(p)) for p in _packages()}
    found = []
    for path, tree in sources.items():
        here = _name(path) if path.is_relative_to(PACKAGE) else f"benchmarks.{path.stem}"
        mine = _package_of(here)
        for target in set(_module_targets(path, tree)):
            theirs = _package_of(target)
            if theirs in (None, mine) or target == theirs:
                continue
            if (here, target) not in SUBMODULE_IMPORTS and not _self_named(target):
                found.append(f"{here} imports the module {target}")
        for name in _imported(path, tree):
            theirs = _package_of(name)
            package, _, attr = name.rpartition(".")
            if theirs is None or theirs == mine or package != theirs:
                continue
            if attr not in surfaces[theirs] and _module_of(name) != name:  # a module: see above
                found.append(f"{here} imports {attr} from {theirs}, which does not list it")
    return sorted(found)


def test_packages_are_reached_through_their_surface() -> None:
    """``from darwin_bot.P import name``, never ``darwin_bot.P.module``, across packages."""
    paths = [*_modules(), *sorted((PACKAGE.parent / "benchmarks").glob("*.py"))]
    breaches = surface_breaches({p: ast.parse(p.read_text(encoding="utf-8")) for p in paths})
    assert not breaches, (
        "imports past a package's surface (import the name from the package, and list it in "
        "the package's __all__ and tests/surface.txt): " + "; ".join(breaches)
    )


def test_the_surface_check_sees_a_breach() -> None:
    """The checker itself: a module of another package is a breach; a listed name is not."""
    bench = PACKAGE.parent / "benchmarks" / "example.py"

    def breaches(source: str) -> list[str]:
        return surface_breaches({bench: ast.parse(source)})

    assert breaches("from darwin_bot.evaluate.harness import EvalOptions\n") == [
        "benchmarks.example imports the module darwin_bot.evaluate.harness"
    ]
    assert breaches("import darwin_bot.evaluate.harness as h\n") == [
        "benchmarks.example imports the module darwin_bot.evaluate.harness"
    ]
    assert breaches("from darwin_bot.evaluate import no_such_name\n") == [
        "benchmarks.example imports no_such_name from darwin_bot.evaluate, which does not list it"
    ]
    listed = _declared("darwin_bot.evaluate")[0]
    assert breaches(f"from darwin_bot.evaluate import {listed}\n") == []


def _load(module: str):
    return importlib.import_module(f"darwin_bot.{module}")


@pytest.mark.parametrize("package", _packages())
def test_every_public_name_resolves(package: str) -> None:
    """Each name in ``__all__`` is there, and is not a module shadowing a lazy name."""
    module = importlib.import_module(package)
    declared = _declared(package)
    assert declared == sorted(set(declared)), f"{package}.__all__: keep it sorted, once each"
    missing = [n for n in declared if not hasattr(module, n)]
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"
    modules = [n for n in declared if inspect.ismodule(getattr(module, n))]
    assert not modules, f"{package}.__all__ names modules (export their names): {modules}"
    homes = getattr(module, "_HOMES", {})
    assert set(homes) <= set(declared), f"{package}: lazy names not in __all__"


def _listing() -> set[str]:
    return {f"{p} {n}" for p in _packages() for n in _declared(p)}


def test_each_package_surface_is_the_listed_one() -> None:
    """tests/surface.txt holds every package's __all__: a change of a surface is a diff there."""
    held = {
        line.strip()
        for line in SURFACE_LISTING.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    now = _listing()
    assert now == held, (
        f"the surfaces changed; update {SURFACE_LISTING.name} if that is meant: "
        f"new {sorted(now - held)}, gone {sorted(held - now)}"
    )


def test_importing_a_module_does_not_import_its_whole_package() -> None:
    """A sandbox worker starts as ``python -m darwin_bot.evaluate.<worker>``: the evaluate
    package's surface is lazy, so the worker imports only what it uses (and the CLI no torch)."""
    code = (
        "import sys, darwin_bot.evaluate.graph_worker, darwin_bot.cli; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('darwin_bot', 'torch')))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "darwin_bot.evaluate.harness" not in out, out
    assert "torch" not in out, out
