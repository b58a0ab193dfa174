"""darwin-bot: a git-native bot that evolves a training program (the DARWIN method).

The public API: the configuration, the shared result types, the error tree,
and ``build_engine`` (the evolution over a repository, as ``darwin run`` uses
it). Everything else is reached through its module.
"""

from darwin_bot.app import build_engine
from darwin_bot.config import Config, load
from darwin_bot.core.agent import Agent, HumanRequest, Mutation
from darwin_bot.core.results import Budget, EvalResult, Metrics
from darwin_bot.errors import DarwinError

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
__version__ = "0.1.0"
