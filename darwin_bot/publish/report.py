"""Human-readable views of an evolution: leaderboards, the fitness plot, lineage.

Everything here reads typed values (the ranking's ``Row``, the
``GenerationSummary`` of each generation, ``Agent``); nothing writes state
except :func:`fitness_plot`, which writes the one PNG it is asked for.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from darwin_bot.core import Agent, Gate, MutationKind, Row
from darwin_bot.errors import StateError
from darwin_bot.store import GenerationSummary


def seed_perplexity(summary: GenerationSummary) -> float | None:
    """The seed's mean perplexity in ``summary``'s generation: what every Δppl is against."""
    return summary.baseline.mean.perplexity if summary.baseline is not None else None


# ---------------------------------------------------------------- tables


def _num(value: float | None, fmt: str) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return format(value, fmt)


def _pct(fraction: float | None) -> str:
    """MFU is a fraction of peak; shown in percent with 3 significant digits (CPU MFU is tiny)."""
    if fraction is None or not math.isfinite(fraction):
        return "—"
    return f"{100.0 * fraction:.3g}%"


def _delta_pct(ppl: float | None, base: float | None) -> float | None:
    """Perplexity change against the baseline in percent (negative is better)."""
    if ppl is None or not base:
        return None
    return 100.0 * (ppl - base) / base


def _cells(i: int, row: Row, base: float | None) -> list[str]:
    ppl = row.metrics.perplexity if row.metrics else None
    delta = _delta_pct(ppl, base)
    return [
        str(i),
        row.agent,
        row.status.value,
        _num(ppl, ".3f"),
        "—" if delta is None else f"{delta:+.2f}%",
        "—" if row.cost_ratio is None else f"{row.cost_ratio:.2f}x",
        _num(row.time_to_loss, ".2f"),
        _pct(row.metrics.mfu if row.metrics else None),
        "failed" if not math.isfinite(row.fitness) else f"{row.fitness:+.4f}",
        _num(row.p_value, ".3g"),
    ]


# "to seed loss": the trusted time to loss (share of the budget at which the held-out curve
# reaches the seed's final loss); MFU rests on the program's own token count: reported
_HEADERS = [
    "#",
    "agent",
    "status",
    "perplexity",
    "Δppl",
    "cost",
    "to seed loss",
    "MFU (reported)",
    "fitness",
    "p",
]


def leaderboard_markdown(rows: Sequence[Row], seed_ppl: float | None = None) -> str:
    """A GitHub markdown table of ranked ``rows``; ``—`` marks a value that is not known.

    ``seed_ppl``: the seed's mean perplexity, what the Δppl column is against.
    """
    if not rows:
        return "_No agents evaluated yet._\n"

    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = [
        "| " + " | ".join(_HEADERS) + " |",
        "|" + "|".join(["---:", ":---", ":---"] + ["---:"] * (len(_HEADERS) - 3)) + "|",
    ]
    cells = [_cells(i, row, seed_ppl) for i, row in enumerate(rows, 1)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def leaderboard_text(rows: Sequence[Row], seed_ppl: float | None = None) -> str:
    """The same table as aligned plain text, for a terminal."""
    if not rows:
        return "no agents evaluated yet\n"
    table = [_HEADERS] + [_cells(i, row, seed_ppl) for i, row in enumerate(rows, 1)]
    widths = [max(len(r[i]) for r in table) for i in range(len(_HEADERS))]
    left = {1, 2}  # agent and status read better left-aligned

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join(fmt(r) for r in table) + "\n"


# ---------------------------------------------------------------- plot


def plot_series(generations: Sequence[GenerationSummary]) -> dict[str, list[Any]]:
    """Per generation: best and median fitness, best perplexity (NaN where none worked),
    the agents that scored them, and the seed's mean perplexity and sd (its noise band)."""
    keys = ("generation", "best", "median", "perplexity", "best_agent", "ppl_agent")
    series: dict[str, list[Any]] = {k: [] for k in (*keys, "seed", "seed_sd")}
    for summary in sorted(generations, key=lambda s: s.generation):
        scored = [r for r in summary.ranking if math.isfinite(r.fitness)]
        with_ppl = [r for r in scored if r.metrics and math.isfinite(r.metrics.perplexity)]
        best = max(scored, key=lambda r: r.fitness) if scored else None
        lowest = min(with_ppl, key=lambda r: r.metrics.perplexity) if with_ppl else None  # type: ignore[union-attr]
        base = summary.baseline
        series["generation"].append(float(summary.generation))
        series["best"].append(best.fitness if best else math.nan)
        series["median"].append(
            statistics.median(r.fitness for r in scored) if scored else math.nan
        )
        series["perplexity"].append(
            lowest.metrics.perplexity if lowest and lowest.metrics else math.nan
        )
        series["best_agent"].append(best.agent if best else "")
        series["ppl_agent"].append(lowest.agent if lowest else "")
        series["seed"].append(base.mean.perplexity if base else math.nan)
        series["seed_sd"].append(float(base.std.get("perplexity") or 0.0) if base else 0.0)
    return series


def _names(ax: Any, xs: Sequence[float], ys: Sequence[float], names: Sequence[str]) -> None:
    """Each point labelled with the agent it is (a name repeated from the last point is not)."""
    last = None
    for x, y, name in zip(xs, ys, names, strict=True):
        if name and name != last and math.isfinite(y):
            ax.annotate(name, (x, y), fontsize=7, textcoords="offset points", xytext=(4, 4))
        last = name


def fitness_figure(generations: Sequence[GenerationSummary]) -> Any:
    """The figure of :func:`fitness_plot` (a matplotlib ``Figure``, drawn, not saved)."""
    # The object API with the Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    data = plot_series(generations)
    fig = Figure(figsize=(7.0, 5.0), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    gens = data["generation"]
    if gens:
        top.plot(gens, data["best"], "o-", label="best fitness")
        _names(top, gens, data["best"], data["best_agent"])
        top.plot(gens, data["median"], "s--", label="median fitness")
        top.axhline(0.0, color="grey", linewidth=0.8, label="baseline (the seed)")
        top.legend(loc="best", fontsize=8)
        seed, sd = data["seed"], data["seed_sd"]
        bottom.fill_between(
            gens,
            [m - d for m, d in zip(seed, sd, strict=True)],
            [m + d for m, d in zip(seed, sd, strict=True)],
            color="grey",
            alpha=0.25,
            label="the seed's noise (mean ± 1 sd of its runs)",
        )
        bottom.plot(gens, seed, color="grey", linewidth=0.8)
        bottom.plot(gens, data["perplexity"], "o-", color="tab:green", label="best perplexity")
        _names(bottom, gens, data["perplexity"], data["ppl_agent"])
        bottom.legend(loc="best", fontsize=8)
    else:
        top.text(0.5, 0.5, "no generations recorded yet", ha="center", va="center")
    top.set_ylabel("fitness (vs baseline)")
    top.set_title("darwin-bot: evolution of fitness")
    bottom.set_ylabel("held-out perplexity")
    bottom.set_xlabel("generation")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))  # generations are whole numbers
    fig.tight_layout()
    return fig


def fitness_plot(generations: Sequence[GenerationSummary], path: Path) -> Path:
    """Write a PNG: best and median fitness, and best perplexity against the seed's noise band,
    per generation, each point named by its agent."""
    fig = fitness_figure(generations)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # No metadata: the same generations give the same bytes (committed with the memory).
        fig.savefig(path, format="png", metadata={"Software": None})
    except OSError as exc:
        raise StateError(f"cannot write the fitness plot to {path}: {exc}") from exc
    return path


# ---------------------------------------------------------------- lineage


def lineage_text(agents: Sequence[Agent] | Mapping[str, Agent], agent_id: str) -> str:
    """The ancestry of ``agent_id`` as an indented tree, the agent at the top.

    Parents that are no longer in the population (culled, branch deleted) are
    shown by id only; a repeated ancestor (reached through two parents) is
    marked instead of expanded again.
    """
    by_id = dict(agents) if isinstance(agents, Mapping) else {a.id: a for a in agents}
    if agent_id not in by_id:
        known = ", ".join(sorted(by_id)) or "none"
        raise StateError(f"no agent {agent_id!r} in the population (known: {known})")

    def label(aid: str) -> str:
        agent = by_id.get(aid)
        if agent is None:
            return f"{aid}  (no longer in the population)"
        kind = next((m.kind for m in agent.mutations if m.agent == aid), MutationKind.SEED)
        return f"{aid}  g{agent.generation} {kind}: {' '.join(agent.summary.split())[:100]}"

    lines = [label(agent_id)]
    seen = {agent_id}

    def walk(aid: str, prefix: str) -> None:
        agent = by_id.get(aid)
        parents = list(agent.parents) if agent else []
        for i, parent in enumerate(parents):
            last = i == len(parents) - 1
            branch = "└── " if last else "├── "
            if parent in seen:
                lines.append(f"{prefix}{branch}{parent}  (see above)")
                continue
            seen.add(parent)
            lines.append(f"{prefix}{branch}{label(parent)}")
            walk(parent, prefix + ("    " if last else "│   "))

    walk(agent_id, "")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- step summary


def promotion_text(summary: GenerationSummary) -> str | None:
    """The two-budget verdict on the leader (``budget.confirm_*``): both gains, both p-values.

    None when confirmation is off (the summary has no ``promotion``).
    """
    promo = summary.promotion
    if promo is None:
        return None
    agent = (summary.gate.agent if summary.gate else None) or summary.leader
    return f"`{agent}` {promo.verdict}: {promo.reason}"


def gate_reason(summary: GenerationSummary, default: str = "") -> str:
    """Why the champion was promoted: the two-budget reason when confirmation is on."""
    promo = summary.promotion.reason if summary.promotion else ""
    gate = summary.gate.result.reason if summary.gate else ""
    return str(promo or gate or default)


def _gate_line(gate: Gate) -> str:
    parts = [f"p = {_num(gate.result.p_value, '.3g')}"]
    if gate.result.effect_size is not None:
        parts.append(f"perplexity {100.0 * gate.result.effect_size:+.2f}% better")
    if gate.result.reason:
        parts.append(gate.result.reason)
    return "- **Gate:** " + "; ".join(parts)


def generation_summary_markdown(summary: GenerationSummary) -> str:
    """Markdown for the GitHub step summary of one generation."""
    out = [f"## darwin-bot: generation {summary.generation}", ""]
    leader, champion = summary.leader, summary.champion
    out.append(f"- **Leader:** `{leader}`" if leader else "- **Leader:** none (no agent worked)")
    if summary.new_champion:
        out.append(f"- **New champion:** `{summary.new_champion}` passed the statistical gate")
    elif champion:
        out.append(f"- **Champion:** `{champion}` (unchanged)")
    elif summary.gate:
        out.append("- **Champion:** none yet")
    if summary.gate:
        out.append(_gate_line(summary.gate))
    promotion = promotion_text(summary)
    if promotion:
        out.append(f"- **Promotion (search and confirmation budgets):** {promotion}")
    survivors, culled = summary.survivors, summary.culled
    out.append(
        f"- **Survivors ({len(survivors)}):** " + (", ".join(f"`{s}`" for s in survivors) or "none")
    )
    out.append(f"- **Culled ({len(culled)}):** " + (", ".join(f"`{s}`" for s in culled) or "none"))
    tokens, cost = summary.tokens, summary.cost_usd
    if tokens or cost:
        tok = ", ".join(f"{k} {v:,}" for k, v in sorted(tokens.items()))
        out.append(f"- **LLM:** {tok or 'no tokens'}; cost ${float(cost or 0.0):.4f}")
    if summary.timings:
        out.append("- **Time:** " + ", ".join(f"{k} {v:.1f}s" for k, v in summary.timings.items()))
    table = leaderboard_markdown(summary.ranking, seed_perplexity(summary))
    out += ["", "### Leaderboard", "", table]
    return "\n".join(out)
