"""The search schedule's pure logic: who advances, how rungs compare, what a rung costs."""

from __future__ import annotations

import pytest

from darwin_bot.core import Budget, Row, rank
from darwin_bot.core.schedule import (
    Schedule,
    ScheduleKind,
    advance,
    entrants,
    standing,
    tiers,
)

HALVING = Schedule(ScheduleKind.HALVING, (1, 2, 5), 0.5)
AGENTS = ["a", "b", "c", "d"]


def test_advance_takes_the_best_by_fitness_and_never_a_failed_run() -> None:
    scores = {"a": 0.01, "b": None, "c": 0.05, "d": 0.05, "e": float("-inf")}
    assert advance(scores, 2) == ["c", "d"]  # a tie goes by name
    assert advance(scores, 10) == ["c", "d", "a"]  # a failure never advances, even with room
    assert advance({}, 3) == []


def test_entrants_halve_per_rung_and_wait_for_every_result_below() -> None:
    assert entrants(HALVING, [], AGENTS) == [AGENTS]
    rung0 = {"a": 0.01, "b": 0.04, "c": 0.03, "d": None}
    assert entrants(HALVING, [rung0], AGENTS) == [AGENTS, ["b", "c"]]
    # one result of rung 1 is missing: rung 2's entrant is not known yet
    assert entrants(HALVING, [rung0, {"b": 0.02}], AGENTS) == [AGENTS, ["b", "c"]]
    # rung 1 decides by rung 1's results: c overtakes b there
    assert entrants(HALVING, [rung0, {"b": 0.02, "c": 0.06}], AGENTS)[2] == ["c"]
    # a rung-0 result missing stops everything above it
    assert entrants(HALVING, [{"a": 0.5, "b": 0.4}], AGENTS) == [AGENTS]


def test_standing_ranks_by_rung_reached_and_compares_only_within_a_rung() -> None:
    # d has by far the best number, but at rung 0, where it stopped (its rung-0 entry was
    # worse than b's and c's there); a rung-2 result is never compared with a rung-0 one.
    rung0 = {"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.02}
    rung1 = {"b": 0.02, "c": 0.06, "d": 0.9}  # d's rung-1 run is not an entrant's: ignored
    rung2 = {"c": -0.01}
    results = [rung0, rung1, rung2]
    assert tiers(HALVING, results, AGENTS) == {"a": 0, "b": 1, "c": 2, "d": 0}
    assert standing(HALVING, results, AGENTS) == ["c", "b", "d", "a"]


def test_a_failure_at_a_rung_stands_after_every_working_agent() -> None:
    results = [{"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.02}, {"b": None, "c": 0.01}]
    assert standing(HALVING, results, AGENTS) == ["c", "d", "a", "b"]
    assert entrants(HALVING, results, AGENTS)[2] == ["c"]


def test_a_flat_schedule_has_one_rung_at_the_search_budget() -> None:
    flat = Schedule()
    assert flat.top == 0 and flat.budget(Budget(iters=100), 0) == Budget(iters=100)
    assert entrants(flat, [{"a": 0.1}], ["a", "b"]) == [["a", "b"]]
    assert standing(flat, [{"a": 0.1, "b": 0.2}], ["a", "b"]) == ["b", "a"]
    assert flat.cost(8) == 8


def test_rung_budgets_and_cost() -> None:
    assert HALVING.budget(Budget(iters=100), 2) == Budget(iters=500)
    assert HALVING.budget(Budget(seconds=60.0), 1) == Budget(seconds=120.0)
    assert [HALVING.advancing(n) for n in (0, 1, 3, 8)] == [0, 1, 2, 4]
    assert HALVING.cost(8) == 8 * 1 + 4 * 2 + 2 * 5


@pytest.mark.parametrize("rungs,keep", [((), 0.5), ((1, 1), 0.5), ((2, 1), 0.5), ((1, 2), 1.0)])
def test_a_bad_schedule_is_refused(rungs, keep) -> None:
    with pytest.raises(ValueError):
        Schedule(ScheduleKind.HALVING, rungs, keep)


def test_rank_puts_a_higher_rung_first_and_keeps_rule_1_within_a_rung() -> None:
    rows = [
        Row("low", 1, ("seed",), fitness=0.5),
        Row("high-worse", 1, ("seed",), fitness=0.01),
        Row("high-better", 1, ("seed",), fitness=0.02),
        Row("broken", 1, ("seed",), status="failed"),  # type: ignore[arg-type]
    ]
    tier = {"low": 0, "high-worse": 2, "high-better": 2, "broken": 2}
    ranked = [r.agent for r in rank(rows, tier)]
    assert ranked == ["high-better", "high-worse", "low", "broken"]
    assert [r.agent for r in rank(rows)][0] == "low"  # without tiers: fitness alone
