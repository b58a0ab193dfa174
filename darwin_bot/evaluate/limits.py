"""When the harness kills a run, and what that means: training's and scoring's wall limits.

Training is killed at its budget (a seconds budget plus the allowance), at
``max_cost_ratio`` x the baseline's training wall time (an iteration budget,
baseline known), and always at ``timeout_s``. Scoring (the exported graph, run
by trusted code) is held to what is left of the same cost limit
(:meth:`~darwin_bot.core.results.Cost.allowance`) once training is paid for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from darwin_bot.core.results import Cost, Status

if TYPE_CHECKING:
    from darwin_bot.evaluate.harness import EvalOptions


@dataclass(frozen=True)
class WallLimit:
    """When the harness kills a sandboxed process, and what that means."""

    seconds: float
    status: Status  # the status of a run killed at this limit
    reason: str


def baseline_cost(opts: EvalOptions) -> Cost | None:
    """The baseline's measured cost the options carry (None: not known)."""
    if not opts.baseline_train_wall_s:
        return None
    return Cost(opts.baseline_train_wall_s, opts.baseline_score_wall_s or 0.0)


def wall_limit(opts: EvalOptions) -> WallLimit:
    """Training's tightest limit that applies: the budget's own, else ``timeout_s``."""
    limits = [
        WallLimit(opts.timeout_s, Status.TIMEOUT,
                  f"training ran past the {opts.timeout_s:g} s limit and was killed"),
    ]  # fmt: skip
    b = opts.budget
    if b.seconds is not None:
        limits.append(WallLimit(
            b.seconds + opts.allowance_s, Status.TIMEOUT,
            f"training ran past its budget of {b.seconds:g} s + {opts.allowance_s:g} s "
            "allowance (saving) and was killed",
        ))  # fmt: skip
    if opts.baseline_train_wall_s and not opts.smoke and b.iters is not None:
        cap = opts.max_cost_ratio * opts.baseline_train_wall_s
        limits.append(WallLimit(
            cap + opts.allowance_s, Status.OVER_BUDGET,
            f"training ran past {opts.max_cost_ratio:g}x the baseline's mean wall time "
            f"({cap:.1f} s) + {opts.allowance_s:g} s and was killed",
        ))  # fmt: skip
    return min(limits, key=lambda w: w.seconds)


def score_limit(opts: EvalOptions, train_wall_s: float) -> WallLimit:
    """Scoring's limit: what the cost limit leaves after ``train_wall_s``, else ``timeout_s``.

    It bounds the scoring sandbox; the cost limit itself is applied to the measured
    total afterwards.
    """
    timeout = WallLimit(opts.timeout_s, Status.TIMEOUT,
                        f"scoring ran past the {opts.timeout_s:g} s limit")  # fmt: skip
    base = baseline_cost(opts)
    if opts.smoke or base is None or not base.score_wall_s > 0:
        return timeout
    ratio = opts.seconds_cost_ratio if opts.budget.seconds is not None else opts.max_cost_ratio
    allowed = base.allowance(ratio, opts.max_cost_ratio)
    left = allowed + opts.allowance_s - train_wall_s
    if left >= opts.timeout_s:
        return timeout
    return WallLimit(
        max(left, 1.0), Status.OVER_BUDGET,
        f"training and scoring ran past the {allowed:.1f} s the budget allows against the "
        f"baseline (+ {opts.allowance_s:g} s) and scoring was killed: running the exported "
        "graph is part of the cost",
    )  # fmt: skip
