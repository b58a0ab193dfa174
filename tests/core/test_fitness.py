"""Fitness, repeat summaries, the t distribution and the champion gate."""

from __future__ import annotations

import math
import random

import pytest

from darwin_bot.config import FitnessConfig
from darwin_bot.core import Budget, Cost, EvalResult, Metrics, Status
from darwin_bot.core import fitness as fit
from darwin_bot.errors import StateError


def metrics(ppl: float, mfu: float = 0.1) -> Metrics:
    return Metrics(
        val_loss=math.log(ppl) if ppl > 0 and math.isfinite(ppl) else ppl,
        perplexity=ppl,
        mfu=mfu,
        tokens_per_s=1000.0,
        train_seconds=1.0,
        peak_mem_mb=10.0,
    )


def result(
    ppl: float | None, seed: int = 0, status: Status = Status.OK, reason: str = ""
) -> EvalResult:
    return EvalResult(
        status=status,  # type: ignore[arg-type]
        reason=reason,
        metrics=metrics(ppl) if ppl is not None else None,
        device="cpu",
        seed=seed,
        budget=Budget(iters=10),
        evaluator_version="test",
        tree_hash="t",
    )


BASE = metrics(10.0, 0.2)
CFG = FitnessConfig(perplexity_weight=1.0, mfu_weight=0.25)


# ---------------------------------------------------------------- fitness


def test_fitness_is_weighted_relative_change() -> None:
    # 10% lower perplexity, 50% higher MFU: 1.0 * 0.1 + 0.25 * 0.5
    assert fit.fitness(metrics(9.0, 0.3), BASE, CFG) == pytest.approx(0.225)
    assert fit.fitness(BASE, BASE, CFG) == 0.0
    assert fit.fitness(metrics(11.0, 0.2), BASE, CFG) == pytest.approx(-0.1)


@pytest.mark.parametrize(
    "bad", [None, metrics(math.nan), metrics(math.inf), metrics(9.0, math.nan)]
)
def test_failures_score_failed(bad: Metrics | None) -> None:
    assert fit.fitness(bad, BASE, CFG) == fit.FAILED
    assert fit.is_failed(fit.fitness(bad, BASE, CFG))


def test_zero_baseline_mfu_does_not_divide_by_zero() -> None:
    value = fit.fitness(metrics(10.0, 0.0), metrics(10.0, 0.0), CFG)
    assert value == 0.0


def test_unusable_baseline_is_a_state_error() -> None:
    with pytest.raises(StateError, match="baseline perplexity"):
        fit.fitness(metrics(9.0), metrics(math.nan), CFG)


def test_rank_key_puts_failures_last_and_breaks_ties_by_agent() -> None:
    entries = [("b", 0.1), ("a", 0.1), ("z", fit.FAILED), ("nan", math.nan), ("c", 0.3), ("d", -5)]
    order = [a for a, f in sorted(entries, key=lambda e: fit.rank_key(e[1], e[0]))]
    assert order == ["c", "a", "b", "d", "nan", "z"]


# ---------------------------------------------------------------- summaries


def test_summarize_means_and_sample_std() -> None:
    summary = fit.summarize([result(9.0, 0), result(11.0, 1), result(10.0, 2)])
    assert summary.ok and summary.n == 3 and summary.n_ok == 3
    assert summary.perplexity is not None
    assert summary.perplexity.mean == pytest.approx(10.0)
    assert summary.perplexity.std == pytest.approx(1.0)  # ddof=1
    mean = summary.mean_metrics()
    assert mean is not None and mean.perplexity == pytest.approx(10.0)


def test_one_failed_repeat_fails_the_candidate() -> None:
    summary = fit.summarize([result(9.0, 0), result(None, 1, Status.TIMEOUT, "ran out of time")])
    assert summary.failed
    assert summary.mean_metrics() is None
    assert "seed 1" in summary.reason and "ran out of time" in summary.reason
    # the good run is still described
    assert summary.values("perplexity") == [9.0]
    assert fit.fitness(summary.mean_metrics(), BASE, CFG) == fit.FAILED


def test_no_runs_is_failed() -> None:
    assert fit.summarize([]).failed


# ---------------------------------------------------------------- t distribution


@pytest.mark.parametrize(
    ("t", "df", "upper_tail"),
    [
        (2.0, 10, 0.03669401738537),  # the value from the brief / t tables
        (1.812461, 10, 0.05),  # t_{0.95, 10}
        (2.228139, 10, 0.025),  # t_{0.975, 10}
        (12.7062, 1, 0.025),  # t_{0.975, 1}
        (2.570582, 5, 0.025),  # t_{0.975, 5}
        (2.055529, 26, 0.025),  # t_{0.975, 26}
        (0.0, 7, 0.5),
    ],
)
def test_t_cdf_against_table_values(t: float, df: float, upper_tail: float) -> None:
    assert 1.0 - fit.student_t_cdf(t, df) == pytest.approx(upper_tail, abs=2e-6)
    assert fit.student_t_cdf(-t, df) == pytest.approx(upper_tail, abs=2e-6)


def test_t_cdf_matches_closed_forms_for_df_1_and_2() -> None:
    rng = random.Random(1)
    for _ in range(50):
        t = rng.uniform(-30, 30)
        cauchy = 0.5 + math.atan(t) / math.pi
        df2 = 0.5 + t / (2.0 * math.sqrt(2.0 + t * t))
        assert fit.student_t_cdf(t, 1) == pytest.approx(cauchy, abs=1e-12)
        assert fit.student_t_cdf(t, 2) == pytest.approx(df2, abs=1e-12)


def test_t_cdf_tends_to_the_normal_and_handles_fractional_df() -> None:
    assert fit.student_t_cdf(1.959964, 1e7) == pytest.approx(0.975, abs=1e-6)
    assert fit.student_t_cdf(1.959964, math.inf) == pytest.approx(0.975, abs=1e-6)
    # a reference implementation gives 0.728297528405226 for t=0.7, df=2.5
    assert fit.student_t_cdf(0.7, 2.5) == pytest.approx(0.728297528405226, abs=1e-12)
    with pytest.raises(ValueError, match="degrees of freedom"):
        fit.student_t_cdf(1.0, 0)


# ---------------------------------------------------------------- tests


def test_welch_matches_reference_values() -> None:
    # reference (scipy.stats.ttest_ind, equal_var=False, alternative="less"):
    # t=-2.1532216876958206, df=5.877472127290045, p=0.03786123857106891
    res = fit.welch_one_sided([1, 2, 3, 4], [3, 4, 5, 6.5], "less")
    assert res.method == "welch"
    assert res.statistic == pytest.approx(-2.1532216876958206, rel=1e-12)
    assert res.df == pytest.approx(5.877472127290045, rel=1e-12)
    assert res.p_value == pytest.approx(0.03786123857106891, rel=1e-9)
    greater = fit.welch_one_sided([1, 2, 3, 4], [3, 4, 5, 6.5], "greater")
    assert greater.p_value == pytest.approx(1.0 - res.p_value, rel=1e-9)


def test_welch_with_zero_variance_uses_the_permutation_test() -> None:
    res = fit.welch_one_sided([1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0])
    assert res.method.startswith("permutation")
    assert res.p_value == pytest.approx(1 / math.comb(8, 4))
    same = fit.welch_one_sided([3.0, 3.0], [3.0, 3.0])
    assert same.p_value == 1.0


def test_exact_permutation_counts_relabellings() -> None:
    # candidate {1, 2} vs baseline {3, 4}: only the observed labelling has a sum <= 3
    res = fit.permutation_one_sided([1, 2], [3, 4], "less")
    assert res.method == "permutation (exact)"
    assert res.p_value == pytest.approx(1 / 6)
    assert res.statistic == pytest.approx(-2.0)
    assert fit.permutation_one_sided([1, 2], [3, 4], "greater").p_value == pytest.approx(1.0)


def test_monte_carlo_permutation_is_seeded_and_agrees_with_welch() -> None:
    rng = random.Random(7)
    cand = [rng.gauss(9.5, 1.0) for _ in range(12)]
    base = [rng.gauss(10.5, 1.0) for _ in range(12)]
    one = fit.permutation_one_sided(cand, base, seed=3, resamples=4000)
    two = fit.permutation_one_sided(cand, base, seed=3, resamples=4000)
    assert "monte carlo" in one.method
    assert one == two
    welch = fit.welch_one_sided(cand, base)
    assert one.p_value == pytest.approx(welch.p_value, abs=0.03)


# ---------------------------------------------------------------- the gate


def test_better_only_within_noise_is_not_a_champion() -> None:
    baseline = [10.0, 10.4, 9.6, 10.2]
    candidate = [9.9, 10.3, 9.7, 10.1]  # 0.5% better on average, noise is ~3%
    gate = fit.champion_test(candidate, baseline, 0.05)
    assert not gate.passed
    assert gate.p_value is not None and gate.p_value >= 0.05
    assert gate.effect_size is not None and gate.effect_size > 0
    assert "not significant" in gate.reason


def test_clearly_better_is_a_champion() -> None:
    baseline = [10.0, 10.1, 9.9]
    candidate = [9.0, 9.1, 8.9]
    gate = fit.champion_test(candidate, baseline, 0.05)
    assert gate.passed
    assert gate.p_value is not None and gate.p_value < 0.001
    assert gate.effect_size == pytest.approx(0.1)
    assert gate.cohens_d == pytest.approx(10.0)
    assert (gate.n_candidate, gate.n_baseline, gate.method) == (3, 3, "welch")


def test_worse_is_never_a_champion_even_if_significant() -> None:
    gate = fit.champion_test([11.0, 11.1, 10.9], [10.0, 10.1, 9.9], 0.99)
    assert not gate.passed
    assert "no improvement" in gate.reason


def test_single_runs_need_repeats() -> None:
    gate = fit.champion_test([5.0], [10.0, 10.1], 0.05)
    assert not gate.passed and gate.p_value is None
    assert "needs repeats" in gate.reason
    assert gate.effect_size == pytest.approx(1 - 5.0 / 10.05)


def test_failed_run_blocks_the_gate() -> None:
    gate = fit.champion_test([9.0, math.inf, 9.1], [10.0, 10.1, 9.9], 0.05)
    assert not gate.passed and "failed" in gate.reason


def test_zero_variance_gate_is_honest_about_small_samples() -> None:
    # Deterministic runs: 3 vs 3 identical values can reach p = 1/20 at best,
    # which is not below 0.05; 4 vs 4 reaches 1/70.
    three = fit.champion_test([9.0] * 3, [10.0] * 3, 0.05)
    assert not three.passed and three.p_value == pytest.approx(0.05)
    four = fit.champion_test([9.0] * 4, [10.0] * 4, 0.05)
    assert four.passed and four.method.startswith("permutation")
    assert four.cohens_d is None


# ---------------------------------------------------------------- measured cost


def costly(
    wall: float | None, status: Status = Status.OK, score: float | None = None
) -> EvalResult:
    r = result(12.0, status=status)
    extra = {} if wall is None else {"train_wall_s": wall}
    if score is not None:
        extra["score_wall_s"] = score
    return EvalResult(**{**r.__dict__, "extra": extra})


def test_work_moved_from_training_into_scoring_is_still_paid_for():
    # A model whose load() trains further spends little in training and much in scoring.
    from darwin_bot.core import Status, apply_cost_limit

    base = Cost(10.0, 20.0)
    shifted = apply_cost_limit(costly(2.0, score=60.0), base, max_cost_ratio=1.5)
    assert shifted.status is Status.OVER_BUDGET, shifted.extra
    assert "training and scoring took 2.07x" in shifted.reason and "load()" in shifted.reason
    assert shifted.extra["cost_limit_s"] == 45.0
    honest = apply_cost_limit(costly(12.0, score=24.0), base, max_cost_ratio=1.5)
    assert honest.status is Status.OK and honest.extra["cost_ratio"] == 1.2
    # A seconds budget holds training to 1.05x, but scoring (start-up noise) to 1.5x.
    timed = costly(10.4, score=28.0)
    timed = EvalResult(**{**timed.__dict__, "budget": Budget(seconds=10.0)})
    assert apply_cost_limit(timed, base, 1.5).status is Status.OK  # 38.4 s of 40.5 s
    # Counted alike: a baseline from before scoring was measured compares training only.
    old = apply_cost_limit(costly(12.0, score=60.0), Cost(10.0), max_cost_ratio=1.5)
    assert old.status is Status.OK and old.extra["cost_ratio"] == 1.2
    assert Metrics(1, 1, 0, 0, 0, 0, 12.0, 24.0).cost.ratio(base) == 1.2


def test_a_run_past_the_cost_ratio_is_over_budget_and_says_by_how_much():
    from darwin_bot.core import Status, apply_cost_limit

    over = apply_cost_limit(costly(31.0), Cost(10.0), max_cost_ratio=1.5)
    assert over.status is Status.OVER_BUDGET and not over.ok
    assert "3.10x the baseline's mean wall time (31.0 s vs 10.0 s)" in over.reason
    assert "107% over the 1.5x" in over.reason
    assert over.extra["cost_ratio"] == 3.1 and over.metrics is not None  # kept for the record
    assert fit.summarize([over]).failed  # ranks with the failures
    within = apply_cost_limit(costly(14.9), Cost(10.0), max_cost_ratio=1.5)
    assert within.status is Status.OK and within.extra["cost_ratio"] == 1.49


def test_without_a_baseline_or_a_measurement_the_result_is_unchanged():
    from darwin_bot.core import Status, apply_cost_limit

    for r, base in ((costly(31.0), None), (costly(31.0), Cost(0.0)), (costly(None), Cost(10.0))):
        assert apply_cost_limit(r, base, 1.5) == r
    failed = apply_cost_limit(costly(31.0, status=Status.FAILED), Cost(10.0), 1.5)
    assert failed.status is Status.FAILED and failed.extra["cost_ratio"] == 3.1


def test_metrics_from_before_the_wall_time_was_measured_still_load():
    old = {k: 1.0 for k in ("val_loss", "perplexity", "mfu", "tokens_per_s", "train_seconds",
                            "peak_mem_mb")}  # fmt: skip
    assert Metrics.from_dict(old).train_wall_s == 0.0
    assert FitnessConfig().mfu_weight == 0.0  # MFU is reported: ranking on it is opt-in


def test_a_seconds_budget_is_held_to_the_tighter_ratio():
    from darwin_bot.core import Status, apply_cost_limit

    r = costly(11.0)
    timed = EvalResult(**{**r.__dict__, "budget": Budget(seconds=10.0)})
    assert apply_cost_limit(timed, Cost(10.0), 1.5).status is Status.OVER_BUDGET  # 1.10 > 1.05
    assert apply_cost_limit(r, Cost(10.0), 1.5).status is Status.OK  # an iteration budget: 1.5
    assert apply_cost_limit(timed, Cost(10.0), 1.5, seconds_cost_ratio=1.2).status is Status.OK
