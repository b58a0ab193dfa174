"""The trusted curve for real: a program that saves on time, and one that saves late and
inflates its reported tokens, through the real harness and sandbox."""

from __future__ import annotations

import math

import pytest

from darwin_bot.config import FitnessConfig
from darwin_bot.core.results import EvalResult
from darwin_bot.engine.rows import scored_row

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.usefixtures("bwrap")]


def test_late_checkpoints_count_late_and_inflated_tokens_rank_for_nothing(make_tree, evaluate):
    runs = {}
    for mode in ("on time", "late"):
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
