"""Leaderboard rows from evaluation runs: one typed :class:`~darwin_bot.core.row.Row` per agent.

A failed or rejected agent has fitness ``-inf`` (stored as null), so it
always ranks last; ranking itself is ``core.generation.rank``. To add a
column, add the field to ``Row`` (and its JSON form), fill it here, and add
it to the row schema in ``memory/schemas/generation.schema.json``.
"""

from __future__ import annotations

from collections.abc import Sequence

from darwin_bot.config import FitnessConfig
from darwin_bot.core import EvalResult, Metrics, Row, Status, over_runs
from darwin_bot.core import fitness as fit


def scored_row(
    agent: str,
    generation: int,
    parents: Sequence[str],
    runs: Sequence[EvalResult],
    baseline: Metrics,
    weights: FitnessConfig,
) -> Row:
    """The row of an agent from its runs: failed if it has none or any run failed."""
    summary = fit.summarize(runs) if runs else None
    mean = summary.mean_metrics() if summary else None
    if mean is None:
        failed = next((r for r in runs if not r.ok), None)
        return Row(
            agent,
            generation,
            tuple(parents),
            status=failed.status if failed else Status.FAILED,
            n_runs=len(runs),
            reason=failed.reason if failed else "not evaluated",
            # what was measured stays in view beside the reason it cannot rank
            metrics=failed.metrics if failed and failed.status is Status.OVER_BUDGET else None,
            cost_ratio=failed.extra.get("cost_ratio") if failed else None,
        )
    ttl = over_runs([r.extra for r in runs], baseline.val_loss)
    return Row(
        agent,
        generation,
        tuple(parents),
        fitness=fit.fitness(mean, baseline, weights, ttl.fitness_fraction if ttl else None),
        metrics=mean,
        time_to_loss=ttl.mean_fraction if ttl and ttl.reached == ttl.runs else None,
        n_runs=len(runs),
        # the cost of the gain, measured by the harness: CPU time (GPU: wall) over the baseline's
        cost_ratio=mean.cost.ratio(baseline.cost),
    )


def perplexities(runs: Sequence[EvalResult]) -> list[float]:
    """The held-out perplexity of each working run (what the statistical gate compares)."""
    return [r.metrics.perplexity for r in runs if r.ok and r.metrics]
