"""The repository: branches, worktrees, commit trailers, git's own locks and the run lock."""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from darwin_bot.git.repo import GitRepo
    from darwin_bot.git.runlock import hold_run_lock
    from darwin_bot.git.trailers import format_message


# The package's surface: code outside the package imports these names from here, never
# from a module of the package (tests/test_house.py holds the rule and the listing in
# tests/surface.txt). Each name is imported from its module on first use (PEP 562), so
# importing one module of the package (a sandbox worker) does not import the rest.
__all__ = [
    "GitRepo",
    "format_message",
    "hold_run_lock",
]
_HOMES = {
    "GitRepo": ".repo",
    "format_message": ".trailers",
    "hold_run_lock": ".runlock",
}


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name], __name__), name)
    globals()[name] = value  # the next lookup does not come here
    return value
