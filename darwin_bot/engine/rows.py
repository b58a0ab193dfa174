"""Leaderboard rows: one dict per agent in a generation summary, and their ranking.

A row is what ``memory/gNNN/summary.json`` keeps in ``ranking``; the memory
schema validates it. A failed or rejected agent has fitness ``-inf`` (stored
as null), so it always ranks last.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from darwin_bot.config import FitnessConfig
from darwin_bot.core import fitness as fit
from darwin_bot.core import selection as sel
from darwin_bot.core.results import EvalResult, Metrics


def row(
    agent: str,
    generation: int,
    parents: Sequence[str],
    *,
    status: str = "ok",
    fitness: float = fit.FAILED,
    mean: Metrics | None = None,
    n_runs: int = 0,
    reason: str = "",
) -> dict[str, Any]:
    return {
        "agent": agent,
        "generation": generation,
        "status": status,
        "fitness": fitness,
        "metrics": mean.to_dict() if mean else None,
        "n_runs": n_runs,
        "perplexity": mean.perplexity if mean else None,
        "mfu": mean.mfu if mean else None,
        "parents": list(parents),
        "reason": reason,
        "p_value": None,
    }


def scored_row(
    agent: str,
    generation: int,
    parents: Sequence[str],
    runs: Sequence[EvalResult],
    baseline: Metrics,
    weights: FitnessConfig,
) -> dict[str, Any]:
    """The row of an agent from its runs: failed if it has none or any run failed."""
    summary = fit.summarize(runs) if runs else None
    mean = summary.mean_metrics() if summary else None
    if mean is None:
        failed = next((r for r in runs if not r.ok), None)
        return row(
            agent,
            generation,
            parents,
            status=failed.status if failed else "failed",
            n_runs=len(runs),
            reason=failed.reason if failed else "not evaluated",
        )
    out = row(
        agent,
        generation,
        parents,
        fitness=fit.fitness(mean, baseline, weights),
        mean=mean,
        n_runs=len(runs),
    )
    if baseline.train_wall_s > 0 and mean.train_wall_s > 0:  # the cost of the gain, measured
        out["metrics"]["cost_ratio"] = mean.train_wall_s / baseline.train_wall_s
    return out


def scored(r: dict[str, Any]) -> sel.Scored:
    fitness = fit.FAILED if r["fitness"] is None else r["fitness"]
    return sel.Scored(
        agent=r["agent"], fitness=fitness, ok=r["status"] == "ok", generation=r["generation"]
    )


def rank(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows best first (failures last, ties by agent id), each with its 1-based ``rank``."""
    by_agent = {r["agent"]: r for r in rows}
    ranked = [by_agent[s.agent] for s in sel.rank([scored(r) for r in rows])]
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
    return ranked
