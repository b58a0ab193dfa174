"""darwin-bot: a git-native bot that evolves a training program (the DARWIN method).

The public API: the configuration, the shared result types, the error tree,
and ``build_engine`` (the evolution over a repository, as ``darwin run`` uses
it). Everything else is reached through its module. ``build_engine`` is imported
on first use, so a command that needs no engine (``darwin evaluate``) does not
pay for it at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from darwin_bot.cli import build_engine
    from darwin_bot.config import Config, load
    from darwin_bot.core import Agent, Budget, EvalResult, HumanRequest, Metrics, Mutation
    from darwin_bot.errors import DarwinError


__version__ = "1.0.0"


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


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name], __name__), name)
    globals()[name] = value  # the next lookup does not come here
    return value
