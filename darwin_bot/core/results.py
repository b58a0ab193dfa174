"""What one evaluation of one tree produced: the value every part agrees on.

A failed run is a value (status != "ok") that ranks worst, never an exception.
The JSON form of :class:`EvalResult` is what ``darwin evaluate --json`` prints
and what the CI evaluate job uploads as an artifact.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """How one evaluation ended. Only ``OK`` ranks; every other value ranks last.

    A ``StrEnum``, so the JSON form is the plain value; it is parsed back with
    ``Status(text)``, which rejects unknown values at the boundary.
    """

    OK = "ok"
    FAILED = "failed"  # the program crashed, wrote no model, or its model failed to score
    TIMEOUT = "timeout"  # the harness stopped it at the wall-clock limit
    REJECTED = "rejected"  # it broke a rule: peeked ahead, lied in a report, touched a frozen path
    OVER_BUDGET = "over_budget"  # it trained for longer than the budget allows (measured cost)


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)


@dataclass(frozen=True)
class Metrics:
    """Scores of one successful run. :data:`METRIC_SOURCES` says who vouches for each."""

    val_loss: float
    perplexity: float
    mfu: float
    tokens_per_s: float
    train_seconds: float
    peak_mem_mb: float
    train_wall_s: float = 0.0  # 0: not measured (a result from before evaluator version 2)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metrics:
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        return cls(**{k: float(data.get(k, defaults[k])) for k in cls.__dataclass_fields__})


# Who vouches for each number of a result. "measured": the trusted side measured or
# computed it itself. "reported": it comes from the program's train.json, and is only
# bounded by what was measured (see the README's threat model).
METRIC_SOURCES: dict[str, str] = {
    "val_loss": "measured: held-out loss computed by the harness from the returned logits",
    "perplexity": "measured: exp(val_loss)",
    "train_wall_s": "measured: wall time of the sandboxed training process",
    "cost_ratio": "measured: train_wall_s over the baseline's mean under the same budget",
    "peak_mem_mb": "measured: peak resident memory of the training process tree",
    "flops_per_token": "measured: 6 x the parameters of the saved weights (read by the harness)",
    "tokens_per_s": "reported: train.json's tokens_seen over its train_seconds, "
    "clamped to the measured wall time",
    "train_seconds": "reported: train.json's train_seconds, clamped to the measured wall time",
    "mfu": "reported: flops_per_token x tokens_per_s / device peak; a claim over 100% is rejected",
}


@dataclass(frozen=True)
class Budget:
    """The fixed training budget: a number of iterations, or seconds of training."""

    iters: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.iters is None) == (self.seconds is None):
            raise ValueError("a budget is either iters or seconds, exactly one")

    def to_dict(self) -> dict[str, Any]:
        return {"iters": self.iters, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Budget:
        return cls(iters=data.get("iters"), seconds=data.get("seconds"))

    def key(self) -> str:
        return f"iters={self.iters}" if self.iters is not None else f"seconds={self.seconds}"


SECONDS_COST_RATIO = 1.05  # a wall-clock budget's runs all stop by the clock: little spread


def apply_cost_limit(
    result: EvalResult,
    baseline_wall_s: float | None,
    max_cost_ratio: float,
    seconds_cost_ratio: float = SECONDS_COST_RATIO,
) -> EvalResult:
    """``result`` with its measured cost against the baseline; ``over_budget`` past the limit.

    The harness cannot count another program's iterations, so a budget is held
    by wall time: a run that took more than ``max_cost_ratio`` (an iteration
    budget) or ``seconds_cost_ratio`` (a seconds budget) times the baseline's
    mean training wall time (same budget, same device) is ``over_budget``,
    which ranks with the failures; its metrics stay for the record. A missing
    baseline (``None`` or 0) leaves the result as it is.
    """
    wall = result.extra.get("train_wall_s")
    if not baseline_wall_s or baseline_wall_s <= 0 or not isinstance(wall, (int, float)):
        return result
    if result.budget.seconds is not None:
        max_cost_ratio = seconds_cost_ratio
    ratio = float(wall) / baseline_wall_s
    extra = {
        **result.extra,
        "cost_ratio": round(ratio, 4),
        "baseline_train_wall_s": round(baseline_wall_s, 3),
        "max_cost_ratio": max_cost_ratio,
    }
    if result.status is Status.OK and result.metrics is not None and ratio > max_cost_ratio:
        reason = (
            f"training took {ratio:.2f}x the baseline's mean wall time ({float(wall):.1f} s vs "
            f"{baseline_wall_s:.1f} s), {100 * (ratio / max_cost_ratio - 1):.0f}% over the "
            f"{max_cost_ratio:g}x the budget allows"
        )
        return dataclasses.replace(result, status=Status.OVER_BUDGET, reason=reason, extra=extra)
    return dataclasses.replace(result, extra=extra)


@dataclass(frozen=True)
class EvalResult:
    """One evaluation of one tree under one seed."""

    status: Status
    reason: str
    metrics: Metrics | None
    device: str
    seed: int
    budget: Budget
    evaluator_version: str
    tree_hash: str
    log_tail: str = ""
    preset: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Callers may pass the plain value; the record always holds the enum.
        object.__setattr__(self, "status", Status(self.status))

    @property
    def ok(self) -> bool:
        """The run worked. A smoke test is ok without metrics; a scored run needs finite ones."""
        if self.status is not Status.OK:
            return False
        return self.metrics is None or math.isfinite(self.metrics.perplexity)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "reason": self.reason,
            "metrics": self.metrics.to_dict() if self.metrics else None,
            "device": self.device,
            "seed": self.seed,
            "budget": self.budget.to_dict(),
            "evaluator_version": self.evaluator_version,
            "tree_hash": self.tree_hash,
            "log_tail": self.log_tail,
            "preset": self.preset,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        status = Status(data["status"])  # ValueError on an unknown status
        metrics = data.get("metrics")
        return cls(
            status=status,
            reason=str(data.get("reason", "")),
            metrics=Metrics.from_dict(metrics) if metrics else None,
            device=str(data.get("device", "")),
            seed=int(data.get("seed", 0)),
            budget=Budget.from_dict(data.get("budget") or {"iters": 0}),
            evaluator_version=str(data.get("evaluator_version", "")),
            tree_hash=str(data.get("tree_hash", "")),
            log_tail=str(data.get("log_tail", "")),
            preset=str(data.get("preset", "")),
            extra=dict(data.get("extra") or {}),
        )


@dataclass(frozen=True)
class SmokeDeferred:
    """A smoke test that this process does not run: nothing ran, so nothing passed.

    Returned only by an evaluator that never runs agent code (the CI steps that
    hold secrets; ``engine.ports.DeferredEvaluator``). It is not an
    :class:`EvalResult`: it has no status, so it can never be read as ``ok``,
    scored or cached. The mutation pipeline keeps the offspring as it stands;
    the first run of its code is the sandboxed evaluate job's, and a failure
    there goes to the repair job.
    """

    reason: str
    seed: int
    evaluator_version: str


# What a smoke test gives back: a result, or word that the evaluate job will run it.
SmokeResult = EvalResult | SmokeDeferred
