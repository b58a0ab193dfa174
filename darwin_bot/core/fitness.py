"""Fitness, repeat statistics and the champion's significance gate.

Fitness is the DARWIN score: a weighted sum of relative changes against the
baseline, where lower perplexity, higher MFU and an earlier time to loss are better::

    fitness = w_ppl * (base.ppl - m.ppl) / base.ppl
            + w_mfu * (m.mfu - base.mfu) / max(base.mfu, EPS)
            + w_ttl * (1 - time_to_loss)

so the baseline itself scores about 0 and "+0.05" reads "5% better, all weighted".
MFU rests on the token count the program reports (``mfu_weight`` defaults to 0);
time to loss is the trusted one: the budget fraction at which the harness's
held-out curve first reaches the baseline's final loss (:mod:`core.time_to_loss`,
1 when it never does), so the seed, which gets there at its end, adds about 0.
A failed run is a value, :data:`FAILED` (``-inf``), that ranks after every
working candidate; it is never an exception.

Repeats: a candidate evaluated under several seeds is summarized by
:func:`summarize`. **If any repeat fails, the whole candidate is failed**: code
that crashes under one seed in three is not a program we want to promote, and
averaging only the lucky runs would reward it.

The gate: :func:`champion_test` asks "is the candidate's perplexity lower than
the baseline's?" with a one-sided Welch t-test (t-distribution CDF computed
in :mod:`darwin_bot.core.significance`, no scipy). When both samples have
zero variance the t statistic is undefined, so the exact permutation test is
used instead (see :func:`~darwin_bot.core.significance.welch_one_sided`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from darwin_bot.config import FitnessConfig
from darwin_bot.core.results import EvalResult, Metrics
from darwin_bot.core.significance import (  # re-exported: the gate's tests, by their old path
    TestResult,
    cohens_d,
    permutation_one_sided,
    student_t_cdf,
    welch_one_sided,
)
from darwin_bot.errors import StateError

__all__ = [
    "EPS",
    "FAILED",
    "GateResult",
    "MetricSummary",
    "Summary",
    "TestResult",
    "champion_test",
    "fitness",
    "is_failed",
    "permutation_one_sided",
    "rank_key",
    "student_t_cdf",
    "summarize",
    "welch_one_sided",
]

FAILED: float = -math.inf
EPS: float = 1e-12


# ---------------------------------------------------------------- fitness


def fitness(
    metrics: Metrics | None,
    baseline: Metrics,
    cfg: FitnessConfig,
    time_to_loss: float | None = None,
) -> float:
    """The weighted relative improvement over ``baseline``; :data:`FAILED` for a failure.

    ``time_to_loss``: the runs' mean budget fraction to the baseline's loss
    (:func:`core.time_to_loss.over_runs`); None (no curve) adds nothing.

    ``metrics`` is ``None`` for a failed run. Non-finite or non-positive
    perplexity, or non-finite MFU, also counts as failed. A baseline without a
    positive finite perplexity and a finite MFU is a state error: nothing can be
    compared against it.
    """
    if not (math.isfinite(baseline.perplexity) and baseline.perplexity > 0):
        raise StateError(
            f"baseline perplexity must be a positive number, got {baseline.perplexity!r}; "
            "re-evaluate the baseline"
        )
    if not math.isfinite(baseline.mfu):
        raise StateError(
            f"baseline MFU must be finite, got {baseline.mfu!r}; re-evaluate the baseline"
        )
    if metrics is None:
        return FAILED
    if not (math.isfinite(metrics.perplexity) and metrics.perplexity > 0):
        return FAILED
    if not math.isfinite(metrics.mfu):
        return FAILED
    ppl_gain = (baseline.perplexity - metrics.perplexity) / baseline.perplexity
    mfu_gain = (metrics.mfu - baseline.mfu) / max(baseline.mfu, EPS)
    ttl_gain = 0.0 if time_to_loss is None else 1.0 - time_to_loss
    return (
        cfg.perplexity_weight * ppl_gain
        + cfg.mfu_weight * mfu_gain
        + cfg.time_to_loss_weight * ttl_gain
    )


def is_failed(value: float) -> bool:
    """True for :data:`FAILED` and anything else that is not a finite number (NaN too)."""
    return not math.isfinite(value)


def rank_key(fitness_value: float, agent: str) -> tuple[int, float, str]:
    """Sort key, ascending = best first: working before failed, higher fitness first, then agent id.

    Failures (``-inf``, ``NaN``, ``+inf``) all share one bucket after every
    finite fitness, so a NaN can never sort ahead of a real score.
    """
    if is_failed(fitness_value):
        return (1, 0.0, agent)
    return (0, -fitness_value, agent)


# ---------------------------------------------------------------- repeats


@dataclass(frozen=True)
class MetricSummary:
    """Mean and sample standard deviation (ddof=1; 0 for a single run) of one metric."""

    mean: float
    std: float
    n: int
    values: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "n": self.n, "values": list(self.values)}


@dataclass(frozen=True)
class Summary:
    """Repeats of one candidate. ``failed`` if there were no runs or any run failed."""

    n: int
    n_ok: int
    reason: str
    metrics: dict[str, MetricSummary] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.n == 0 or self.n_ok < self.n

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def perplexity(self) -> MetricSummary | None:
        return self.metrics.get("perplexity")

    def values(self, name: str) -> list[float]:
        """Per-run values of one metric over the working runs (empty when none)."""
        summary = self.metrics.get(name)
        return list(summary.values) if summary else []

    def mean_metrics(self) -> Metrics | None:
        """Mean of every metric, for :func:`fitness`; ``None`` when the candidate failed."""
        if self.failed:
            return None
        return Metrics(**{name: self.metrics[name].mean for name in Metrics.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "n_ok": self.n_ok,
            "failed": self.failed,
            "reason": self.reason,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
        }


def _describe(values: Sequence[float]) -> MetricSummary:
    arr = np.asarray(values, dtype=float)
    std = float(arr.std(ddof=1)) if arr.size >= 2 else 0.0
    return MetricSummary(
        mean=float(arr.mean()), std=std, n=int(arr.size), values=tuple(arr.tolist())
    )


def summarize(results: Sequence[EvalResult]) -> Summary:
    """Summarize repeats of one candidate (see the module docstring for the failure rule).

    Means and standard deviations are over the working runs, so a failed
    candidate's summary still shows what its good runs measured.
    """
    ok = [r for r in results if r.ok and r.metrics is not None]
    bad = [r for r in results if not (r.ok and r.metrics is not None)]
    if not results:
        reason = "no runs"
    elif bad:
        first = bad[0]
        detail = first.reason or first.status
        reason = f"{len(bad)} of {len(results)} runs failed (seed {first.seed}: {detail})"
    else:
        reason = ""
    metrics: dict[str, MetricSummary] = {}
    if ok:
        for name in Metrics.__dataclass_fields__:
            metrics[name] = _describe([getattr(r.metrics, name) for r in ok])
    return Summary(n=len(results), n_ok=len(ok), reason=reason, metrics=metrics)


# ---------------------------------------------------------------- the gate


@dataclass(frozen=True)
class GateResult:
    """Whether a candidate may be promoted over the baseline, and why.

    ``effect_size`` is the relative improvement in mean perplexity
    ((baseline - candidate) / baseline; positive is better). ``cohens_d`` uses
    the pooled standard deviation and is ``None`` when that is 0 (undefined).
    """

    passed: bool
    p_value: float | None
    effect_size: float | None
    cohens_d: float | None
    method: str
    n_candidate: int
    n_baseline: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "p_value": self.p_value,
            "effect_size": self.effect_size,
            "cohens_d": self.cohens_d,
            "method": self.method,
            "n_candidate": self.n_candidate,
            "n_baseline": self.n_baseline,
            "reason": self.reason,
        }


def champion_test(
    candidate_ppl: Sequence[float],
    baseline_ppl: Sequence[float],
    alpha: float,
) -> GateResult:
    """The statistical gate: does the candidate have lower perplexity than the baseline?

    Passes only if the one-sided p-value (Welch; permutation when both
    variances are 0) is below ``alpha`` **and** the mean perplexity is lower.
    Fewer than 2 runs on either side never passes ("needs repeats"), and a
    non-finite value (a failed run) on either side never passes.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    c_raw = [float(v) for v in candidate_ppl]
    b_raw = [float(v) for v in baseline_ppl]
    n_c, n_b = len(c_raw), len(b_raw)

    def refuse(reason: str, effect: float | None = None) -> GateResult:
        return GateResult(False, None, effect, None, "none", n_c, n_b, reason)

    for name, vals in (("candidate", c_raw), ("baseline", b_raw)):
        if not all(math.isfinite(v) and v > 0 for v in vals):
            return refuse(
                f"{name} has a failed or invalid run; a failed candidate is never promoted"
            )
    c, b = np.asarray(c_raw), np.asarray(b_raw)
    effect = float((b.mean() - c.mean()) / b.mean()) if n_c and n_b else None
    if n_c < 2 or n_b < 2:
        return refuse(
            f"needs repeats: {n_c} candidate and {n_b} baseline runs, at least 2 each "
            "(set budget.repeats >= 2)",
            effect,
        )
    test = welch_one_sided(c_raw, b_raw, "less")
    improves = float(c.mean()) < float(b.mean())
    passed = improves and test.p_value < alpha
    pct = 100.0 * (effect or 0.0)
    if passed:
        reason = f"passed: perplexity {pct:.2f}% lower, p={test.p_value:.4g} < {alpha:g}"
    elif not improves:
        reason = f"no improvement: mean perplexity is {-pct:.2f}% higher or equal"
    else:
        reason = (
            f"not significant: perplexity {pct:.2f}% lower but p={test.p_value:.4g} >= {alpha:g}"
        )
    return GateResult(
        passed=passed,
        p_value=test.p_value,
        effect_size=effect,
        cohens_d=cohens_d(c, b),
        method=test.method,
        n_candidate=n_c,
        n_baseline=n_b,
        reason=reason,
    )
