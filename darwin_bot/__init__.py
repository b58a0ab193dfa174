"""darwin-bot: a git-native bot that evolves a training program (the DARWIN method)."""

from darwin_bot.config import Config
from darwin_bot.core.results import Budget, EvalResult, Metrics
from darwin_bot.errors import DarwinError

__all__ = ["Budget", "Config", "DarwinError", "EvalResult", "Metrics"]
__version__ = "0.1.0"
