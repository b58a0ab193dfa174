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
    ``Status(text)``, which rejects unknown values at the boundary. The other
    outcome enum, for what became of a mutation, is :class:`darwin_bot.core.agent.Outcome`.
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
    score_wall_s: float = 0.0  # 0: not measured (a result from before evaluator version 3)
    # CPU time charged (CPU devices, evaluator version 4); 0: the run is charged its wall time
    train_cpu_s: float = 0.0
    score_cpu_s: float = 0.0

    @property
    def cost(self) -> Cost:
        """What the run cost, as the harness measured it (for the cost limit)."""
        return Cost(self.train_wall_s, self.score_wall_s, self.train_cpu_s, self.score_cpu_s)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metrics:
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        return cls(**{k: float(data.get(k, defaults[k])) for k in cls.__dataclass_fields__})


# Who vouches for each number of a result. "measured": the trusted side measured or
# computed it itself. "reported": it comes from the program's train.json, and is only
# bounded by what was measured (see docs/threat-model.md).
METRIC_SOURCES: dict[str, str] = {
    "val_loss": "measured: held-out loss computed by the harness from the returned logits",
    "perplexity": "measured: exp(val_loss)",
    "train_wall_s": "measured: wall time of the sandboxed training process",
    "score_wall_s": "measured: wall time of scoring (loading and running the model, both sandboxes)",
    "train_cpu_s": "measured: CPU time of the training sandbox's whole process tree (kernel rusage)",
    "score_cpu_s": "measured: CPU time of both scoring sandboxes' process trees (kernel rusage)",
    "cost_ratio": "measured: the run's charge (CPU time on a CPU, wall time on a GPU) of training "
    "+ scoring over the baseline's mean under the same budget",
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


@dataclass(frozen=True)
class Cost:
    """Measured cost of a run: wall time of its training and scoring, and, on a CPU, their
    CPU time (0: not measured, or not charged: a GPU run, a result from before version 4).

    A run is charged its CPU time when it and the baseline both have one (work, which a
    busy machine does not inflate much), else its wall time. Scoring counts because the
    agent's ``load()`` runs there: work moved from training into loading the model
    (training it further, say) is still paid for.
    """

    train_wall_s: float
    score_wall_s: float = 0.0
    train_cpu_s: float = 0.0
    score_cpu_s: float = 0.0

    @classmethod
    def of(cls, extra: dict[str, Any]) -> Cost | None:
        """A result's cost from its ``extra`` (None when its training was not measured)."""

        def num(key: str) -> float:
            value = extra.get(key, 0.0)
            return float(value) if isinstance(value, (int, float)) else 0.0

        if not isinstance(extra.get("train_wall_s"), (int, float)):
            return None
        charged = extra.get("cost_measure") == "cpu"
        return cls(
            num("train_wall_s"),
            num("score_wall_s"),
            num("train_cpu_s") if charged else 0.0,
            num("score_cpu_s") if charged else 0.0,
        )

    def measure(self, base: Cost) -> str:
        """``cpu`` when this run and ``base`` both have a charged CPU time, else ``wall``."""
        return "cpu" if self.train_cpu_s > 0 and base.train_cpu_s > 0 else "wall"

    def parts(self, measure: str) -> tuple[float, float]:
        """(training, scoring) in ``measure``'s seconds."""
        if measure == "cpu":
            return self.train_cpu_s, self.score_cpu_s
        return self.train_wall_s, self.score_wall_s

    def against(self, base: Cost) -> tuple[float, float]:
        """(this run's seconds, the baseline's) counted alike: the same measure, and
        scoring only where both have it."""
        m = self.measure(base)
        (train, score), (b_train, b_score) = self.parts(m), base.parts(m)
        both = score > 0 and b_score > 0
        return train + (score if both else 0.0), b_train + (b_score if both else 0.0)

    def allowance(
        self, train_ratio: float, score_ratio: float, *, scored: bool = True, measure: str = "wall"
    ) -> float:
        """Seconds a run may take against this baseline: ``train_ratio`` x its training and,
        where scoring is counted, ``score_ratio`` x its scoring (in ``measure``'s seconds)."""
        train, score = self.parts(measure)
        return train_ratio * train + (score_ratio * score if scored else 0.0)

    def ratio(self, base: Cost) -> float | None:
        spent, base_s = self.against(base)
        return spent / base_s if spent > 0 and base_s > 0 else None


# How much a busy machine may inflate a run's CPU time (cache and core sharing, a
# descheduled thread's siblings): at most 1.07x (training) and 1.11x (scoring) measured
# on a 2-core machine with three CPU-bound processes joining (docs/budget.md), with a
# margin. A run that mostly waited gets this much more room.
CONTENTION_SLACK = 1.15


def apply_cost_limit(
    result: EvalResult,
    baseline: Cost | None,
    max_cost_ratio: float,
    seconds_cost_ratio: float = SECONDS_COST_RATIO,
) -> EvalResult:
    """``result`` with its measured cost against the baseline; ``over_budget`` past the limit.

    The harness cannot count another program's iterations, so a budget is held
    by the work the run did: its CPU time on a CPU (its wall time on a GPU, and
    for results from before evaluator version 4). A run whose training and
    scoring took more than ``max_cost_ratio`` (an iteration budget) or
    ``seconds_cost_ratio`` (a seconds budget) times the baseline's mean
    training, plus ``max_cost_ratio`` times its mean scoring (same budget, same
    device), is ``over_budget``, which ranks with the failures; its metrics stay
    for the record. A run the harness saw mostly waiting (``contended``) is
    measured under contention: it gets :data:`CONTENTION_SLACK` more room and
    says so. A missing baseline (``None`` or 0) leaves the result as it is.
    """
    cost = Cost.of(result.extra)
    if baseline is None or not baseline.train_wall_s > 0 or cost is None:
        return result
    train_ratio = seconds_cost_ratio if result.budget.seconds is not None else max_cost_ratio
    measure = cost.measure(baseline)
    spent, base_s = cost.against(baseline)
    base_train = baseline.parts(measure)[0]
    scored = base_s > base_train
    allowed = baseline.allowance(train_ratio, max_cost_ratio, scored=scored, measure=measure)
    contended = bool(result.extra.get("contended")) and measure == "cpu"
    limit = allowed * (CONTENTION_SLACK if contended else 1.0)
    ratio = spent / base_s
    extra = {
        **result.extra,
        "cost_ratio": round(ratio, 4),
        "cost_measure": "cpu" if measure == "cpu" else "wall",
        "baseline_train_wall_s": round(baseline.train_wall_s, 3),
        "baseline_score_wall_s": round(baseline.score_wall_s, 3),
        "baseline_train_cpu_s": round(baseline.train_cpu_s, 3),
        "baseline_score_cpu_s": round(baseline.score_cpu_s, 3),
        "max_cost_ratio": train_ratio,
        "cost_limit_s": round(limit, 3),
    }
    if result.status is Status.OK and result.metrics is not None and spent > limit:
        what = "training and scoring" if scored else "training"
        kind = "CPU time" if measure == "cpu" else "wall time"
        reason = (
            f"{what} took {ratio:.2f}x the baseline's mean {kind} ({spent:.1f} s vs "
            f"{base_s:.1f} s), {100 * (spent / limit - 1):.0f}% over the {train_ratio:g}x "
            "the budget allows"
        )
        if scored:
            reason += (
                f" ({allowed:.1f} s: {train_ratio:g}x its training, {max_cost_ratio:g}x its "
                "scoring, where the model's load() runs)"
            )
        if contended:
            reason += f"; measured under contention, with {CONTENTION_SLACK:g}x room for it"
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
