"""The CI side of a generation: the evaluation matrix, the leader's repeat jobs, and ingest.

In CI the jobs that hold secrets never run agent code: they list the
evaluations the sandboxed ``evaluate`` jobs must make (one JSON object per
job: ``agent``, ``branch``, ``head``, ``seed``, the workflow's matrix format;
a confirmation run also has ``"budget": "confirm"``, a run at a search
schedule's rung ``r`` above 0 ``"budget": "rung-r"``) and store the results
those jobs upload in the evaluation cache of the budget they were measured at.

Under ``search.schedule = "halving"`` the workflow chains :data:`CI_LEGS` legs
after rung 0 (its repairs included): each leg's plan (:meth:`CiJobs.rung_jobs`)
reads every result ingested so far and emits what the schedule needs next, the
first rung whose runs are missing (entrants chosen by ``rungs.plan``, as
``darwin run`` chooses them), and once every rung is in, the leader's repeats
at its rung and its confirmation runs. A flat schedule needs no leg: its
leader's repeats go with the repairs' re-evaluations, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from darwin_bot.core import EvalResult, ScheduleKind
from darwin_bot.engine import rungs
from darwin_bot.engine.ports import SEED_AGENT
from darwin_bot.engine.selecting import Select
from darwin_bot.errors import ConfigError, StateError

CI_LEGS = 3  # the legs darwin.yml chains after rung 0: rungs 1 and 2, then the leader's
RUNG_BUDGET = "rung-"  # a matrix entry's budget at rung r above 0: "rung-r"


def rung_budget(rung: int) -> str:
    """The matrix's ``budget`` of a run at ``rung`` (above 0)."""
    return f"{RUNG_BUDGET}{rung}"


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

    def jobs(self, agent: str, head: str, seeds: range, rung: int = 0) -> list[dict[str, Any]]:
        """The matrix entries of ``agent`` at ``head`` for the ``seeds`` that have no result yet
        (at the search schedule's ``rung``)."""
        tree = self.repo.tree_id(head, self.evals.evolvable)
        cache = (
            self.evals.cache_at(False, rungs.budget_at(self.evals, rung))
            if rung
            else self.evals.cache
        )
        extra = {"budget": rung_budget(rung)} if rung else {}
        return [
            {"agent": agent, "branch": self.repo.branch(agent), "head": head, "seed": s, **extra}
            for s in seeds
            if cache.get(tree, s) is None
        ]

    def legs(self) -> int:
        """The legs the schedule needs after rung 0: none for a flat one; for halving one per
        rung above 0 and one for the leader's repeats (ConfigError past :data:`CI_LEGS`)."""
        sched = rungs.schedule_of(self.cfg)
        if sched.kind is ScheduleKind.FLAT:
            return 0
        if sched.top + 1 > CI_LEGS:
            raise ConfigError(
                f"search.rungs has {sched.top + 1} rungs; the workflow runs at most "
                f"{CI_LEGS} (e.g. [1, 2, 5]): shorten search.rungs, or run 'darwin run'"
            )
        return sched.top + 1

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
        that select decides as ``darwin run`` does without another round. Under a
        halving schedule the leader is known only once its rungs ran: none here
        (:meth:`rung_jobs` emits them).
        """
        if g == 0 or self.legs():
            return []
        return self._leader_jobs(g, 0)

    def _leader_jobs(self, g: int, rung: int) -> list[dict[str, Any]]:
        if self.confirm.enabled():
            lead, backup = self.select.leader_and_fallback(g)
        else:
            lead, backup = self.select.provisional_leader(g), None
        if lead is None:
            return []
        repeats = self.evals.seeds(self.cfg.budget.repeats)
        out = self.jobs(lead, self.agents.head(lead), repeats, rung)
        out += self.confirm.jobs(lead)
        if backup is not None:  # the seed's confirmation legs are already in out
            out += [j for j in self.confirm.jobs(backup) if j not in out]
        return out

    def rung_gaps(self, g: int) -> list[dict[str, Any]]:
        """The runs of the first rung above 0 that the results so far leave missing (none:
        every rung the schedule reached is in, or a flat schedule)."""
        if g == 0 or not self.legs():
            return []
        agents = rungs.contenders(self.select.alive(g))
        base = self.evals.baseline_metrics()
        for rung in range(1, rungs.schedule_of(self.cfg).top + 1):
            step = rungs.plan(self.evals, rung, agents, base)
            if step is None:
                return []
            out: list[dict[str, Any]] = []
            for agent, seed in step.runs():
                head = rungs.head_of(self.evals, agent)
                out += self.jobs(agent, head, range(seed, seed + 1), rung)
            if out:
                return out
        return []

    def rung_jobs(self, g: int) -> list[dict[str, Any]]:
        """One leg of a halving schedule: the missing runs of its first incomplete rung, else
        the leader's repeats at its rung and its confirmation runs (empty: nothing left)."""
        gaps = self.rung_gaps(g)
        if gaps or g == 0 or not self.legs():
            return gaps
        return self._leader_jobs(g, self.select.leader_rung(g))

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
