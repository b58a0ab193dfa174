"""Time to loss: where on its trusted curve a run first reaches the seed's final held-out loss.

The speedrun figure. Each evaluation's result carries a learning curve the
trusted side measured (``extra['curve']``, see ``evaluate/curve.py``): points
of (budget fraction by the harness's clock, wall seconds, held-out loss), the
last one the end of training. The time to loss of a run against a target loss
(the baseline's mean final held-out loss) is the first budget fraction at
which the curve is at or below the target, interpolated linearly between the
last point above it and the first at or below it (never before the first
point: nothing was measured there), with the wall time interpolated the same
way (meaningful under a seconds budget). A run whose curve never gets there
has not reached it (``None``).

Nothing here reads what the program reports: not its token count, not its
training loss, not its iteration count. A program that inflates its reported
tokens moves none of these numbers.

As a fitness term (``fitness.time_to_loss_weight``) a run scores
``1 - fraction``, and a run that does not reach the target scores 0, as if it
reached it at the end: the seed reaches its own final loss at about its end, so
the term is about 0 for the seed and grows as a candidate gets there sooner.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

NOT_REACHED_FRACTION = 1.0  # what a run that never reaches the target counts as, in fitness


@dataclass(frozen=True)
class CurvePoint:
    """One scored point of a trusted curve."""

    fraction: float  # of the budget, by the harness's clock
    wall_s: float  # since the training sandbox started
    val_loss: float


@dataclass(frozen=True)
class Reached:
    """Where a curve first reaches the target: a budget fraction and wall seconds."""

    fraction: float
    wall_s: float


def points_of(extra: dict[str, Any]) -> list[CurvePoint]:
    """The scored points of a result's curve, in budget order (empty: no curve)."""
    curve = extra.get("curve")
    raw = curve.get("points") if isinstance(curve, dict) else None
    out: list[CurvePoint] = []
    for p in raw if isinstance(raw, list) else []:
        try:
            point = CurvePoint(
                float(p["budget_fraction"]), float(p["wall_s"]), float(p["val_loss"])
            )
        except (KeyError, TypeError, ValueError):
            continue  # an unscored point (val_loss None) or a malformed one
        if all(math.isfinite(v) for v in (point.fraction, point.wall_s, point.val_loss)):
            out.append(point)
    return sorted(out, key=lambda q: q.fraction)


def time_to_loss(points: Sequence[CurvePoint], target: float) -> Reached | None:
    """The first point on the curve at or below ``target``, interpolated; None: not reached."""
    before: CurvePoint | None = None
    for p in points:
        if p.val_loss <= target:
            if before is None:
                return Reached(p.fraction, p.wall_s)
            share = (before.val_loss - target) / (before.val_loss - p.val_loss)
            return Reached(
                before.fraction + share * (p.fraction - before.fraction),
                before.wall_s + share * (p.wall_s - before.wall_s),
            )
        before = p
    return None


def fitness_fraction(reached: Reached | None) -> float:
    """What a run's time to loss counts as in fitness (not reached: the end of the budget)."""
    return NOT_REACHED_FRACTION if reached is None else reached.fraction


@dataclass(frozen=True)
class RunsTimeToLoss:
    """Time to loss over a candidate's runs."""

    mean_fraction: float | None  # over the runs that reached it; None: none did
    mean_wall_s: float | None
    reached: int  # runs that reached the target
    runs: int  # runs with a curve
    fitness_fraction: float  # the mean the fitness term uses (not reached = the end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fraction": self.mean_fraction,
            "wall_s": self.mean_wall_s,
            "reached": self.reached,
            "runs": self.runs,
        }


def over_runs(extras: Sequence[dict[str, Any]], target: float) -> RunsTimeToLoss | None:
    """Time to loss of each run's curve against ``target``; None when no run has a curve."""
    curves = [points_of(e) for e in extras]
    curves = [c for c in curves if c]
    if not curves or not math.isfinite(target):
        return None
    got = [time_to_loss(c, target) for c in curves]
    hits = [r for r in got if r is not None]
    return RunsTimeToLoss(
        mean_fraction=sum(r.fraction for r in hits) / len(hits) if hits else None,
        mean_wall_s=sum(r.wall_s for r in hits) / len(hits) if hits else None,
        reached=len(hits),
        runs=len(curves),
        fitness_fraction=sum(fitness_fraction(r) for r in got) / len(got),
    )
