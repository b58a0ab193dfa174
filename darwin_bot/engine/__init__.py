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

from typing import TYPE_CHECKING

from darwin_bot import lazy_surface

if TYPE_CHECKING:
    from darwin_bot.engine.loop import Engine
    from darwin_bot.engine.ports import (
        DeferredEvaluator,
        Evaluator,
        Events,
        Memory,
        Publisher,
        Repository,
        derive_seed,
    )


# The package's surface: code outside the package imports these names from here, never
# from a module of the package (tests/test_house.py holds the rule and the listing in
# tests/surface.txt). Each name is imported from its module on first use (PEP 562), so
# importing one module of the package (a sandbox worker) does not import the rest.
__all__ = [
    "DeferredEvaluator",
    "Engine",
    "Evaluator",
    "Events",
    "Memory",
    "Publisher",
    "Repository",
    "derive_seed",
]
_HOMES = {
    "DeferredEvaluator": ".ports",
    "Engine": ".loop",
    "Evaluator": ".ports",
    "Events": ".ports",
    "Memory": ".ports",
    "Publisher": ".ports",
    "Repository": ".ports",
    "derive_seed": ".ports",
}


__getattr__ = lazy_surface(__name__, _HOMES, globals())
