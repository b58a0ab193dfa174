"""The two-fidelity promotion gate: significant at the search budget and at the longer one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from darwin_bot.config import from_dict
from darwin_bot.core import Budget
from darwin_bot.core.confirm import ConfirmSpec, Verdict, promotion
from darwin_bot.errors import ConfigError

BASE = [10.0, 10.02, 9.98]
BETTER = [9.5, 9.52, 9.48]


def test_better_at_the_search_budget_but_not_at_the_confirmation_promotes_nothing() -> None:
    d = promotion(BETTER, BASE, [8.0, 8.02, 7.98], [7.9, 7.92, 7.88], 0.05, confirm_runs=3)
    assert d.verdict is Verdict.FAILED_CONFIRMATION and not d.promote
    assert "better at the search budget but not at the confirmation budget" in d.reason
    # both gains and both p-values are in the record
    out = d.to_dict()
    assert out["search"]["p_value"] < 0.05 and out["confirm"]["p_value"] > 0.05
    assert out["search"]["effect_size"] > 0 > out["confirm"]["effect_size"]


def test_significant_at_both_budgets_promotes_and_says_both() -> None:
    d = promotion(BETTER, BASE, [7.5, 7.52, 7.48], [7.9, 7.92, 7.88], 0.05, confirm_runs=3)
    assert d.promote and d.reason.startswith("passed at both budgets")
    assert "search budget perplexity +5.00%" in d.reason and "confirmation budget" in d.reason


def test_no_confirmation_before_the_search_gate_and_none_configured() -> None:
    lost = promotion(BASE, BETTER, None, None, 0.05, confirm_runs=3)
    assert lost.verdict is Verdict.FAILED_SEARCH and lost.confirm is None
    off = promotion(BETTER, BASE, None, None, 0.05, confirm_runs=None)
    assert off.promote and off.confirm is None


def test_missing_confirmation_runs_wait_and_never_promote() -> None:
    d = promotion(BETTER, BASE, [7.5], [7.9, 7.92, 7.88], 0.05, confirm_runs=3)
    assert d.verdict is Verdict.AWAITING_CONFIRMATION and not d.promote
    assert "1/3 candidate, 3/3 baseline" in d.reason


def test_a_failed_confirmation_run_never_promotes() -> None:
    d = promotion(BETTER, BASE, [7.5, float("nan"), 7.4], [7.9, 7.92, 7.88], 0.05, confirm_runs=3)
    assert d.verdict is Verdict.FAILED_CONFIRMATION


def test_confirm_spec_from_the_config() -> None:
    cfg = from_dict({"budget": {"confirm_iters": 500, "confirm_repeats": 4}})
    spec = ConfirmSpec.from_config(cfg.budget)
    assert spec == ConfirmSpec(Budget(iters=500), 4, "tiny")
    assert ConfirmSpec.from_config(from_dict({}).budget).budget is None
    assert ConfirmSpec.from_config(SimpleNamespace(repeats=3, preset="tiny")).budget is None
    with pytest.raises(ConfigError, match="at most one of budget.confirm_iters"):
        from_dict({"budget": {"confirm_iters": 5, "confirm_seconds": 1.0}})
    with pytest.raises(ConfigError, match="confirm_repeats 2"):
        from_dict({"budget": {"confirm_iters": 5, "confirm_repeats": 1}})


def test_select_with_a_confirmation_keeps_the_previous_champion_when_it_fails() -> None:
    from darwin_bot.core import Confirmation, Metrics, Previous, Row, Rules
    from darwin_bot.core import generation as gen

    def row(agent: str, fitness: float) -> Row:
        return Row(
            agent, 1, ("seed",), fitness=fitness, metrics=Metrics(2.0, 9.5, 0.1, 1e3, 1.0, 1.0)
        )

    rows = [row("new", 0.05), row("old", 0.01), row("other", 0.0)]
    rules = Rules(population=4, survivors=1, significance=0.05)
    kwargs = dict(
        baseline=BASE, samples={"new": BETTER}, previous=Previous(("old",), "old"),
        alive=frozenset({"new", "old", "other"}), rules=rules,
    )  # fmt: skip
    plain = gen.select(rows, **kwargs)  # type: ignore[arg-type]
    assert plain.champion == "new" and plain.promotion is None  # confirmation off: as before
    worse = Confirmation(3, {"new": [8.0, 8.02, 7.98]}, [7.9, 7.92, 7.88])
    out = gen.select(rows, **kwargs, confirm=worse)  # type: ignore[arg-type]
    assert out.champion is None and out.gate is not None and out.gate.passed
    assert out.promotion is not None and out.promotion.verdict is Verdict.FAILED_CONFIRMATION
    assert out.keep == ("new", "old")  # the old champion stays: nothing beat it at both budgets
    better = Confirmation(3, {"new": [7.5, 7.52, 7.48]}, [7.9, 7.92, 7.88])
    assert gen.select(rows, **kwargs, confirm=better).champion == "new"  # type: ignore[arg-type]
