"""Every third-party import of the package, its benchmarks, its seed and its tests is declared.

A module imported anywhere but provided by no distribution that ``pyproject.toml``
names (dependencies or the ``dev`` extra) works only on a machine where someone
installed it by hand, and crashes a clean install (``benchmarks/`` once imported
scipy undeclared and died after its last seed).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("darwin_bot", "benchmarks", "seed", "tests", "data")
# Names that are ours: the package, the test and benchmark folders, and the modules a
# sandboxed program imports from its own folder (seed/model.py, a hostile program's helpers).
LOCAL_ROOTS = {"darwin_bot", "tests", "benchmarks", "conftest"}


def _requirement_name(spec: str) -> str:
    return re.split(r"[\s\[<>=!~;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    return {_requirement_name(s) for s in specs}


def _local_modules() -> set[str]:
    """Every .py file's stem under the scanned folders: a program's sibling import is local."""
    return {p.stem for top in SCANNED for p in (ROOT / top).rglob("*.py")} | LOCAL_ROOTS


def _imports(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except SyntaxError:  # a deliberately broken program in the test data
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_every_third_party_import_is_declared_in_pyproject() -> None:
    declared = _declared()
    local = _local_modules()
    providers = packages_distributions()
    missing: dict[str, list[str]] = {}
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "tests/data" in path.as_posix():
                continue  # LLM replies as text, not code the project runs
            for name in _imports(path) - local - set(sys.stdlib_module_names):
                dists = {d.lower().replace("_", "-") for d in providers.get(name, [])}
                if not dists & declared:
                    missing.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not missing, (
        "imported but not declared in pyproject.toml (dependencies or the dev extra): "
        + "; ".join(f"{name} in {', '.join(paths[:3])}" for name, paths in sorted(missing.items()))
    )
