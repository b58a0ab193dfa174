"""Whether agent code in the sandbox can import a module: the trusted side looks, never runs it.

An approved dependency request makes a module an allowed import, but only the
humans can install it. Until they have, every edit that imports it fails its
smoke test, so the engine checks first (``split``) and says what to do.

The sandbox's Python is this interpreter, run isolated (``-I``), with its
installation and the user's site-packages mounted (``sandbox.argv.python_paths``).
So the search path that counts is this process's ``sys.path`` less what the
sandbox cannot see: the working directory, ``PYTHONPATH`` entries and
editable checkouts outside those folders. The module is found, not imported:
finding runs no code of the package.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from darwin_bot.evaluate.sandbox.argv import python_paths

# What the humans do about a missing one, on either machine that runs agent code.
INSTALL_HINT = (
    "install the package that provides it into that Python (pip install ...), "
    "or on GitHub name it in the repository variable DARWIN_PACKAGES"
)


def sandbox_path() -> list[str]:
    """This process's ``sys.path`` entries that lie inside the folders every sandbox sees."""
    roots = python_paths()
    kept: list[str] = []
    for entry in sys.path:
        if not entry:  # the working directory
            continue
        real = Path(os.path.realpath(entry))
        if any(real.is_relative_to(r) for r in roots):
            kept.append(entry)
    return kept


def importable(name: str, path: list[str] | None = None) -> bool:
    """Whether ``import name`` (a top-level module) would succeed in the sandbox."""
    top = name.split(".")[0]
    if top in sys.builtin_module_names:
        return True
    where = sandbox_path() if path is None else path
    return importlib.machinery.PathFinder.find_spec(top, where) is not None


def split_importable(names: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``names`` as (installed, missing), each in the given order."""
    path = sandbox_path()
    installed: list[str] = []
    missing: list[str] = []
    for name in names:
        (installed if importable(name, path) else missing).append(name)
    return tuple(installed), tuple(missing)


def missing_note(what: str) -> str:
    """The one sentence for missing approved imports; ``what`` names them as the caller quotes."""
    return (
        f"{what} is not installed where agent code runs ({sys.executable}): "
        f"{INSTALL_HINT}; until then no mutation may import it"
    )


def not_installed_note(name: str) -> str | None:
    """What to tell the humans who approved ``name`` when agent code cannot import it here."""
    return None if importable(name) else missing_note(f"`{name}`")
