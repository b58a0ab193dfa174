"""The evolution loop wired to ports: orchestration, run state, the CI side, one module each.

``loop.Engine`` orchestrates the generations; ``selecting`` decides and
carries out a selection as a journal; ``state`` holds the engine's files
under ``memory/`` and the evaluation cache; ``history`` reads what the
recorded generations say about agents; ``ci`` lists the CI evaluation jobs
and ingests their results; ``verify`` checks state before work; ``records``
are the typed records; ``rows`` builds leaderboard rows from runs;
``offspring.Breeder`` makes one offspring; ``ports`` holds the protocols the
engine depends on. The pure decisions live in ``darwin_bot.core.generation``.
"""

from darwin_bot.engine.loop import Engine
from darwin_bot.engine.ports import (
    SEED_AGENT,
    DeferredEvaluator,
    Evaluator,
    Memory,
    Progress,
    Publisher,
    Repository,
    derive_seed,
)
from darwin_bot.store.records import GenerationSummary, OffspringRecord, PlanItem

__all__ = [
    "SEED_AGENT",
    "DeferredEvaluator",
    "Engine",
    "Evaluator",
    "GenerationSummary",
    "Memory",
    "OffspringRecord",
    "PlanItem",
    "Progress",
    "Publisher",
    "Repository",
    "derive_seed",
]
