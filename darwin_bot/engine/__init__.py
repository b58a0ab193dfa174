"""The evolution loop wired to real parts: git, the mutation pipeline, the evaluator, memory.

``loop.Engine`` runs the generations; ``offspring.Breeder`` makes one
offspring; ``rows`` builds and ranks leaderboard rows; ``ports`` holds what the
engine talks to (Evaluator, Publisher) and the CI evaluator that never runs
agent code. The pure decisions live in ``darwin_bot.core``.
"""

from darwin_bot.engine.loop import Engine
from darwin_bot.engine.ports import (
    SEED_AGENT,
    DeferredEvaluator,
    Evaluator,
    Progress,
    Publisher,
    derive_seed,
)

__all__ = [
    "SEED_AGENT",
    "DeferredEvaluator",
    "Engine",
    "Evaluator",
    "Progress",
    "Publisher",
    "derive_seed",
]
