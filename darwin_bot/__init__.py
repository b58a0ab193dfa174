"""darwin-bot: a git-native bot that evolves a training program (the DARWIN method).

The public API: the configuration, the shared result types, the error tree,
and ``build_engine`` (the evolution over a repository, as ``darwin run`` uses
it). Everything else is reached through its package's ``__all__`` (its surface,
docs/architecture.md). ``build_engine`` is imported
on first use, so a command that needs no engine (``darwin evaluate``) does not
pay for it at start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from darwin_bot.cli import build_engine
    from darwin_bot.config import Config, load
    from darwin_bot.core import Agent, Budget, EvalResult, HumanRequest, Metrics, Mutation
    from darwin_bot.errors import DarwinError


__version__ = "1.0.0"


def lazy_surface(
    package: str, homes: Mapping[str, str], namespace: dict[str, object]
) -> Callable[[str], object]:
    """A package's PEP 562 ``__getattr__``: each public name is imported from its module
    (``homes``: name -> relative module) on first use, then kept in ``namespace``.

    Lazy so that importing one module of a package (a sandbox worker, the CLI) does
    not import every module the package makes public.
    """

    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name], package), name)
        namespace[name] = value  # the next lookup does not come here
        return value

    return __getattr__


# darwin_bot's own public names, each imported from its package on first use (PEP 562),
# so importing one module (a sandbox worker) does not import the packages it does not use.
__all__ = [
    "Agent",
    "Budget",
    "Config",
    "DarwinError",
    "EvalResult",
    "HumanRequest",
    "Metrics",
    "Mutation",
    "build_engine",
    "load",
]
_HOMES = {
    "Agent": ".core",
    "Budget": ".core",
    "Config": ".config",
    "DarwinError": ".errors",
    "EvalResult": ".core",
    "HumanRequest": ".core",
    "Metrics": ".core",
    "Mutation": ".core",
    "build_engine": ".cli",
    "load": ".config",
}


__getattr__ = lazy_surface(__name__, _HOMES, globals())
