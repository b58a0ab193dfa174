"""The end-of-run summary says what was found: "No gain yet", a leader, or a champion."""

from __future__ import annotations

from typing import Any

from darwin_bot.cli.render import headline


def _last(leader: str, champion: str | None = None, ppl: float = 9.5) -> dict[str, Any]:
    return {
        "generation": 3,
        "leader": leader,
        "champion": champion,
        "gate": {"reason": "p = 0.2 >= 0.05"},
        "baseline": {"mean": {"perplexity": 10.0}},
        "ranking": [
            {"agent": leader, "perplexity": 10.0 if leader == "seed" else ppl, "p_value": 0.2},
            {"agent": "g003-001", "perplexity": 10.3, "p_value": 0.9},
        ],
    }


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
