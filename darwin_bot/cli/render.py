"""What ``darwin run``, ``demo`` and ``status`` print: leaderboards and the final summary."""

from __future__ import annotations

from typing import Any

import click

from darwin_bot import report
from darwin_bot.core.agent import Agent


def print_generation(summary: dict[str, Any]) -> None:
    g = summary["generation"]
    title = "baseline (generation 0)" if g == 0 else f"generation {g}"
    click.echo(f"\n== {title}")
    click.echo(report.leaderboard_text(report.rows_from_summary(summary)), nl=False)
    gate = summary.get("gate")
    if gate:
        click.echo(f"gate: {gate.get('reason', '')}")
    promotion = summary.get("promotion")  # with budget.confirm_*: the two-budget decision
    if promotion:
        click.echo(f"promotion: {promotion['verdict']}: {promotion['reason']}")
    if summary.get("champion"):
        click.echo(f"champion: {summary['champion']}")


def population(engine: Any) -> dict[str, Agent]:
    """Every agent that ever ranked, rebuilt from git (branches or archived heads)."""
    agents: dict[str, Agent] = {}
    for rec in engine.generations():
        for row in rec["ranking"]:
            aid = row["agent"]
            if aid in agents:
                continue
            head = engine.repo.rev(engine.repo.branch(aid)) or engine.repo.archived(aid)
            if head is None:
                continue
            agents[aid] = Agent(
                id=aid,
                branch=engine.repo.branch(aid),
                head=head,
                generation=int(row.get("generation", rec["generation"])),
                parents=tuple(row.get("parents", [])),
                mutations=tuple(engine.repo.lineage(head, limit=50)),
            )
    return agents


def print_final(engine: Any) -> None:
    """The best agent, its lineage, its diff against the seed, and the fitness plot."""
    gens = engine.generations()
    if not gens:
        return
    last = gens[-1]
    best = last.get("champion") or last.get("leader")
    plot = report.fitness_plot(gens, engine.repo.root / ".darwin" / "report" / "fitness.png")
    click.echo("\n== summary")
    if best:
        row = next((r for r in last["ranking"] if r["agent"] == best), None)
        base = ((last.get("baseline") or {}).get("mean") or {}).get("perplexity")
        status = (
            "champion (passed the statistical gate)"
            if last.get("champion") == best
            else "leader (not confirmed as significant)"
        )
        click.echo(f"best agent: {best}, {status}")
        if row and row.get("perplexity") and base:
            pct = 100.0 * (row["perplexity"] - base) / base
            click.echo(
                f"held-out perplexity {row['perplexity']:.4f} vs baseline {base:.4f} ({pct:+.2f}%)"
            )
        agents = population(engine)
        if best in agents:
            click.echo("\nlineage:")
            click.echo(report.lineage_text(agents, best), nl=False)
            seed = engine.seed_head()
            click.echo(f"\ndiff against the seed (git diff {seed[:10]} {agents[best].head[:10]}):")
            click.echo(engine.repo.diffstat(seed, agents[best].head))
    click.echo(f"\nfitness plot: {plot}")
