"""The trusted curve for real: a program that saves on time, one that saves late and
inflates its reported tokens, and one that sleeps before its last write, through the real
harness and sandbox."""

from __future__ import annotations

import dataclasses
import math

import pytest

from darwin_bot.config import FitnessConfig
from darwin_bot.core import Budget, EvalResult
from darwin_bot.engine.rows import scored_row
from darwin_bot.evaluate import curve as curve_mod

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.usefixtures("bwrap")]


def test_late_checkpoints_count_late_and_inflated_tokens_rank_for_nothing(make_tree, evaluate):
    runs = {}
    for mode in ("on time", "late", "sleepy"):
        tree = make_tree("train_curve.py", target=mode, timeout_s=240.0)
        runs[mode] = evaluate(tree, "--iters", "20", "--fixed-windows").result
    honest, liar = EvalResult.from_dict(runs["on time"]), EvalResult.from_dict(runs["late"])
    assert honest.status == liar.status == "ok", liar.reason + liar.log_tail
    assert honest.metrics and liar.metrics
    on_time = honest.extra["curve"]["points"]
    late = liar.extra["curve"]["points"]
    assert [p["requested"] for p in on_time] == [p["requested"] for p in late]
    assert [p["requested"] for p in late] == [0.25, 0.5, 0.75, None]
    assert all(math.isfinite(p["val_loss"]) for p in on_time + late)
    assert on_time[0]["val_loss"] > on_time[-1]["val_loss"]  # 5 of 20 steps: not as far
    # the late program's "early" checkpoints hold its final weights: the harness's clock
    # puts them where it saw them, at the end of its run, not at the fractions it claims
    assert all(p["val_loss"] == pytest.approx(liar.metrics.val_loss) for p in late)
    assert all(p["budget_fraction"] >= 0.8 for p in late)
    assert late[0]["budget_fraction"] > on_time[0]["budget_fraction"]
    # its reported tokens are 38x: MFU (reported) is 38x, and nothing ranked moves
    assert liar.metrics.mfu == pytest.approx(38 * honest.metrics.mfu, rel=0.5)
    assert liar.metrics.val_loss == honest.metrics.val_loss  # the same training, same windows
    base = honest.metrics
    rows = [
        scored_row(a, 1, ["seed"], [r], base, FitnessConfig())
        for a, r in (("honest", honest), ("liar", liar))
    ]
    assert rows[0].fitness == rows[1].fitness
    assert rows[1].time_to_loss is not None and rows[1].time_to_loss >= 0.8
    _sleeping_before_the_last_write_gains_nothing(honest, EvalResult.from_dict(runs["sleepy"]))


def _sleeping_before_the_last_write_gains_nothing(honest: EvalResult, sleepy: EvalResult) -> None:
    """6 s of sleep before model.pt stretch the run's wall time, not the CPU time the points
    are placed by: the same curve as the honest run's, no sooner to the seed's loss."""
    assert sleepy.status == "ok", sleepy.reason + sleepy.log_tail
    assert sleepy.metrics and honest.metrics
    on_time, slept = honest.extra["curve"], sleepy.extra["curve"]
    assert slept["points"][-1]["wall_s"] - slept["points"][-2]["wall_s"] > 5.8  # it slept
    assert (
        slept["axis"]
        == on_time["axis"]
        == "share of the run's CPU time (at least the fraction asked)"
    )
    assert [p["val_loss"] for p in slept["points"]] == [p["val_loss"] for p in on_time["points"]]
    for a, b in zip(on_time["points"][:-1], slept["points"][:-1], strict=True):
        assert b["cpu_s"] is not None and b["budget_fraction"] == pytest.approx(
            a["budget_fraction"], abs=0.08
        )
        # wall time would have pulled the point down to the fraction asked for
        assert b["budget_fraction"] > b["requested"] + 0.1
    target = dataclasses.replace(honest.metrics, val_loss=slept["points"][1]["val_loss"])
    rows = [
        scored_row(a, 1, ["seed"], [r], target, FitnessConfig())
        for a, r in (("honest", honest), ("sleepy", sleepy))
    ]
    assert rows[0].time_to_loss is not None and rows[1].time_to_loss is not None
    assert rows[1].time_to_loss >= rows[0].time_to_loss - 0.08
    # the same points on the wall clock (evaluator version 5's axis): the pause paid there
    by_wall = [_wall_fractions(c["points"]) for c in (on_time, slept)]
    assert by_wall[1][1] < by_wall[0][1] - 0.05


def _wall_fractions(points: list[dict]) -> list[float]:
    end = curve_mod.Clock(points[-1]["wall_s"])
    return [
        curve_mod.place(
            curve_mod.Axis.WALL, Budget(iters=20), curve_mod.Clock(p["wall_s"]), p["requested"], end
        )
        for p in points
    ]
