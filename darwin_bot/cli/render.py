"""What ``darwin run``, ``demo`` and ``status`` print: leaderboards and the final summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from darwin_bot.core import SEED_AGENT, Agent, Row
from darwin_bot.publish import fitness_plot, leaderboard_text, lineage_text, seed_perplexity
from darwin_bot.store import GenerationSummary

if TYPE_CHECKING:
    from pathlib import Path

    from darwin_bot.git import GitRepo


def print_generation(summary: GenerationSummary) -> None:
    g = summary.generation
    title = "baseline (generation 0)" if g == 0 else f"generation {g}"
    click.echo(f"\n== {title}")
    table = leaderboard_text(summary.ranking, seed_perplexity(summary))
    click.echo(table, nl=False)
    if summary.gate:
        click.echo(f"gate: {summary.gate.result.reason}")
    promotion = summary.promotion  # with budget.confirm_*: the two-budget decision
    if promotion:
        click.echo(f"promotion: {promotion.verdict}: {promotion.reason}")
    if summary.champion:
        click.echo(f"champion: {summary.champion}")


def population(repo: GitRepo, generations: Sequence[GenerationSummary]) -> dict[str, Agent]:
    """Every agent that ever ranked, rebuilt from git (branches or archived heads)."""
    agents: dict[str, Agent] = {}
    for summary in generations:
        for row in summary.ranking:
            aid = row.agent
            if aid in agents:
                continue
            head = repo.rev(repo.branch(aid)) or repo.archived(aid)
            if head is None:
                continue
            agents[aid] = Agent(
                id=aid,
                branch=repo.branch(aid),
                head=head,
                generation=row.generation,
                parents=row.parents,
                mutations=tuple(repo.lineage(head, limit=50)),
            )
    return agents


def _ppl(row: Row | None) -> float | None:
    return row.metrics.perplexity if row is not None and row.metrics is not None else None


def headline(last: GenerationSummary) -> tuple[str | None, list[str]]:
    """What the run found: (the agent whose diff is worth showing, or None; the lines to print).

    "No gain yet" when the seed leads or nothing beat it; otherwise the best
    agent with its perplexity, its change against the seed and its p-value,
    and whether it passed the statistical gate.
    """
    g, champion = last.generation, last.champion
    best = champion or last.leader
    base = seed_perplexity(last)
    row = last.row(best) if best else None
    ppl = _ppl(row)
    if not best or best == SEED_AGENT or ppl is None or (base and not champion and ppl >= base):
        runner = next((r for r in last.ranking if r.agent != SEED_AGENT and _ppl(r)), None)
        lines = [f"No gain yet: after generation {g} the seed still leads."]
        runner_ppl = _ppl(runner)
        if runner is not None and runner_ppl is not None and base:
            lines.append(
                f"best offspring {runner.agent}: perplexity {runner_ppl:.4f} "
                f"vs the seed's {base:.4f} ({_delta(runner_ppl, base)}"
                f"{_p_text(runner.p_value)})"
            )
        return None, lines
    if champion == best:
        status = "champion: passed the statistical gate"
    else:
        gate = last.gate.result.reason if last.gate else ""
        status = "leader, not yet significant" + (f" ({gate})" if gate else "")
    lines = [f"best agent: {best}, {status}"]
    if base:
        lines.append(
            f"held-out perplexity {ppl:.4f} vs the seed's {base:.4f} "
            f"({_delta(ppl, base)}{_p_text(row.p_value if row else None)})"
        )
    return best, lines


def _delta(value: float, base: float) -> str:
    return f"{100.0 * (value - base) / base:+.2f}%"


def _p_text(p: float | None) -> str:
    return "" if p is None else f", p = {p:.3g}"


def print_final(repo: GitRepo, gens: Sequence[GenerationSummary], memory: Path) -> None:
    """What the run found, the best agent's lineage and diff against the seed, the plot.

    ``memory``: the memory folder, where a run keeps its fitness plot.
    """
    if not gens:
        return
    plot = fitness_plot(gens, repo.root / ".darwin" / "report" / "fitness.png")
    click.echo("\n== summary")
    best, lines = headline(gens[-1])
    click.echo("\n".join(lines))
    agents = population(repo, gens) if best else {}
    if best in agents:
        click.echo("\nlineage:")
        click.echo(lineage_text(agents, best), nl=False)
        seed = repo.rev(repo.branch(SEED_AGENT)) or repo.archived(SEED_AGENT)
        if seed is not None and agents[best].head != seed:
            click.echo(f"\ndiff against the seed (git diff {seed[:10]} {agents[best].head[:10]}):")
            click.echo(repo.diffstat(seed, agents[best].head))
    click.echo(f"\nfitness plot: {plot}")
    kept = memory / "plots" / "fitness.png"
    if kept.is_file():
        click.echo(f"(committed with the memory as {kept.relative_to(repo.root)})")
