"""One generation as steps over ports; the Engine builds them, sequences them, resumes a run.

The steps, each built from the ports it needs and none holding the Engine:
``proposing.Propose`` (plan, mutate, publish), ``evaluating.Evaluations``
(score trees, cached), ``selecting.Select`` with ``confirming.Confirm`` (rank,
gate, confirm, cull and record, as a journal), ``reseed.Reseed`` (the
baseline, and a new one when the seed moves) and ``ci.CiJobs`` (the same steps
as CI jobs). ``loop.Engine`` sequences them; ``offspring.Breeder`` makes one
offspring; ``agents.Agents`` finds an agent's commit; ``verify`` checks state before work;
``rows`` builds leaderboard rows from runs; ``ports`` holds the protocols the
engine depends on. The records, the run state and the history of generations
(``store.history.History``) are ``darwin_bot.store``'s;
the pure decisions live in ``darwin_bot.core.generation``.
"""

from darwin_bot.engine.loop import Engine
from darwin_bot.engine.ports import (
    SEED_AGENT,
    DeferredEvaluator,
    Evaluator,
    Memory,
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
    "Publisher",
    "Repository",
    "derive_seed",
]
