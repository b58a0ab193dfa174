"""The pure parts of benchmarks/transfer.py: rank correlation, false negatives, rung losses, replay."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "transfer.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_transfer", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def runs_of(table: dict[str, dict[int, list[float]]]) -> dict:
    return {
        a: {f: [{"perplexity": p} for p in ps] for f, ps in by.items()} for a, by in table.items()
    }


# The seed and four candidates at 1x and 5x (two seeds each). "late" is worse than the seed
# at 1x and clearly better at 5x: the false negative a short search makes.
TABLE = {
    "seed": {1: [13.0, 13.1], 5: [10.0, 10.1]},
    "early": {1: [12.0, 12.1], 5: [10.05, 10.1]},
    "late": {1: [13.5, 13.6], 5: [8.0, 8.1]},
    "good": {1: [12.5, 12.6], 5: [9.0, 9.1]},
    "bad": {1: [14.0, 14.1], 5: [11.0, 11.1]},
}


def test_spearman(bench) -> None:
    assert bench.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert bench.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert bench.spearman([1, 2], [1, 2]) is None  # too few pairs


def test_budget_stats_count_false_negatives_and_rung_losses(bench) -> None:
    report = bench.summarize(runs_of(TABLE), ref=5, alpha=0.05)
    one = report["budgets"]["1"]
    assert one["beat_seed"] == 2  # early, good
    assert one["significant_at_ref"] == 2  # late, good (early is level with the seed at 5x)
    assert one["false_negatives"] == ["late"] and one["false_negative_rate"] == 0.5
    assert one["false_positives"] == ["early"]  # 10.075 at 5x, the seed 10.05
    # keeping the best half at 1x (early, good) loses the 5x best (late): 9.05 vs 8.05
    half = one["keep"]["0.50"]
    assert half["kept_best"] is False and half["loss_pct"] == pytest.approx(12.42, abs=0.01)
    assert report["budgets"]["5"]["spearman_vs_ref"] == pytest.approx(1.0)
    assert one["spearman_vs_ref"] == pytest.approx(0.1)  # 1 - 6 * 18 / (5 * 24)


def test_replay_judges_each_pick_on_a_run_it_never_saw(bench, monkeypatch) -> None:
    monkeypatch.setattr(
        bench,
        "REPLAYS",
        (("flat 1x", (1,), 0.5, 4), ("flat 5x", (5,), 0.5, 4), ("halving", (1, 5), 0.5, 4)),
    )
    out = bench.replay(runs_of(TABLE), ref=5)
    assert out["seed_ref_ppl"] == 10.1
    s = out["schedules"]
    assert s["flat 1x"]["mean_ref_ppl"] == pytest.approx(10.1)  # picks early (12.0 at 1x)
    assert s["flat 5x"]["mean_ref_ppl"] == pytest.approx(8.1)  # picks late
    assert s["halving"]["mean_ref_ppl"] == pytest.approx(9.1)  # early and good go on; good wins
    assert (s["flat 1x"]["cost_units"], s["flat 5x"]["cost_units"]) == (4, 20)
    assert s["halving"]["cost_units"] == 4 + 2 * 5
    assert s["flat 5x"]["picks_pool_best_share"] == 1.0


def test_parse_args_checks_the_budgets(bench, capsys) -> None:
    args = bench.parse_args(["--factors", "5,1,2", "--thin", "1", "--sparse", "10"])
    assert args.factors == [1, 2, 5] and args.thin == {1} and args.sparse == {10}
    for argv in (["--factors", "1,2"], ["--thin", "5"], ["--factors", "1,x"], ["--repeats", "1"]):
        with pytest.raises(SystemExit) as err:
            bench.parse_args(argv)
        assert err.value.code == 2
    assert "error:" in capsys.readouterr().err
