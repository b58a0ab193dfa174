"""The repository: branches, worktrees, commit trailers, git's own locks and the run lock."""

from typing import TYPE_CHECKING

from darwin_bot import lazy_surface

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


__getattr__ = lazy_surface(__name__, _HOMES, globals())
