"""The end-of-run summary says what was found: "No gain yet", a leader, or a champion."""

from __future__ import annotations

from darwin_bot.cli.render import headline
from darwin_bot.core import Gate, Metrics, Row
from darwin_bot.core.fitness import GateResult
from darwin_bot.store import Baseline, GenerationSummary


def _metrics(ppl: float) -> Metrics:
    return Metrics(1.0, ppl, 0.0, tokens_per_s=1.0, train_seconds=1.0, peak_mem_mb=1.0)


def _last(leader: str, champion: str | None = None, ppl: float = 9.5) -> GenerationSummary:
    def row(agent: str, perplexity: float, p_value: float) -> Row:
        return Row(agent, 3, ("seed",), fitness=0.0, metrics=_metrics(perplexity), p_value=p_value)

    ranking = (row(leader, 10.0 if leader == "seed" else ppl, 0.2), row("g003-001", 10.3, 0.9))
    gate = Gate(leader, GateResult(False, 0.2, None, None, "welch", 3, 3, "p = 0.2 >= 0.05"))
    base = Baseline(_metrics(10.0), {}, 3)
    return GenerationSummary(
        3, ranking, (), (), champion=champion, leader=leader, gate=gate, baseline=base
    )


def test_the_seed_leading_is_no_gain_yet_and_names_the_best_offspring() -> None:
    best, lines = headline(_last("seed"))
    assert best is None  # no diff to show: the seed against itself is empty
    assert lines == [
        "No gain yet: after generation 3 the seed still leads.",
        "best offspring g003-001: perplexity 10.3000 vs the seed's 10.0000 (+3.00%, p = 0.9)",
    ]


def test_a_leader_that_is_worse_than_the_seed_is_no_gain_either() -> None:
    best, lines = headline(_last("g003-000", ppl=10.1))
    assert best is None and lines[0].startswith("No gain yet")


def test_a_leader_not_yet_significant_says_so_with_its_p_value() -> None:
    best, lines = headline(_last("g003-000"))
    assert best == "g003-000"
    assert lines == [
        "best agent: g003-000, leader, not yet significant (p = 0.2 >= 0.05)",
        "held-out perplexity 9.5000 vs the seed's 10.0000 (-5.00%, p = 0.2)",
    ]


def test_a_champion_passed_the_gate() -> None:
    best, lines = headline(_last("g003-000", champion="g003-000"))
    assert best == "g003-000"
    assert lines[0] == "best agent: g003-000, champion: passed the statistical gate"
