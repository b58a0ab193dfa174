"""One-sided significance tests over repeat runs, on ``scipy.stats``.

Welch's t-test, falling back to the exact permutation test when both samples
have zero variance (t is undefined there); the permutation test itself, exact
up to :data:`EXACT_PERMUTATION_LIMIT` relabellings and seeded Monte Carlo
beyond; Cohen's d. What is ours is the policy around the library: the input
checks, the zero-variance fallback and the one-sided framing of "lower
perplexity".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

Alternative = Literal["less", "greater"]

# Enumerate every relabelling up to this many; beyond it, seeded Monte Carlo.
EXACT_PERMUTATION_LIMIT = 20_000
MONTE_CARLO_RESAMPLES = 20_000


# ---------------------------------------------------------------- t distribution


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` > 0 degrees of freedom (df need not be an integer)."""
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if math.isnan(t):
        raise ValueError("t statistic is NaN")
    if math.isinf(df):
        return float(stats.norm.cdf(t))
    return float(stats.t.cdf(t, df))


# ---------------------------------------------------------------- tests


@dataclass(frozen=True)
class TestResult:
    """A one-sided test. ``statistic`` is t for Welch, mean(candidate) - mean(baseline) for permutation."""

    __test__ = False  # not a pytest test class, despite the name

    p_value: float
    statistic: float
    df: float | None
    method: str


def _as_floats(name: str, values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(list(values), dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of numbers")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains a non-finite value; drop failed runs first")
    return arr


def _check_alternative(alternative: str) -> None:
    if alternative not in ("less", "greater"):
        raise ValueError(f"alternative must be 'less' or 'greater', got {alternative!r}")


def welch_one_sided(
    candidate: Sequence[float],
    baseline: Sequence[float],
    alternative: Alternative = "less",
) -> TestResult:
    """Welch's t-test of H1: mean(candidate) < mean(baseline) (``"less"``) or ``>`` (``"greater"``).

    Needs at least two values on each side. When both samples have zero
    variance the standard error is 0 and t is undefined; then this returns the
    exact :func:`permutation_one_sided` result (method ``"permutation
    (zero variance)"``) instead of an infinite t with p = 0, which two runs of
    a deterministic program would otherwise "prove".
    """
    _check_alternative(alternative)
    c = _as_floats("candidate", candidate)
    b = _as_floats("baseline", baseline)
    if c.size < 2 or b.size < 2:
        raise ValueError(
            f"Welch's test needs at least 2 values per side, got {c.size} and {b.size}"
        )
    if c.var(ddof=1) + b.var(ddof=1) <= 0.0:
        result = permutation_one_sided(c.tolist(), b.tolist(), alternative)
        return TestResult(result.p_value, result.statistic, None, "permutation (zero variance)")
    res = stats.ttest_ind(c, b, equal_var=False, alternative=alternative)
    p = float(res.pvalue)
    return TestResult(
        p_value=min(1.0, max(0.0, p)),
        statistic=float(res.statistic),
        df=float(res.df),
        method="welch",
    )


def permutation_one_sided(
    candidate: Sequence[float],
    baseline: Sequence[float],
    alternative: Alternative = "less",
    *,
    seed: int = 0,
    resamples: int = MONTE_CARLO_RESAMPLES,
) -> TestResult:
    """Permutation test of the difference in means, one-sided.

    Exact (every relabelling enumerated) when there are at most
    :data:`EXACT_PERMUTATION_LIMIT` of them, else ``resamples`` seeded random
    relabellings with p = (1 + hits) / (1 + resamples). The observed labelling
    counts as a hit, so p is never 0: with 3 runs a side the smallest possible
    p is 1/20 = 0.05.
    """
    _check_alternative(alternative)
    c = _as_floats("candidate", candidate)
    b = _as_floats("baseline", baseline)
    if c.size < 1 or b.size < 1:
        raise ValueError("a permutation test needs at least one value per side")
    total = math.comb(c.size + b.size, c.size)
    exact = total <= EXACT_PERMUTATION_LIMIT
    res = stats.permutation_test(
        (c, b),
        lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
        permutation_type="independent",
        vectorized=True,
        alternative=alternative,
        n_resamples=total if exact else resamples,
        rng=np.random.default_rng(seed),
    )
    if exact:
        method = "permutation (exact)"
    else:
        method = f"permutation (monte carlo, {resamples} resamples, seed {seed})"
    diff = float(c.mean()) - float(b.mean())
    return TestResult(p_value=min(1.0, float(res.pvalue)), statistic=diff, df=None, method=method)


def cohens_d(c: np.ndarray, b: np.ndarray) -> float | None:
    dof = c.size + b.size - 2
    if dof <= 0:
        return None
    pooled = ((c.size - 1) * c.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / dof
    if pooled <= 0:
        return None
    # Positive d = candidate perplexity lower, like effect_size.
    return float((b.mean() - c.mean()) / math.sqrt(pooled))
