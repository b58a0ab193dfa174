"""darwin-bot: a git-native bot that evolves a training program (the DARWIN method).

The public API: the configuration, the shared result types, the error tree,
and ``build_engine`` (the evolution over a repository, as ``darwin run`` uses
it). Everything else is reached through its module. ``build_engine`` is imported
on first use, so a command that needs no engine (``darwin evaluate``) does not
pay for it at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from darwin_bot.config import Config, load
from darwin_bot.core.agent import Agent, HumanRequest, Mutation
from darwin_bot.core.results import Budget, EvalResult, Metrics
from darwin_bot.errors import DarwinError

if TYPE_CHECKING:
    from darwin_bot.cli.app import build_engine

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
__version__ = "1.0.0"


def __getattr__(name: str) -> Any:
    if name == "build_engine":
        from darwin_bot.cli.app import build_engine

        return build_engine
    raise AttributeError(f"module 'darwin_bot' has no attribute {name!r}")
