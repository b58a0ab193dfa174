"""Leaderboards, the fitness plot, lineage and the step summary."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest

from darwin_bot.core import Agent, Gate, Metrics, Mutation, Row, Status
from darwin_bot.core.fitness import GateResult
from darwin_bot.errors import StateError
from darwin_bot.publish.report import (
    fitness_plot,
    generation_summary_markdown,
    leaderboard_markdown,
    leaderboard_text,
    lineage_text,
    plot_series,
)
from darwin_bot.store import Baseline, GenerationSummary

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def metrics(ppl: float, mfu: float = 0.01) -> Metrics:
    return Metrics(1.0, ppl, mfu, tokens_per_s=1.0, train_seconds=1.0, peak_mem_mb=1.0)


ROWS = [
    Row("g002-001", 2, ("seed",), fitness=0.0512, metrics=metrics(9.5, 0.0123), p_value=0.012),
    Row("seed", 0, (), fitness=0.0, metrics=metrics(10.0, 0.012)),
    Row("g002-000", 2, ("seed",), status=Status.TIMEOUT),
]


def summary(g: int, fits: list[float | None], ppls: list[float | None]) -> GenerationSummary:
    ranking = tuple(
        Row(
            f"g{g:03d}-{i:03d}",
            g,
            ("seed",),
            status=Status.OK if f is not None else Status.FAILED,
            fitness=f if f is not None else -math.inf,
            metrics=metrics(p) if p is not None else None,
        )
        for i, (f, p) in enumerate(zip(fits, ppls, strict=True))
    )
    gate = GateResult(True, 0.03, 0.05, None, "welch", 3, 3, "passed: ...")
    return GenerationSummary(
        g,
        ranking,
        survivors=(ranking[0].agent,),
        culled=tuple(r.agent for r in ranking[1:]),
        leader=ranking[0].agent,
        gate=Gate(ranking[0].agent, gate),
        baseline=Baseline(metrics(10.0), {}, 3),
        timings={"select_s": 2.0},
        tokens={"prompt": 1200, "completion": 300},
        cost_usd=0.0123,
    )


def test_leaderboard_markdown() -> None:
    md = leaderboard_markdown(ROWS, 10.0)
    lines = md.strip().splitlines()
    assert len(lines) == 2 + len(ROWS)
    assert all(line.count("|") == 11 for line in lines)
    first = [c.strip() for c in lines[2].strip("|").split("|")]
    assert first == [
        "1",
        "g002-001",
        "ok",
        "9.500",
        "-5.00%",
        "—",
        "—",
        "1.23%",
        "+0.0512",
        "0.012",
    ]
    last = [c.strip() for c in lines[4].strip("|").split("|")]
    assert last[2] == "timeout" and last[8] == "failed" and last[3] == "—"
    assert leaderboard_markdown([]).startswith("_No agents")


def test_markdown_escapes_pipes() -> None:
    md = leaderboard_markdown([Row("a|b", 1, (), status=Status.FAILED)])
    assert "a\\|b" in md


def test_leaderboard_text_is_aligned() -> None:
    lines = leaderboard_text(ROWS, 10.0).splitlines()
    assert re.split(r"\s{2,}|(?<=#)\s", lines[0].strip()) == [
        "#", "agent", "status", "perplexity", "Δppl", "cost", "to seed loss", "MFU (reported)",
        "fitness", "p"
    ]  # fmt: skip
    # the right-aligned fitness column ends at the same place on every data row
    ends = {
        line.index(token) + len(token)
        for line, token in zip(lines[1:], ["+0.0512", "+0.0000", "failed"], strict=True)
    }
    assert len(ends) == 1


def test_a_stored_ranking_reads_back_as_the_same_leaderboard() -> None:
    stored = summary(1, [0.1, None], [9.0, None])
    back = GenerationSummary.from_json(stored.to_json())  # what memory/gNNN/summary.json holds
    assert back.ranking == stored.ranking
    table = leaderboard_markdown(back.ranking, 10.0)
    assert table == leaderboard_markdown(stored.ranking, 10.0)
    assert "| 1 | g001-000 | ok | 9.000 | -10.00% |" in table and "| failed |" in table


def test_plot_series() -> None:
    gens = [
        summary(2, [0.2, 0.0, None], [8.0, 9.0, None]),
        summary(1, [0.1, -0.1, 0.0], [9.0, 11.0, 10.0]),
    ]
    data = plot_series(gens)
    assert data["generation"] == [1.0, 2.0]
    assert data["best"] == [0.1, 0.2]
    assert data["median"] == [0.0, 0.1]
    assert data["perplexity"] == [9.0, 8.0]
    none_worked = plot_series([summary(3, [None], [None])])
    assert math.isnan(none_worked["best"][0])


def test_the_fitness_plot_names_agents_on_whole_generations_with_the_seeds_band() -> None:
    from darwin_bot.publish.report import fitness_figure

    gens = [summary(g, [0.05 * g, 0.0], [10.0 - g, 10.0]) for g in range(4)]
    band = Baseline(metrics(10.0), {"perplexity": 0.2}, 3)
    gens = [dataclasses.replace(s, baseline=band) for s in gens]
    fig = fitness_figure(gens)
    fig.canvas.draw()
    top, bottom = fig.axes
    lo, hi = bottom.get_xlim()
    ticks = [t for t in bottom.get_xticks() if lo <= t <= hi]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    names = {t.get_text() for t in top.texts} | {t.get_text() for t in bottom.texts}
    assert {"g001-000", "g002-000", "g003-000"} <= names
    band = [c for c in bottom.collections if c.get_label().startswith("the seed's noise")]
    assert band, "the seed's noise band"
    ys = band[0].get_paths()[0].vertices[:, 1]
    assert round(ys.min(), 6) == 9.8 and round(ys.max(), 6) == 10.2


def test_fitness_plot_writes_a_png(tmp_path: Path) -> None:
    gens = [summary(g, [0.05 * g, 0.0, None], [10.0 - g, 10.0, None]) for g in range(4)]
    out = fitness_plot(gens, tmp_path / "report" / "fitness.png")
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000
    empty = fitness_plot([], tmp_path / "empty.png")
    assert empty.read_bytes().startswith(PNG_MAGIC)


def agent(
    aid: str, gen: int, parents: tuple[str, ...], summary_text: str, kind: str = "mutate"
) -> Agent:
    mut = Mutation(
        sha="0" * 40,
        agent=aid,
        generation=gen,
        parents=parents,
        kind=kind,  # type: ignore[arg-type]
        summary=summary_text,
    )
    return Agent(
        id=aid,
        branch=f"darwin/{aid}",
        head="0" * 40,
        generation=gen,
        parents=parents,
        mutations=(mut,),
    )


def test_lineage_text_draws_the_ancestry() -> None:
    agents = [
        agent("seed", 0, (), "the seed", "seed"),
        agent("g001-000", 1, ("seed",), "raise the learning rate"),
        agent("g001-001", 1, ("seed",), "use rotary embeddings"),
        agent("g002-000", 2, ("g001-000", "g001-001"), "merge lr and rope", "crossover"),
        agent("g003-000", 3, ("g002-000", "g001-999"), "add dropout"),
    ]
    text = lineage_text(agents, "g003-000")
    lines = text.splitlines()
    assert lines[0].startswith("g003-000  g3 mutate: add dropout")
    assert lines[1].startswith("├── g002-000  g2 crossover: merge lr and rope")
    assert lines[2].startswith("│   ├── g001-000  g1 mutate: raise the learning rate")
    assert lines[3] == "│   │   └── seed  g0 seed: the seed"
    assert lines[4].startswith("│   └── g001-001")
    assert lines[5] == "│       └── seed  (see above)"
    assert lines[6] == "└── g001-999  (no longer in the population)"
    assert lineage_text({a.id: a for a in agents}, "seed") == "seed  g0 seed: the seed\n"
    with pytest.raises(StateError, match="no agent 'nope'"):
        lineage_text(agents, "nope")


def test_generation_summary_markdown() -> None:
    md = generation_summary_markdown(summary(4, [0.1, None], [9.0, None]))
    assert md.startswith("## darwin-bot: generation 4")
    assert "**Leader:** `g004-000`" in md
    assert "p = 0.03" in md and "+5.00% better" in md
    assert "prompt 1,200" in md and "$0.0123" in md
    assert "| 1 | g004-000 | ok | 9.000 | -10.00% |" in md
    new = dataclasses.replace(
        summary(5, [0.1], [9.0]), champion="g005-000", new_champion="g005-000"
    )
    assert "**New champion:** `g005-000` passed" in generation_summary_markdown(new)
    kept = dataclasses.replace(summary(6, [0.1], [9.0]), champion="g005-000")
    assert "**Champion:** `g005-000` (unchanged)" in generation_summary_markdown(kept)


def test_the_measured_cost_shows_next_to_the_perplexity() -> None:
    record = summary(1, [0.1], [9.0]).to_json()
    record["ranking"][0]["metrics"] |= {"cost_ratio": 1.8, "train_wall_s": 90.0}
    rows = GenerationSummary.from_json(record).ranking
    assert rows[0].cost_ratio == 1.8
    table = leaderboard_markdown(rows, 10.0)
    cells = [c.strip() for c in table.splitlines()[2].strip("|").split("|")]
    assert cells[3:6] == ["9.000", "-10.00%", "1.80x"]
