"""The cost limit on CPU time: what a busy machine does not change, and what it still stops."""

from __future__ import annotations

from typing import Any

from darwin_bot.config import FitnessConfig
from darwin_bot.core import (
    CONTENTION_SLACK,
    Budget,
    Cost,
    EvalResult,
    Metrics,
    Row,
    Status,
    apply_cost_limit,
)
from darwin_bot.engine import rows
from darwin_bot.publish.report import leaderboard_markdown

BASE = Cost(train_wall_s=20.0, score_wall_s=10.0, train_cpu_s=16.0, score_cpu_s=8.0)


def run(train_wall: float, train_cpu: float, score_cpu: float = 8.0, **extra: Any) -> EvalResult:
    metrics = Metrics(1.0, 2.718, 0.0, 0.0, 0.0, 0.0, train_wall, 10.0, train_cpu, score_cpu)
    return EvalResult(
        status=Status.OK, reason="", metrics=metrics, device="cpu", seed=0,
        budget=Budget(iters=100), evaluator_version="4", tree_hash="t",
        extra={"train_wall_s": train_wall, "score_wall_s": 10.0, "train_cpu_s": train_cpu,
               "score_cpu_s": score_cpu, "cost_measure": "cpu", **extra},
    )  # fmt: skip


def test_a_busy_machine_stretches_the_wall_clock_but_not_the_charge():
    slowed = apply_cost_limit(run(train_wall=80.0, train_cpu=17.0), BASE, 1.5)  # 4x the wall
    assert slowed.status is Status.OK, slowed.reason
    assert slowed.extra["cost_measure"] == "cpu"
    assert slowed.extra["cost_ratio"] == round((17.0 + 8.0) / (16.0 + 8.0), 4)
    assert slowed.extra["baseline_train_cpu_s"] == 16.0


def test_more_work_is_over_budget_however_fast_the_clock():
    more = apply_cost_limit(run(train_wall=21.0, train_cpu=40.0), BASE, 1.5)
    assert more.status is Status.OVER_BUDGET
    assert "baseline's mean CPU time" in more.reason and "2.00x" in more.reason
    assert more.metrics is not None and more.metrics.perplexity == 2.718  # kept


def test_work_moved_into_load_is_charged_as_scoring_cpu():
    moved = apply_cost_limit(run(train_wall=2.0, train_cpu=1.0, score_cpu=60.0), BASE, 1.5)
    assert moved.status is Status.OVER_BUDGET and "load()" in moved.reason


def test_a_run_that_mostly_waited_gets_the_measured_room_and_says_so():
    ratio = 1.6  # over 1.5x, within 1.5 x CONTENTION_SLACK
    cpu = ratio * (16.0 + 8.0) - 8.0
    assert ratio < 1.5 * CONTENTION_SLACK
    calm = apply_cost_limit(run(30.0, cpu, contended=False), BASE, 1.5)
    assert calm.status is Status.OVER_BUDGET
    waited = apply_cost_limit(run(300.0, cpu, contended=True), BASE, 1.5)
    assert waited.status is Status.OK, waited.reason
    far = apply_cost_limit(run(300.0, 3 * 24.0 - 8.0, contended=True), BASE, 1.5)
    assert far.status is Status.OVER_BUDGET and "measured under contention" in far.reason


def test_a_gpu_run_or_an_old_result_is_charged_its_wall_time():
    gpu = run(train_wall=40.0, train_cpu=16.0, cost_measure="wall")
    assert Cost.of(gpu.extra) == Cost(40.0, 10.0)  # its CPU figure is not the charge
    judged = apply_cost_limit(gpu, BASE, 1.5)
    assert judged.extra["cost_measure"] == "wall" and judged.status is Status.OVER_BUDGET
    v3 = {"status": "ok", "reason": "", "device": "cpu", "seed": 0, "budget": {"iters": 100},
          "evaluator_version": "3", "tree_hash": "t", "preset": "tiny",
          "metrics": {"val_loss": 1.0, "perplexity": 2.7, "mfu": 0.0, "tokens_per_s": 1.0,
                      "train_seconds": 1.0, "peak_mem_mb": 1.0, "train_wall_s": 20.0,
                      "score_wall_s": 10.0},
          "extra": {"train_wall_s": 20.0, "score_wall_s": 10.0}}  # fmt: skip
    old = EvalResult.from_dict(v3)  # a cached result from before version 4 still reads
    assert old.metrics is not None and old.metrics.train_cpu_s == 0.0
    assert Cost.of(old.extra) == Cost(20.0, 10.0)
    assert apply_cost_limit(old, BASE, 1.5).extra["cost_measure"] == "wall"


def test_an_over_budget_row_keeps_its_measured_perplexity_in_the_leaderboard():
    over = apply_cost_limit(run(train_wall=21.0, train_cpu=40.0), BASE, 1.5)
    base_metrics = Metrics(1.0, 2.9, 0.0, 0.0, 0.0, 0.0, 20.0, 10.0, 16.0, 8.0)
    row = rows.scored_row("a1", 1, ["seed"], [over], base_metrics, FitnessConfig())
    assert row.status is Status.OVER_BUDGET and not row.ok
    assert row.metrics is not None and row.metrics.perplexity == 2.718
    assert row.cost_ratio == over.extra["cost_ratio"]
    table = leaderboard_markdown([Row.from_json(row.to_json())], 2.9)  # as stored and read back
    assert "over_budget" in table and "2.718" in table and "failed" in table
    from darwin_bot.publish.publisher import _measured  # the PR's status line beside the reason

    assert _measured(row, 2.9) == " (measured: ppl 2.718, -6.28%)"
    failed = rows.scored_row("a2", 1, ["seed"], [], base_metrics, FitnessConfig())
    assert failed.metrics is None and isinstance(failed, Row)
