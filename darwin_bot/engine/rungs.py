"""The search schedule in the engine: train a generation's rungs, and say where each agent stands.

``core.schedule`` decides who trains at which rung and how agents compare;
this module reads the rung results from the evaluation cache (one cache key
per rung budget, so rungs never mix) and trains what a rung still needs: the
first seed of each entrant, and the seed program at every rung (its runs are
the rung's baseline: ``repeats`` of them at the top rung, where the gate
compares). With ``search.schedule = "flat"`` every agent stands at rung 0,
the search budget, and nothing here trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from darwin_bot.config import Config
from darwin_bot.core import (
    Budget,
    EvalResult,
    Metrics,
    Schedule,
    ScheduleKind,
    Scores,
    entrants,
    summarize,
    tiers,
)
from darwin_bot.engine import rows
from darwin_bot.engine.ports import SEED_AGENT

if TYPE_CHECKING:
    from darwin_bot.engine.evaluating import Evaluations


def schedule_of(cfg: Config) -> Schedule:
    se = cfg.search
    return Schedule(ScheduleKind(se.schedule), tuple(se.rungs), se.keep)


def budget_at(evals: Evaluations, rung: int) -> Budget:
    return schedule_of(evals.cfg).budget(evals.budget, rung)


def seed_runs(evals: Evaluations, rung: int) -> list[EvalResult]:
    """The seed's known runs at ``rung`` (rung 0: the baseline's, trained where missing)."""
    if rung == 0:
        return evals.baseline_runs()
    return evals.known_runs(evals.seed_head(), budget=budget_at(evals, rung))


def baseline_at(evals: Evaluations, rung: int, search_baseline: Metrics) -> Metrics | None:
    """The seed's mean at ``rung``: what fitness there is relative to (None: not measured yet)."""
    if rung == 0:
        return search_baseline
    return summarize(seed_runs(evals, rung)).mean_metrics()


def held_runs(evals: Evaluations, head: str, rung: int, base: Metrics | None) -> list[EvalResult]:
    """``head``'s known runs at ``rung``, past the cost limit against the seed's there."""
    cost = base.cost if base is not None else None
    return evals.held_runs(head, cost, budget=budget_at(evals, rung))


def results(evals: Evaluations, agents: list[str], search_baseline: Metrics) -> list[Scores]:
    """Per rung, the fitness of every agent with a run there (None: its run failed)."""
    out: list[Scores] = []
    for rung in range(schedule_of(evals.cfg).top + 1):
        base = baseline_at(evals, rung, search_baseline)
        scores: dict[str, float | None] = {}
        for agent in agents:
            runs = held_runs(evals, evals.agents.head(agent), rung, base)
            if runs and base is not None:
                row = rows.scored_row(agent, 0, (), runs, base, evals.cfg.fitness)
                scores[agent] = row.fitness if row.ok else None
        out.append(scores)
    return out


def contenders(alive: list[str]) -> list[str]:
    """The agents a schedule ranks: the seed is the rungs' baseline, not a contender."""
    return [a for a in alive if a != SEED_AGENT]


@dataclass(frozen=True)
class RungRuns:
    """What one rung above 0 trains: its entrants' first seed, and the seed program's runs."""

    rung: int
    entrants: list[str]
    entered_below: int  # how many entered the rung below
    seed_seeds: range  # the seed program's seeds here (the gate's repeats at the top rung)
    agent_seed: int

    def runs(self) -> list[tuple[str, int]]:
        """(agent, training seed) of every run of the rung, the seed program's first."""
        seeds = [(SEED_AGENT, s) for s in self.seed_seeds]
        return seeds + [(a, self.agent_seed) for a in self.entrants]


def plan(
    evals: Evaluations, rung: int, agents: list[str], search_baseline: Metrics
) -> RungRuns | None:
    """What ``rung`` trains on the results known now; None when nobody enters it (every
    entrant below failed, or a result below is still missing). The local engine
    (:func:`train`) and the CI legs (``ci.CiJobs.rung_jobs``) both plan with this, so the
    same results give the same entrants."""
    sched = schedule_of(evals.cfg)
    going = entrants(sched, results(evals, agents, search_baseline), agents)
    if len(going) <= rung or not going[rung]:
        return None
    repeats = evals.cfg.budget.repeats if rung == sched.top else 1
    return RungRuns(
        rung, going[rung], len(going[rung - 1]), evals.seeds(repeats), evals.cfg.evolution.seed
    )


def head_of(evals: Evaluations, agent: str) -> str:
    return evals.seed_head() if agent == SEED_AGENT else evals.agents.head(agent)


def train(evals: Evaluations, g: int, alive: list[str], search_baseline: Metrics) -> None:
    """Train the rungs above 0 (rung 0, the search budget, is the caller's first runs)."""
    sched = schedule_of(evals.cfg)
    agents = contenders(alive)
    for rung in range(1, sched.top + 1):
        step = plan(evals, rung, agents, search_baseline)
        if step is None:
            return
        evals.say(
            f"generation {g}: rung {rung} ({sched.factor(rung)}x the search budget): "
            f"{len(step.entrants)} of {step.entered_below} offspring go on"
        )
        jobs = [(head_of(evals, a), s) for a, s in step.runs()]
        evals.evaluate_all(jobs, what=f"generation {g} rung {rung}", budget=budget_at(evals, rung))


def standing(evals: Evaluations, alive: list[str], search_baseline: Metrics) -> dict[str, int]:
    """Each agent's rung (the highest it has a result at); the seed stands at the top one reached.

    Empty for a flat schedule: every agent stands at the search budget.
    """
    sched = schedule_of(evals.cfg)
    if sched.kind is ScheduleKind.FLAT:
        return {}
    agents = contenders(alive)
    tier = tiers(sched, results(evals, agents, search_baseline), agents)
    if SEED_AGENT in alive:
        tier[SEED_AGENT] = max(tier.values(), default=0)
    return tier
