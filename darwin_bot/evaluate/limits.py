"""When the harness kills a run, and what that means: training's and scoring's limits.

Training is killed at its budget (a seconds budget plus the allowance), at
``max_cost_ratio`` x the baseline's training cost (an iteration budget,
baseline known), and always at ``timeout_s``. Scoring (the exported graph, run
by trusted code) is held to what is left of the same cost limit
(:meth:`~darwin_bot.core.results.Cost.allowance`) once training is paid for.

On a CPU the cost is CPU time (:mod:`accounting`), so the cost limit stops the
process tree at a CPU budget, never at a wall time a busy machine stretched;
it is :data:`~darwin_bot.core.results.CONTENTION_SLACK` wider than the verdict
applied afterwards, which decides on the exact figure. On a GPU the cost is the
wall time, and the limit a wall-clock kill.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

from darwin_bot.core import CONTENTION_SLACK, Budget, Cost, Status
from darwin_bot.evaluate.accounting import Measure, measure_for


class EvalOptions(Protocol):
    """What the limits read of ``harness.EvalOptions``."""

    budget: Budget
    smoke: bool
    timeout_s: float
    allowance_s: float
    max_cost_ratio: float
    seconds_cost_ratio: float
    baseline_train_wall_s: float | None
    baseline_score_wall_s: float | None
    baseline_train_cpu_s: float | None
    baseline_score_cpu_s: float | None


@dataclass(frozen=True)
class WallLimit:
    """When the harness kills a sandboxed process, and what that means."""

    seconds: float
    status: Status  # the status of a run killed at this limit
    reason: str
    cpu_s: float | None = None  # the CPU budget of the process tree (a CPU run's cost limit)


def baseline_cost(opts: EvalOptions) -> Cost | None:
    """The baseline's measured cost the options carry (None: not known)."""
    if not opts.baseline_train_wall_s:
        return None
    return Cost(
        opts.baseline_train_wall_s,
        opts.baseline_score_wall_s or 0.0,
        opts.baseline_train_cpu_s or 0.0,
        opts.baseline_score_cpu_s or 0.0,
    )


def _cpu_base(opts: EvalOptions, device: str) -> Cost | None:
    """The baseline, when this run's cost limit is a CPU budget (a CPU run, its CPU known)."""
    base = baseline_cost(opts)
    if base is None or measure_for(device) is not Measure.CPU or not base.train_cpu_s > 0:
        return None
    return base


def train_limit(opts: EvalOptions, device: str) -> WallLimit:
    """Training's limits: :func:`wall_limit`, and on a CPU the cost limit's CPU budget."""
    base = _cpu_base(opts, device)
    if base is None or opts.smoke or opts.budget.iters is None:
        return wall_limit(opts, device)
    cap = CONTENTION_SLACK * opts.max_cost_ratio * base.train_cpu_s + opts.allowance_s
    return dataclasses.replace(
        wall_limit(opts, device),
        cpu_s=cap,
        status=Status.OVER_BUDGET,
        reason=f"training used more than {cap:.1f} CPU s ({opts.max_cost_ratio:g}x the "
        f"baseline's mean CPU time, {CONTENTION_SLACK:g}x room for a busy machine, "
        f"+ {opts.allowance_s:g} s) and was stopped",
    )


def wall_limit(opts: EvalOptions, device: str = "cuda") -> WallLimit:
    """Training's tightest wall-clock limit: the budget's own, else ``timeout_s``.

    The cost limit is a wall-clock kill only where wall time is the cost (a GPU).
    """
    limits = [
        WallLimit(
            opts.timeout_s,
            Status.TIMEOUT,
            f"training ran past the {opts.timeout_s:g} s limit and was killed",
        ),
    ]
    b = opts.budget
    if b.seconds is not None:
        limits.append(
            WallLimit(
                b.seconds + opts.allowance_s,
                Status.TIMEOUT,
                f"training ran past its budget of {b.seconds:g} s + {opts.allowance_s:g} s "
                "allowance (saving) and was killed",
            )
        )
    wall_cost = measure_for(device) is Measure.WALL
    if wall_cost and opts.baseline_train_wall_s and not opts.smoke and b.iters is not None:
        cap = opts.max_cost_ratio * opts.baseline_train_wall_s
        limits.append(
            WallLimit(
                cap + opts.allowance_s,
                Status.OVER_BUDGET,
                f"training ran past {opts.max_cost_ratio:g}x the baseline's mean wall time "
                f"({cap:.1f} s) + {opts.allowance_s:g} s and was killed",
            )
        )
    return min(limits, key=lambda w: w.seconds)


def score_limit(
    opts: EvalOptions, train_wall_s: float, device: str = "cuda", train_cpu_s: float = 0.0
) -> WallLimit:
    """Scoring's limit: what the cost limit leaves after training, else ``timeout_s``.

    It bounds the scoring sandbox; the cost limit itself is applied to the measured
    total afterwards.
    """
    timeout = WallLimit(
        opts.timeout_s, Status.TIMEOUT, f"scoring ran past the {opts.timeout_s:g} s limit"
    )
    cpu_base = _cpu_base(opts, device)
    if cpu_base is not None and not opts.smoke and cpu_base.score_cpu_s > 0:
        return _score_cpu_limit(opts, cpu_base, train_cpu_s, timeout)
    base = baseline_cost(opts)
    if opts.smoke or base is None or not base.score_wall_s > 0:
        return timeout
    ratio = opts.seconds_cost_ratio if opts.budget.seconds is not None else opts.max_cost_ratio
    allowed = base.allowance(ratio, opts.max_cost_ratio)
    left = allowed + opts.allowance_s - train_wall_s
    if left >= opts.timeout_s:
        return timeout
    return WallLimit(
        max(left, 1.0),
        Status.OVER_BUDGET,
        f"training and scoring ran past the {allowed:.1f} s the budget allows against the "
        f"baseline (+ {opts.allowance_s:g} s) and scoring was killed: running the exported "
        "graph is part of the cost",
    )


def _score_cpu_limit(
    opts: EvalOptions, base: Cost, train_cpu_s: float, timeout: WallLimit
) -> WallLimit:
    ratio = opts.seconds_cost_ratio if opts.budget.seconds is not None else opts.max_cost_ratio
    allowed = base.allowance(ratio, opts.max_cost_ratio, measure="cpu")
    left = CONTENTION_SLACK * allowed + opts.allowance_s - train_cpu_s
    return dataclasses.replace(
        timeout,
        cpu_s=max(left, 1.0),
        status=Status.OVER_BUDGET,
        reason=f"training and scoring used more than the {allowed:.1f} CPU s the budget allows "
        f"against the baseline ({CONTENTION_SLACK:g}x room for a busy machine, + "
        f"{opts.allowance_s:g} s) and scoring was stopped: running the exported graph is "
        "part of the cost",
    )
