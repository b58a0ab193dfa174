"""One generation's decisions as pure functions: who breeds (:func:`plan`), who stays (:func:`select`).

Nothing here touches git, files or the forge: the engine gathers typed
:class:`Row` values (one per agent, built from the evaluation cache) and the
run samples the gate needs, calls these, and carries out what they return.

The rules of selection, all of them:

1. Rank: fitness descending; every row whose status is not ``ok`` (or whose
   fitness is not finite) ranks after every working one; ties by agent id.
2. The leader is the best working row. The gate is run for it only when it
   is not the seed: a one-sided test of its perplexity runs against the
   baseline's (``core.fitness.champion_test``); its p-value goes into its row.
   A leader with fewer than ``repeats`` runs cannot pass, so the gate goes
   instead to the best row that has them, if that row ranks ahead of the seed
   and is not already the champion. (Confirming a leader with repeats can put it
   behind another agent's single lucky run; without this, that run would block
   the confirmed improvement, and ``darwin run`` and CI, which confirm one
   leader per generation, would both promote nobody.)
3. The new champion is the gated row if the gate passed, else nobody. With a
   confirmation budget (``budget.confirm_*``, :class:`Confirmation`), the gate
   must also pass there (``core.confirm.promotion``): a leader better at the
   search budget but not at the confirmation budget is not promoted.
4. Keep the top ``survivors`` working rows (never a failed one). Without a
   new champion, a previous champion that fell out of the top stays until
   something beats it. If nothing works, the previous survivors stay.
5. Cull every ranked agent that is not kept and still has a branch.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from darwin_bot.core import confirm as cf
from darwin_bot.core import fitness as fit
from darwin_bot.core import selection as sel
from darwin_bot.core.agent import SEED_AGENT
from darwin_bot.core.row import Row


@dataclass(frozen=True)
class Gate:
    """The statistical gate's verdict on one leader (``gate`` of the generation summary)."""

    agent: str
    result: fit.GateResult

    @property
    def passed(self) -> bool:
        return self.result.passed

    def to_json(self) -> dict[str, Any]:
        return {"agent": self.agent, **self.result.to_dict()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Gate:
        keys = fit.GateResult.__dataclass_fields__
        return cls(str(data.get("agent", "")), fit.GateResult(**{k: data[k] for k in keys}))


@dataclass(frozen=True)
class Rules:
    """The configuration the decisions depend on (from ``[evolution]`` and ``[budget]``)."""

    population: int
    survivors: int
    crossover_rate: float = 0.0
    method: sel.Method = "tournament"
    tournament_size: int = 3
    significance: float = 0.05
    repeats: int = 2  # runs a row needs before the gate can pass (budget.repeats, at least 2)


@dataclass(frozen=True)
class Previous:
    """What the generation before decided: its survivors and its current champion."""

    survivors: tuple[str, ...]
    champion: str | None = None


@dataclass(frozen=True)
class Confirmation:
    """Perplexities at the confirmation budget: the leader's (if run) and the baseline's.

    ``runs``: how many each side needs (``budget.confirm_repeats``); a failed
    run is ``inf`` (``core.confirm.confirm_samples``).
    """

    runs: int
    candidate: Mapping[str, Sequence[float]]
    baseline: Sequence[float]


@dataclass(frozen=True)
class Selection:
    """The whole outcome of one generation, decided before anything is carried out."""

    ranking: tuple[Row, ...]
    keep: tuple[str, ...]
    cull: tuple[str, ...]
    champion: str | None  # promoted this generation (passed the gate)
    leader: str | None
    gate: Gate | None
    promotion: cf.Promotion | None = None  # with a confirmation budget: the two-budget verdict


def rank(rows: Sequence[Row], tiers: Mapping[str, int] | None = None) -> list[Row]:
    """Rows best first (rule 1), each with its 1-based ``rank``.

    ``tiers``: the search schedule's rung each agent reached (``core.schedule``):
    a higher rung ranks first, and rule 1 orders the rows within a rung.
    """
    ordered = sel.rank(rows)
    if tiers:  # a stable sort keeps rule 1's order within each rung
        ordered.sort(key=lambda r: (not r.ok, -tiers.get(r.agent, 0)))
    return [replace(r, rank=i) for i, r in enumerate(ordered, 1)]


def leader(ranked: Sequence[Row]) -> Row | None:
    """The best working row of a ranking (rule 2), or None when nothing works."""
    return next((r for r in ranked if r.ok), None)


def _gated(
    ranked: Sequence[Row],
    lead: Row,
    samples: Mapping[str, Sequence[float]],
    previous: Previous,
    rules: Rules,
) -> Row:
    """The row the gate tests (rule 2): the leader, or the best row with full repeats."""
    need = max(2, rules.repeats)
    if len(samples.get(lead.agent, ())) >= need:
        return lead
    for r in ranked:
        if not r.ok or r.agent == SEED_AGENT:
            return lead  # nothing with repeats ranks ahead of the seed (or of the failures)
        if len(samples.get(r.agent, ())) >= need:
            return lead if r.agent == previous.champion else r
    return lead


def gate_fallback(
    ranked: Sequence[Row],
    lead: Row,
    samples: Mapping[str, Sequence[float]],
    previous: Previous,
    rules: Rules,
) -> Row | None:
    """The row rule 2 would gate if ``lead`` lacked its repeats (None: the lead itself).

    CI asks for a provisional leader's repeats and confirmation runs in one
    round, before it knows whether the repeats keep it in the lead; this is
    the other agent the gate may then test, so its confirmation runs can go
    in the same round.
    """
    others = {a: v for a, v in samples.items() if a != lead.agent}
    gated = _gated(ranked, lead, others, previous, rules)
    return None if gated is lead else gated


def plan(
    pool: Sequence[Row], children: Mapping[str, int], rules: Rules, rng: random.Random
) -> list[sel.OffspringPlan]:
    """The offspring that fill the population from the survivors' rows ``pool``.

    ``children``: how many children each agent already has (the memory's
    view), which the ``dgm`` method uses to favour less explored parents.
    """
    return sel.plan_offspring(
        pool,
        rules.population,
        rules.crossover_rate,
        rng,
        rules.method,
        rules.tournament_size,
        children=children,
    )


def _p_values(
    ranked: list[Row],
    samples: Mapping[str, Sequence[float]],
    baseline: Sequence[float],
    alpha: float,
) -> list[Row]:
    """Every working offspring with 2+ runs gets its p-value against the seed (Welch, one-sided),
    for the reports; only the gated agent's decides anything (``Gate``)."""
    return [
        replace(r, p_value=fit.champion_test(samples[r.agent], baseline, alpha).p_value)
        if r.p_value is None
        and r.agent != SEED_AGENT
        and len(samples.get(r.agent, ())) >= 2
        and len(baseline) >= 2
        else r
        for r in ranked
    ]


def select(
    rows: Sequence[Row],
    *,
    baseline: Sequence[float],
    samples: Mapping[str, Sequence[float]],
    previous: Previous,
    alive: frozenset[str],
    rules: Rules,
    confirm: Confirmation | None = None,
    tiers: Mapping[str, int] | None = None,
) -> Selection:
    """Decide keep, cull and champion for one generation (rules 1-5 of the module docstring).

    ``baseline``: the seed's perplexity per run; ``samples``: each agent's
    perplexity per working run; ``alive``: the agents that have a branch now;
    ``confirm``: the confirmation budget's samples (None: confirmation is off);
    ``tiers``: the schedule's rung of each agent (see :func:`rank`), where
    ``baseline`` and ``samples`` are the leader's rung's runs.
    """
    ranked = rank(rows, tiers)
    lead = leader(ranked)
    gate = None
    if lead is not None and lead.agent != SEED_AGENT:
        gated = _gated(ranked, lead, samples, previous, rules)
        result = fit.champion_test(samples.get(gated.agent, ()), baseline, rules.significance)
        if gated is not lead:
            result = replace(
                result,
                reason=f"{result.reason} (gated {gated.agent}, the best agent with repeats: "
                f"the leader {lead.agent} has {len(samples.get(lead.agent, ()))} run(s))",
            )
        gate = Gate(gated.agent, result)
        ranked = [replace(r, p_value=result.p_value) if r is gated else r for r in ranked]
    ranked = _p_values(ranked, samples, baseline, rules.significance)
    champion = gate.agent if gate is not None and gate.passed else None
    promotion = None
    if confirm is not None and gate is not None:
        promotion = cf.promotion(
            samples.get(gate.agent, ()),
            baseline,
            confirm.candidate.get(gate.agent),
            confirm.baseline,
            rules.significance,
            confirm_runs=confirm.runs,
        )
        champion = gate.agent if promotion.promote else None
    keep = [r.agent for r in sel.survivors(ranked, rules.survivors)]
    if champion is None and previous.champion and previous.champion not in keep:
        keep.append(previous.champion)
    keep = keep or list(previous.survivors)
    cull = [r.agent for r in ranked if r.agent not in keep and r.agent in alive]
    return Selection(
        ranking=tuple(ranked),
        keep=tuple(keep),
        cull=tuple(cull),
        champion=champion,
        leader=lead.agent if lead else None,
        gate=gate,
        promotion=promotion,
    )
