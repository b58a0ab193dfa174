"""The CI side of a generation: the evaluation matrix, the leader's repeat jobs, and ingest.

In CI the jobs that hold secrets never run agent code: they list the
evaluations the sandboxed ``evaluate`` jobs must make (one JSON object per
job: ``agent``, ``branch``, ``head``, ``seed``, the workflow's matrix format;
a confirmation run also has ``"budget": "confirm"``) and store the results
those jobs upload in the evaluation cache of the budget they were measured at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from darwin_bot.core.results import EvalResult
from darwin_bot.engine import confirming, selecting
from darwin_bot.engine.ports import SEED_AGENT
from darwin_bot.errors import StateError

if TYPE_CHECKING:
    from darwin_bot.engine.loop import Engine


def jobs(engine: Engine, agent: str, head: str, seeds: range) -> list[dict[str, Any]]:
    """The matrix entries of ``agent`` at ``head`` for the ``seeds`` that have no result yet."""
    tree = engine.repo.tree_id(head, engine.evolvable)
    return [
        {"agent": agent, "branch": engine.repo.branch(agent), "head": head, "seed": s}
        for s in seeds
        if engine.cache.get(tree, s) is None
    ]


def matrix(engine: Engine, g: int) -> list[dict[str, Any]]:
    """Evaluation jobs for generation ``g`` that have no cached result yet.

    Generation 0: the seed, ``repeats`` seeds. Later: each proposed
    offspring once (the leader's repeats come from :func:`confirm_jobs`),
    and whatever of the baseline and the previous survivors has no run under
    the current cache key: nothing, until the corpus (``budget.data``) or the
    evaluator changes; then they are measured again, as ``darwin run`` does.
    """
    repeats = engine.seeds(engine.cfg.budget.repeats)
    out = jobs(engine, SEED_AGENT, engine.seed_head(), repeats)
    if g == 0:
        return out
    for agent in selecting.previous(engine, g).survivors:
        if agent != SEED_AGENT:
            out += jobs(engine, agent, engine.head(agent), engine.seeds(1))
    for rec in engine.offspring_records(g).values():
        if rec.ok and rec.head:
            out += jobs(engine, rec.agent, rec.head, engine.seeds(1))
    return out


def confirm_jobs(engine: Engine, g: int) -> list[dict[str, Any]]:
    """The repeat runs the provisional leader still needs for the statistical gate.

    With a confirmation budget, also its and the seed's runs at that budget
    (``confirming.jobs``), in the same round of jobs, and those of the agent
    the gate tests instead if the repeats drop the leader behind a single run
    (``selecting.leader_and_fallback``: an agent that already has its repeats), so
    that select decides as ``darwin run`` does without another round.
    """
    if g == 0:
        return []
    if confirming.enabled(engine):
        lead, backup = selecting.leader_and_fallback(engine, g)
    else:
        lead, backup = selecting.provisional_leader(engine, g), None
    if lead is None:
        return []
    out = jobs(engine, lead, engine.head(lead), engine.seeds(engine.cfg.budget.repeats))
    out += confirming.jobs(engine, lead)
    if backup is not None:  # the seed's confirmation legs are already in out
        out += [j for j in confirming.jobs(engine, backup) if j not in out]
    return out


def ingest(engine: Engine, results: list[Mapping[str, Any]]) -> None:
    """Store CI evaluation results (``EvalResult`` JSON with ``extra.head``) in the cache.

    A result measured at the confirmation budget and preset goes to that cache.
    """
    for data in results:
        result = EvalResult.from_dict(dict(data))
        head = result.extra.get("head")
        if not head:
            raise StateError(
                "an evaluation result has no extra.head; was it made by 'darwin evaluate --branch'?"
            )
        expected = getattr(engine.evaluator, "windows", None)
        scored = result.extra.get("windows")  # absent: it failed before it was scored
        if expected is not None and (result.ok or scored) and scored != f"secret {expected}":
            raise StateError(
                f"the result of {head[:12]} seed {result.seed} was scored on windows "
                f"{scored!r}, this generation's are 'secret {expected}': give every job the "
                "same DARWIN_WINDOW_SECRET and the matrix's generation (docs/github.md)"
            )
        cache = confirming.cache_for(engine, result)
        cache.put(engine.repo.tree_id(head, engine.evolvable), result.seed, result)
