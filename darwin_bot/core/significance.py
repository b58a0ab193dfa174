"""One-sided significance tests over repeat runs, with no scipy.

Student's t CDF from the regularized incomplete beta function (a continued
fraction, modified Lentz); Welch's t-test, falling back to the exact
permutation test when both samples have zero variance (t is undefined there);
the permutation test itself, exact up to :data:`EXACT_PERMUTATION_LIMIT`
relabellings and seeded Monte Carlo beyond; Cohen's d.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Alternative = Literal["less", "greater"]

# Enumerate every relabelling up to this many; beyond it, seeded Monte Carlo.
EXACT_PERMUTATION_LIMIT = 20_000
MONTE_CARLO_RESAMPLES = 20_000


# ---------------------------------------------------------------- t distribution


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz method)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        # even step
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        # odd step
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            return h
    raise ArithmeticError(
        f"incomplete beta did not converge for a={a}, b={b}, x={x}"
    )  # pragma: no cover


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if a <= 0 or b <= 0:
        raise ValueError(f"incomplete beta needs a, b > 0, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"incomplete beta needs 0 <= x <= 1, got {x}")
    if x == 0.0 or x == 1.0:
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    # The continued fraction converges fast only below (a+1)/(a+b+2); use the
    # symmetry I_x(a, b) = 1 - I_{1-x}(b, a) above it.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` > 0 degrees of freedom (df need not be an integer)."""
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if math.isnan(t):
        raise ValueError("t statistic is NaN")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    if math.isinf(df):
        return 0.5 * math.erfc(-t / math.sqrt(2.0))
    # Two-sided tail mass is I_{df/(df+t^2)}(df/2, 1/2); half of it lies beyond |t|.
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


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
    vc, vb = float(c.var(ddof=1)), float(b.var(ddof=1))
    sc, sb = vc / c.size, vb / b.size
    se2 = sc + sb
    if se2 <= 0.0:
        result = permutation_one_sided(c.tolist(), b.tolist(), alternative)
        return TestResult(result.p_value, result.statistic, None, "permutation (zero variance)")
    t = (float(c.mean()) - float(b.mean())) / math.sqrt(se2)
    # Welch–Satterthwaite degrees of freedom; a zero-variance side contributes 0.
    df = se2 * se2 / (sc * sc / (c.size - 1) + sb * sb / (b.size - 1))
    cdf = student_t_cdf(t, df)
    p = cdf if alternative == "less" else 1.0 - cdf
    return TestResult(p_value=min(1.0, max(0.0, p)), statistic=t, df=df, method="welch")


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
    pooled = np.concatenate([c, b])
    n_c = c.size
    observed = float(c.sum())
    # The pooled total is fixed, so the candidate group's sum orders relabellings
    # exactly like the difference in means; compare sums with a tolerance so that
    # float rounding never drops the observed labelling itself.
    tol = 1e-9 * max(1.0, float(np.abs(pooled).sum()))
    sign = 1.0 if alternative == "less" else -1.0
    total = math.comb(pooled.size, n_c)
    if total <= EXACT_PERMUTATION_LIMIT:
        hits = sum(
            1
            for idx in itertools.combinations(range(pooled.size), n_c)
            if sign * (float(pooled[list(idx)].sum()) - observed) <= tol
        )
        p = hits / total
        method = "permutation (exact)"
    else:
        rng = np.random.default_rng(seed)
        perms = rng.permuted(np.tile(pooled, (resamples, 1)), axis=1)
        sums = perms[:, :n_c].sum(axis=1)
        hits = int(np.count_nonzero(sign * (sums - observed) <= tol))
        p = (1 + hits) / (1 + resamples)
        method = f"permutation (monte carlo, {resamples} resamples, seed {seed})"
    diff = float(c.mean()) - float(b.mean())
    return TestResult(p_value=min(1.0, p), statistic=diff, df=None, method=method)


def cohens_d(c: np.ndarray, b: np.ndarray) -> float | None:
    dof = c.size + b.size - 2
    if dof <= 0:
        return None
    pooled = ((c.size - 1) * c.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / dof
    if pooled <= 0:
        return None
    # Positive d = candidate perplexity lower, like effect_size.
    return float((b.mean() - c.mean()) / math.sqrt(pooled))
