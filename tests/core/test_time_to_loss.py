"""Time to loss from trusted curves, its fitness term, and why reported tokens cannot move a rank."""

from __future__ import annotations

import dataclasses

import pytest

from darwin_bot.config import FitnessConfig
from darwin_bot.core import Budget, EvalResult, Metrics, Status
from darwin_bot.core import fitness as fit
from darwin_bot.core import time_to_loss as ttl
from darwin_bot.engine.rows import scored_row


def _curve(*points: tuple[float, float, float | None]) -> dict:
    return {
        "curve": {
            "points": [
                {"budget_fraction": f, "wall_s": w, "val_loss": v, "requested": None}
                for f, w, v in points
            ]
        }
    }


def test_interpolates_between_the_last_point_above_and_the_first_at_or_below():
    points = ttl.points_of(_curve((0.25, 10, 3.0), (0.5, 20, 2.6), (0.75, 30, 2.2), (1.0, 40, 2.1)))
    reached = ttl.time_to_loss(points, 2.4)
    assert reached is not None
    assert reached.fraction == pytest.approx(0.625)  # halfway from 2.6 to 2.2
    assert reached.wall_s == pytest.approx(25.0)


def test_never_before_the_first_point_and_none_when_not_reached():
    points = ttl.points_of(_curve((0.3, 5, 2.0), (1.0, 9, 1.9)))
    assert ttl.time_to_loss(points, 2.5) == ttl.Reached(0.3, 5)  # nothing measured before it
    assert ttl.time_to_loss(points, 1.5) is None
    assert ttl.fitness_fraction(None) == ttl.NOT_REACHED_FRACTION == 1.0


def test_unscored_and_malformed_points_are_left_out_and_points_sorted():
    raw = _curve((1.0, 9, 2.0), (0.5, 4, None), (0.25, 2, float("nan")), (0.4, 3, 2.5))
    raw["curve"]["points"].append({"budget_fraction": "x"})
    assert [p.fraction for p in ttl.points_of(raw)] == [0.4, 1.0]
    assert ttl.points_of({}) == [] and ttl.points_of({"curve": "junk"}) == []


def test_over_runs_counts_the_runs_that_reach_it_and_ranks_the_others_at_the_end():
    runs = [_curve((0.5, 5, 2.0), (1.0, 9, 1.8)), _curve((0.5, 5, 2.5), (1.0, 9, 2.2)), {}]
    got = ttl.over_runs(runs, 2.0)
    assert got is not None and (got.reached, got.runs) == (1, 2)
    assert got.mean_fraction == 0.5
    assert got.fitness_fraction == pytest.approx((0.5 + 1.0) / 2)
    assert ttl.over_runs([{}, {}], 2.0) is None


def _metrics(val_loss: float, mfu: float = 0.014) -> Metrics:
    return Metrics(val_loss, 2.718281828**val_loss, mfu, 1e4, 5.0, 100.0, 10.0, 2.0, 10.0, 2.0)


def test_fitness_adds_the_time_to_loss_term_only_with_its_weight():
    base = _metrics(2.0)
    m = _metrics(1.9)
    plain = fit.fitness(m, base, FitnessConfig())
    assert fit.fitness(m, base, FitnessConfig(), 0.5) == plain  # default weight 0
    weighted = FitnessConfig(time_to_loss_weight=0.2)
    assert fit.fitness(m, base, weighted, 0.5) == pytest.approx(plain + 0.2 * 0.5)
    assert fit.fitness(m, base, weighted, None) == pytest.approx(plain)  # no curve: no term


def _result(tokens_seen: int, mfu: float, curve: dict, val_loss: float = 1.9) -> EvalResult:
    metrics = dataclasses.replace(_metrics(val_loss), mfu=mfu, tokens_per_s=tokens_seen / 5.0)
    extra = {"tokens_seen": tokens_seen, "train_wall_s": 10.0, **curve}
    return EvalResult(Status.OK, "", metrics, "cpu", 0, Budget(iters=100), "5", "h", extra=extra)


@pytest.mark.parametrize("weights", [FitnessConfig(), FitnessConfig(time_to_loss_weight=1.0)])
def test_inflated_reported_tokens_gain_nothing_in_what_is_ranked_by_default(weights):
    """The same run, once honest, once claiming 38x the tokens (MFU 0.535 vs 0.014)."""
    curve = _curve((0.4, 4, 2.3), (0.7, 7, 1.95), (1.0, 10, 1.9))
    honest = _result(76_800, 0.014, curve)
    liar = _result(76_800 * 38, 0.535, curve)
    base = _metrics(2.0)
    rows = [scored_row(a, 1, ["seed"], [r], base, weights) for a, r in (("h", honest), ("l", liar))]
    assert rows[1].metrics is not None and rows[1].metrics.mfu == 0.535  # reported, shown
    assert rows[0].fitness == rows[1].fitness  # ... and ranked on nothing it moves
    assert rows[0].time_to_loss == rows[1].time_to_loss == pytest.approx(0.4 + 0.3 * 0.3 / 0.35)
    # opting in to MFU is what lets the claim count
    opted = FitnessConfig(mfu_weight=1.0)
    assert fit.fitness(liar.metrics, base, opted) > fit.fitness(honest.metrics, base, opted)


def test_a_row_keeps_its_time_to_loss_through_json():
    curve = _curve((0.5, 5, 1.95), (1.0, 9, 1.9))
    row = scored_row("a", 1, ["seed"], [_result(100, 0.01, curve)], _metrics(2.0), FitnessConfig())
    assert row.time_to_loss == 0.5
    back = type(row).from_json(row.to_json())
    assert back.time_to_loss == 0.5 and back == row
    worse = scored_row(
        "b",
        1,
        ["seed"],
        [_result(100, 0.01, _curve((1.0, 9, 2.1)), 2.1)],
        _metrics(2.0),
        FitnessConfig(),
    )
    assert worse.time_to_loss is None and "time_to_loss" not in (worse.to_json()["metrics"] or {})
