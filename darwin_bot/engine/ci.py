"""The CI side of a generation: the evaluation matrix, the leader's repeat jobs, and ingest.

In CI the jobs that hold secrets never run agent code: they list the
evaluations the sandboxed ``evaluate`` jobs must make (one JSON object per
job: ``agent``, ``branch``, ``head``, ``seed``, the workflow's matrix format;
a confirmation run also has ``"budget": "confirm"``) and store the results
those jobs upload in the evaluation cache of the budget they were measured at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from darwin_bot.core.results import EvalResult
from darwin_bot.engine.ports import SEED_AGENT
from darwin_bot.engine.selecting import Select
from darwin_bot.errors import StateError


class CiJobs:
    """The CI side of the select and evaluate steps: jobs to run elsewhere, results to ingest."""

    def __init__(self, select: Select) -> None:
        self.select, self.confirm, self.evals = select, select.confirm, select.evals
        self.cfg, self.repo, self.agents, self.run_state = (
            select.cfg,
            select.repo,
            select.agents,
            select.run_state,
        )

    def jobs(self, agent: str, head: str, seeds: range) -> list[dict[str, Any]]:
        """The matrix entries of ``agent`` at ``head`` for the ``seeds`` that have no result yet."""
        tree = self.repo.tree_id(head, self.evals.evolvable)
        return [
            {"agent": agent, "branch": self.repo.branch(agent), "head": head, "seed": s}
            for s in seeds
            if self.evals.cache.get(tree, s) is None
        ]

    def matrix(self, g: int) -> list[dict[str, Any]]:
        """Evaluation jobs for generation ``g`` that have no cached result yet.

        Generation 0: the seed, ``repeats`` seeds. Later: each proposed
        offspring once (the leader's repeats come from :func:`confirm_jobs`),
        and whatever of the baseline and the previous survivors has no run under
        the current cache key: nothing, until the corpus (``budget.data``) or the
        evaluator changes; then they are measured again, as ``darwin run`` does.
        """
        repeats = self.evals.seeds(self.cfg.budget.repeats)
        out = self.jobs(SEED_AGENT, self.agents.seed_head(), repeats)
        if g == 0:
            return out
        for agent in self.select.previous(g).survivors:
            if agent != SEED_AGENT:
                out += self.jobs(agent, self.agents.head(agent), self.evals.seeds(1))
        for rec in self.run_state.offspring(g).values():
            if rec.ok and rec.head:
                out += self.jobs(rec.agent, rec.head, self.evals.seeds(1))
        return out

    def confirm_jobs(self, g: int) -> list[dict[str, Any]]:
        """The repeat runs the provisional leader still needs for the statistical gate.

        With a confirmation budget, also its and the seed's runs at that budget
        (``confirming.jobs``), in the same round of jobs, and those of the agent
        the gate tests instead if the repeats drop the leader behind a single run
        (``selecting.leader_and_fallback``: an agent that already has its repeats), so
        that select decides as ``darwin run`` does without another round.
        """
        if g == 0:
            return []
        if self.confirm.enabled():
            lead, backup = self.select.leader_and_fallback(g)
        else:
            lead, backup = self.select.provisional_leader(g), None
        if lead is None:
            return []
        out = self.jobs(lead, self.agents.head(lead), self.evals.seeds(self.cfg.budget.repeats))
        out += self.confirm.jobs(lead)
        if backup is not None:  # the seed's confirmation legs are already in out
            out += [j for j in self.confirm.jobs(backup) if j not in out]
        return out

    def ingest(self, results: list[Mapping[str, Any]]) -> None:
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
            expected = getattr(self.evals.evaluator, "windows", None)
            scored = result.extra.get("windows")  # absent: it failed before it was scored
            if expected is not None and (result.ok or scored) and scored != f"secret {expected}":
                raise StateError(
                    f"the result of {head[:12]} seed {result.seed} was scored on windows "
                    f"{scored!r}, this generation's are 'secret {expected}': give every job the "
                    "same DARWIN_WINDOW_SECRET and the matrix's generation (docs/github.md)"
                )
            cache = self.confirm.cache_for(result)
            cache.put(self.repo.tree_id(head, self.evals.evolvable), result.seed, result)
