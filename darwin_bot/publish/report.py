"""Human-readable views of an evolution: leaderboards, the fitness plot, lineage.

Everything here reads plain values (``LeaderRow``, generation summary dicts as
``MemoryStore.generations()`` returns them, ``Agent``); nothing writes state
except :func:`fitness_plot`, which writes the one PNG it is asked for.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darwin_bot.core.agent import Agent, MutationKind
from darwin_bot.errors import StateError


@dataclass(frozen=True)
class LeaderRow:
    """One line of a leaderboard. ``fitness`` is ``-inf`` (or ``None``) for a failed agent."""

    rank: int
    agent: str
    status: str
    fitness: float | None
    perplexity: float | None = None
    mfu: float | None = None
    baseline_perplexity: float | None = None
    p_value: float | None = None
    cost_ratio: float | None = None  # measured cost (CPU time on a CPU) over the baseline's
    time_to_loss: float | None = None  # trusted: budget share to reach the seed's final loss

    @property
    def delta_ppl_pct(self) -> float | None:
        """Perplexity change against the baseline in percent (negative is better)."""
        if self.perplexity is None or not self.baseline_perplexity:
            return None
        return 100.0 * (self.perplexity - self.baseline_perplexity) / self.baseline_perplexity


def rows_from_summary(summary: Mapping[str, Any]) -> list[LeaderRow]:
    """Leaderboard rows from a generation summary record (ranking order kept)."""
    baseline = ((summary.get("baseline") or {}).get("mean") or {}).get("perplexity")
    return [
        LeaderRow(
            rank=i,
            agent=str(entry["agent"]),
            status=str(entry.get("status", "")),
            fitness=entry.get("fitness"),
            perplexity=entry.get("perplexity"),
            mfu=entry.get("mfu"),
            baseline_perplexity=baseline,
            p_value=entry.get("p_value"),
            cost_ratio=(entry.get("metrics") or {}).get("cost_ratio"),
            time_to_loss=(entry.get("metrics") or {}).get("time_to_loss"),
        )
        for i, entry in enumerate(summary.get("ranking", []), start=1)
    ]


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


def _cells(row: LeaderRow) -> list[str]:
    delta = row.delta_ppl_pct
    return [
        str(row.rank),
        row.agent,
        row.status,
        _num(row.perplexity, ".3f"),
        "—" if delta is None else f"{delta:+.2f}%",
        "—" if row.cost_ratio is None else f"{row.cost_ratio:.2f}x",
        _num(row.time_to_loss, ".2f"),
        _pct(row.mfu),
        "failed"
        if row.fitness is None or not math.isfinite(row.fitness)
        else f"{row.fitness:+.4f}",
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


def leaderboard_markdown(rows: Sequence[LeaderRow]) -> str:
    """A GitHub markdown table; ``—`` marks a value that is not known."""
    if not rows:
        return "_No agents evaluated yet._\n"

    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = [
        "| " + " | ".join(_HEADERS) + " |",
        "|" + "|".join(["---:", ":---", ":---"] + ["---:"] * (len(_HEADERS) - 3)) + "|",
    ]
    lines += ["| " + " | ".join(esc(c) for c in _cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def leaderboard_text(rows: Sequence[LeaderRow]) -> str:
    """The same table as aligned plain text, for a terminal."""
    if not rows:
        return "no agents evaluated yet\n"
    table = [_HEADERS] + [_cells(row) for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(_HEADERS))]
    left = {1, 2}  # agent and status read better left-aligned

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join(fmt(r) for r in table) + "\n"


# ---------------------------------------------------------------- plot


def _finite(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def plot_series(generations: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Per generation: best and median fitness, best perplexity (NaN where none worked),
    the agents that scored them, and the seed's mean perplexity and sd (its noise band)."""
    keys = ("generation", "best", "median", "perplexity", "best_agent", "ppl_agent")
    series: dict[str, list[Any]] = {k: [] for k in (*keys, "seed", "seed_sd")}
    for summary in sorted(generations, key=lambda s: s["generation"]):
        ranking = summary.get("ranking", [])
        scored = [e for e in ranking if _finite([e.get("fitness")])]
        fits = _finite(e.get("fitness") for e in scored)
        with_ppl = [e for e in scored if _finite([e.get("perplexity")])]
        best = max(scored, key=lambda e: e["fitness"]) if scored else None
        lowest = min(with_ppl, key=lambda e: e["perplexity"]) if with_ppl else None
        base = summary.get("baseline") or {}
        series["generation"].append(float(summary["generation"]))
        series["best"].append(max(fits) if fits else math.nan)
        series["median"].append(statistics.median(fits) if fits else math.nan)
        series["perplexity"].append(float(lowest["perplexity"]) if lowest else math.nan)
        series["best_agent"].append(str(best["agent"]) if best else "")
        series["ppl_agent"].append(str(lowest["agent"]) if lowest else "")
        series["seed"].append(float((base.get("mean") or {}).get("perplexity", math.nan)))
        series["seed_sd"].append(float((base.get("std") or {}).get("perplexity", 0.0) or 0.0))
    return series


def _names(ax: Any, xs: Sequence[float], ys: Sequence[float], names: Sequence[str]) -> None:
    """Each point labelled with the agent it is (a name repeated from the last point is not)."""
    last = None
    for x, y, name in zip(xs, ys, names, strict=True):
        if name and name != last and math.isfinite(y):
            ax.annotate(name, (x, y), fontsize=7, textcoords="offset points", xytext=(4, 4))
        last = name


def fitness_figure(generations: Sequence[Mapping[str, Any]]) -> Any:
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


def fitness_plot(generations: Sequence[Mapping[str, Any]], path: Path) -> Path:
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


def promotion_text(summary: Mapping[str, Any]) -> str | None:
    """The two-budget verdict on the leader (``budget.confirm_*``): both gains, both p-values.

    None when confirmation is off (the summary has no ``promotion``).
    """
    promo = summary.get("promotion")
    if not promo:
        return None
    agent = (summary.get("gate") or {}).get("agent") or summary.get("leader")
    return f"`{agent}` {promo['verdict']}: {promo['reason']}"


def gate_reason(summary: Mapping[str, Any], default: str = "") -> str:
    """Why the champion was promoted: the two-budget reason when confirmation is on."""
    promo = summary.get("promotion") or {}
    return str(promo.get("reason") or (summary.get("gate") or {}).get("reason") or default)


def generation_summary_markdown(summary: Mapping[str, Any]) -> str:
    """Markdown for the GitHub step summary of one generation summary record."""
    gen = summary.get("generation", "?")
    out = [f"## darwin-bot: generation {gen}", ""]
    leader = summary.get("leader")
    champion = summary.get("champion")
    out.append(f"- **Leader:** `{leader}`" if leader else "- **Leader:** none (no agent worked)")
    gate = summary.get("gate") or {}
    new_champion = summary.get("new_champion")
    if new_champion:
        out.append(f"- **New champion:** `{new_champion}` passed the statistical gate")
    elif champion:
        out.append(f"- **Champion:** `{champion}` (unchanged)")
    elif gate:
        out.append("- **Champion:** none yet")
    if gate:
        p, eff = gate.get("p_value"), gate.get("effect_size")
        parts = [f"p = {_num(p, '.3g')}"]
        if eff is not None:
            parts.append(f"perplexity {100.0 * eff:+.2f}% better")
        if gate.get("reason"):
            parts.append(str(gate["reason"]))
        out.append("- **Gate:** " + "; ".join(parts))
    promotion = promotion_text(summary)
    if promotion:
        out.append(f"- **Promotion (search and confirmation budgets):** {promotion}")
    survivors = summary.get("survivors") or []
    culled = summary.get("culled") or []
    out.append(
        f"- **Survivors ({len(survivors)}):** " + (", ".join(f"`{s}`" for s in survivors) or "none")
    )
    out.append(f"- **Culled ({len(culled)}):** " + (", ".join(f"`{s}`" for s in culled) or "none"))
    tokens = summary.get("tokens") or {}
    cost = summary.get("cost_usd")
    if tokens or cost:
        tok = ", ".join(f"{k} {v:,}" for k, v in sorted(tokens.items()))
        out.append(f"- **LLM:** {tok or 'no tokens'}; cost ${float(cost or 0.0):.4f}")
    timings = summary.get("timings") or {}
    if timings:
        out.append("- **Time:** " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    out += ["", "### Leaderboard", "", leaderboard_markdown(rows_from_summary(summary))]
    return "\n".join(out)
