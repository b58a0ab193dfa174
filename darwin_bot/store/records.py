"""The engine's typed records, converted to and from JSON only here and at the memory boundary.

Each record kind has a JSON Schema under ``memory/schemas/`` (see
:mod:`darwin_bot.store.schema`); ``from_json`` is only ever called on data that
passed it, so it trusts the shape and converts (statuses become enums).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from darwin_bot.core import (
    Gate,
    HumanRequest,
    Metrics,
    MutationKind,
    Outcome,
    Promotion,
    Row,
    Status,
)


@dataclass(frozen=True)
class PlanItem:
    """One planned offspring (``offspring[i]`` of ``memory/gNNN/plan.json``)."""

    agent: str
    index: int
    kind: MutationKind  # mutate or crossover
    parents: tuple[str, ...]
    parent_heads: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "index": self.index,
            "kind": self.kind,
            "parents": list(self.parents),
            "parent_heads": list(self.parent_heads),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlanItem:
        return cls(
            data["agent"],
            int(data["index"]),
            data["kind"],
            tuple(data["parents"]),
            tuple(data["parent_heads"]),
        )


@dataclass(frozen=True)
class OffspringRecord:
    """What making one offspring produced (``memory/gNNN/offspring/<agent>.json``).

    ``status`` is ``ok`` (its last commit passed the smoke test; ``head`` is
    its branch) or ``rejected`` (no usable commit; ``head`` is None).
    """

    agent: str
    generation: int
    kind: MutationKind  # mutate or crossover
    parents: tuple[str, ...]
    status: Status
    reason: str
    head: str | None
    commits: tuple[str, ...] = ()
    summary: str = ""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    requests: tuple[HumanRequest, ...] = ()
    repaired_from: str | None = None
    granted_imports: tuple[str, ...] = ()  # allowed by approved dependency requests

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "generation": self.generation,
            "kind": self.kind,
            "parents": list(self.parents),
            "status": self.status.value,
            "reason": self.reason,
            "head": self.head,
            "commits": list(self.commits),
            "summary": self.summary,
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "requests": [
                {
                    "kind": r.kind,
                    "title": r.title,
                    "rationale": r.rationale,
                    "agent": r.agent,
                    "generation": r.generation,
                }
                for r in self.requests
            ],
            "repaired_from": self.repaired_from,
            "granted_imports": list(self.granted_imports),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OffspringRecord:
        return cls(
            agent=data["agent"],
            generation=int(data["generation"]),
            kind=data["kind"],
            parents=tuple(data["parents"]),
            status=Status(data["status"]),
            reason=data["reason"],
            head=data["head"],
            commits=tuple(data["commits"]),
            summary=data["summary"],
            model=data["model"],
            prompt_tokens=int(data["prompt_tokens"]),
            completion_tokens=int(data["completion_tokens"]),
            cost_usd=float(data["cost_usd"]),
            requests=tuple(HumanRequest(**r) for r in data["requests"]),
            repaired_from=data.get("repaired_from"),
            granted_imports=tuple(data.get("granted_imports", ())),
        )


@dataclass(frozen=True)
class MutationEdit:
    """What a kept edit was (the offline mutator's credit): its tag, whether it explored,
    and the normalised change signature of the offspring's final tree."""

    tag: str
    explore: bool
    change: str

    def to_json(self) -> dict[str, Any]:
        return {"tag": self.tag, "explore": self.explore, "change": self.change}


@dataclass(frozen=True)
class MutationRecord:
    """One mutation event, rejected edits included: ``gNNN/mutations/<id>.json``.

    ``metrics_after`` and ``fitness_delta`` are filled in by the selection
    (``MemoryStore.update_generation_metrics``) once the offspring is ranked.
    """

    id: str
    timestamp: str
    agent: str
    generation: int
    parents: tuple[str, ...]
    file: str
    chunk: str
    summary: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    commit: str  # the offspring's head ('' when none was made)
    kind: MutationKind
    outcome: Outcome
    reason: str
    metrics_before: Metrics | None  # the parent's, when it was measured
    edit: MutationEdit | None = None
    left_out: tuple[str, ...] = ()  # prompt sections left out to fit the model's window

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "timestamp": self.timestamp,
            "agent": self.agent,
            "generation": self.generation,
            "parents": list(self.parents),
            "file": self.file,
            "chunk": self.chunk,
            "summary": self.summary,
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "commit": self.commit,
            "kind": str(self.kind),
            "outcome": self.outcome.value,
            "reason": self.reason,
            "metrics_before": self.metrics_before.to_dict() if self.metrics_before else None,
            "metrics_after": None,
            "fitness_delta": None,
            "edit": self.edit.to_json() if self.edit is not None else None,
        }
        if self.left_out:
            out["left_out"] = list(self.left_out)
        return out


@dataclass(frozen=True)
class Baseline:
    """The seed's measured noise floor (``baseline`` of every generation summary)."""

    mean: Metrics
    std: dict[str, float]
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean.to_dict(), "std": dict(self.std), "n": self.n}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Baseline:
        return cls(Metrics.from_dict(data["mean"]), dict(data["std"]), int(data["n"]))


@dataclass(frozen=True)
class GenerationSummary:
    """One generation as recorded in ``memory/gNNN/summary.json``."""

    generation: int
    ranking: tuple[Row, ...]
    survivors: tuple[str, ...]
    culled: tuple[str, ...]
    champion: str | None = None  # the current champion (promoted now or earlier)
    new_champion: str | None = None  # promoted in this generation
    leader: str | None = None
    gate: Gate | None = None
    baseline: Baseline | None = None
    timings: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0
    # the two-budget decision (search and confirmation gains and p-values); None, and absent
    # from the JSON, when budget.confirm_* is off
    promotion: Promotion | None = None
    # the corpus the generation was measured on (``budget.data``); None in summaries written
    # before it was recorded
    data: str | None = None
    # a re-baseline on a seed the user committed: {"from", "to", "archived_as"} (engine.reseed)
    reseeded: dict[str, str] | None = None

    def row(self, agent: str) -> Row | None:
        return next((r for r in self.ranking if r.agent == agent), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "generation": self.generation,
            "ranking": [r.to_json() for r in self.ranking],
            "survivors": list(self.survivors),
            "culled": list(self.culled),
            "champion": self.champion,
            "new_champion": self.new_champion,
            "leader": self.leader,
            "gate": self.gate.to_json() if self.gate else None,
            "baseline": self.baseline.to_json() if self.baseline else None,
            "timings": dict(self.timings),
            "tokens": dict(self.tokens),
            "cost_usd": self.cost_usd,
        }
        if self.promotion is not None:
            out["promotion"] = self.promotion.to_dict()
        if self.data is not None:
            out["data"] = self.data
        if self.reseeded is not None:
            out["reseeded"] = dict(self.reseeded)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GenerationSummary:
        gate, base, promo = data.get("gate"), data.get("baseline"), data.get("promotion")
        return cls(
            generation=int(data["generation"]),
            ranking=tuple(Row.from_json(r) for r in data["ranking"]),
            survivors=tuple(data["survivors"]),
            culled=tuple(data["culled"]),
            champion=data.get("champion"),
            new_champion=data.get("new_champion"),
            leader=data.get("leader"),
            gate=Gate.from_json(gate) if gate else None,
            baseline=Baseline.from_json(base) if base else None,
            timings=dict(data.get("timings") or {}),
            tokens=dict(data.get("tokens") or {}),
            cost_usd=float(data.get("cost_usd", 0.0)),
            promotion=Promotion.from_dict(promo) if promo else None,
            data=data.get("data"),
            reseeded=dict(data["reseeded"]) if data.get("reseeded") else None,
        )


class JournalState(StrEnum):
    """How far a generation's selection was carried out (``state`` of ``selection.json``)."""

    DECIDED = "decided"  # the outcome is written; nothing carried out yet (or part of it)
    RECORDED = "recorded"  # branches culled, mutation metrics and the summary written
    PUBLISHED = "published"  # the forge shows it too: nothing left to do


@dataclass(frozen=True)
class SelectionJournal:
    """The decided outcome of one generation, written before it is carried out.

    ``handled``: the one-shot dashboard actions the decision consumed, replayed
    to the publisher when a rerun finishes the plan.
    """

    generation: int
    state: JournalState
    summary: GenerationSummary
    handled: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "state": JournalState(self.state).value,
            "summary": self.summary.to_json(),
            "handled": list(self.handled),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SelectionJournal:
        return cls(
            int(data["generation"]),
            JournalState(data["state"]),
            GenerationSummary.from_json(data["summary"]),
            tuple(data.get("handled", ())),
        )
