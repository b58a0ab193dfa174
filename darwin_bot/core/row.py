"""One agent's entry in a generation's ranking: the one ranking type every part reads.

Selection ranks it (``core.selection``, ``core.generation``), the engine builds
it from evaluation runs (``engine.rows``), the store keeps it as ``ranking[i]``
of a generation summary (its JSON form here, schema
``memory/schemas/generation.schema.json``), and the leaderboards, the PR bodies
and the command line read it back (``publish``, ``cli``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from darwin_bot.core import fitness as fit
from darwin_bot.core.results import Metrics, Status


@dataclass(frozen=True)
class Row:
    """One agent in one generation's ranking (``ranking[i]`` of the generation summary)."""

    agent: str
    generation: int
    parents: tuple[str, ...]
    status: Status = Status.OK
    fitness: float = fit.FAILED
    metrics: Metrics | None = None
    n_runs: int = 0
    reason: str = ""
    p_value: float | None = None
    rank: int | None = None
    cost_ratio: float | None = None  # measured cost (CPU time on a CPU) over the baseline's
    # trusted: mean budget fraction at which the runs' curves reach the seed's final loss
    # (over the runs that reach it; None: none did, or no curve)
    time_to_loss: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "parents", tuple(self.parents))

    @property
    def ok(self) -> bool:
        return self.status is Status.OK and math.isfinite(self.fitness)

    def to_json(self) -> dict[str, Any]:
        m = self.metrics
        metrics = m.to_dict() if m else None
        if metrics is not None and self.cost_ratio is not None:
            metrics["cost_ratio"] = self.cost_ratio  # read as metrics.cost_ratio by the reports
        if metrics is not None and self.time_to_loss is not None:
            metrics["time_to_loss"] = self.time_to_loss  # trusted: see core/time_to_loss.py
        return {
            "agent": self.agent,
            "generation": self.generation,
            "status": self.status.value,
            "fitness": self.fitness if math.isfinite(self.fitness) else None,
            "metrics": metrics,
            "n_runs": self.n_runs,
            "perplexity": m.perplexity if m else None,
            "mfu": m.mfu if m else None,
            "parents": list(self.parents),
            "reason": self.reason,
            "p_value": self.p_value,
            "rank": self.rank,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Row:
        fitness = data.get("fitness")
        metrics = data.get("metrics")
        return cls(
            agent=data["agent"],
            generation=int(data.get("generation", 0)),
            parents=tuple(data.get("parents", ())),
            status=Status(data["status"]),
            fitness=fit.FAILED if fitness is None else float(fitness),
            metrics=Metrics.from_dict(metrics) if metrics else None,
            n_runs=int(data.get("n_runs", 0)),
            reason=str(data.get("reason", "")),
            p_value=data.get("p_value"),
            rank=data.get("rank"),
            cost_ratio=(metrics or {}).get("cost_ratio"),
            time_to_loss=(metrics or {}).get("time_to_loss"),
        )
