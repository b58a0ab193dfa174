"""Trusted learning curves: the held-out loss of the checkpoints a program saves while it trains.

The contract: the harness lists budget fractions in ``DARWIN_CURVE`` (for
example ``0.25,0.5,0.75``); at each, the program saves its model the way it
saves the final one, to the contract's :attr:`curve_file` in its output folder
(the seed: ``$DARWIN_OUT/checkpoint.pt``, replaced atomically; nanoGPT: its
own ``ckpt.pt``, which the harness makes it write at those fractions through
``eval_interval``). A program that saves none is scored at the end only, and
its curve says so.

What the trusted side does with them:

- it copies each checkpoint when it appears and stamps it with its own clock
  (:mod:`curve_watch`); the program cannot change a copy, add a point past the
  ones asked for, or pass a late checkpoint off as early;
- it scores each copy in the scoring sandbox, with no agent code: the final
  model's exported graph with the checkpoint's weights in it
  (:mod:`curve_weights`), on the same held-out windows as the final score,
  with :data:`CURVE_PROBES` causality probes. A point that reads ahead rejects
  the whole evaluation; a checkpoint that does not fit the graph is a point
  left unscored, with the reason;
- it places each point on the budget axis by its clock (:class:`Axis`): under
  a seconds budget the share of the budget elapsed when the harness saw the
  checkpoint; under an iteration budget (the harness cannot count another
  program's iterations) the share of the run's cost up to the last write of
  the final model, never less than the fraction that point was asked for. On a
  CPU the cost is the process tree's CPU time, read when the harness took the
  snapshot: a program that sleeps before its last write stretches its wall
  time, not its CPU time, so it cannot make its points look earlier that way
  (only by spending CPU time, which its cost is charged). On a GPU the cost is
  wall time (:mod:`accounting`), and so is the axis: there a pause before the
  last write moves the points towards the fractions asked for, no further.

The iteration and training loss beside each point are the program's log lines
(``iter N: loss X``) before the harness saw the checkpoint: reported, not
measured, and marked so.

All of a point but its loss is fixed when training ends (:class:`Layout`): a
re-score from a kept graph (:mod:`rescore`) scores the same copies on its own
windows and places them as the first evaluation did.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from darwin_bot.core import Budget, EvalResult, Status
from darwin_bot.errors import ConfigError
from darwin_bot.evaluate.accounting import Measure
from darwin_bot.evaluate.curve_score import PointScore
from darwin_bot.evaluate.curve_watch import CheckpointWatcher
from darwin_bot.evaluate.scoring import ProbePlan, plan_probes

DEFAULT_FRACTIONS: tuple[float, ...] = (0.25, 0.5, 0.75)
CURVE_PROBES = 64  # per point; a model that reads ahead everywhere fails the first few
ENV = "DARWIN_CURVE"
LOG_LINE = re.compile(r"^iter (\d+): loss ([-+0-9.eE]+|nan|inf)")


def check_fractions(fractions: tuple[float, ...]) -> None:
    """ConfigError unless ``fractions`` are increasing and inside (0, 1) (the end is implied)."""
    if any(not (0.0 < f < 1.0) for f in fractions):
        raise ConfigError(
            "curve fractions must lie strictly between 0 and 1 (the end is always scored)"
        )
    if list(fractions) != sorted(set(fractions)):
        raise ConfigError("curve fractions must be increasing, each once")


def train_env(fractions: tuple[float, ...]) -> dict[str, str]:
    """What the training program is told: the fractions of its budget to save at."""
    return {ENV: ",".join(f"{f:g}" for f in fractions)} if fractions else {}


@dataclass
class CurveRun:
    """One evaluation's curve while it trains: what was asked, the watcher, the reported log."""

    asked: tuple[float, ...]  # the fractions of the budget configured
    fractions: tuple[float, ...]  # those the contract can save at (what the program is told)
    watcher: CheckpointWatcher
    log: list[tuple[float, int, float]] = field(default_factory=list)  # (at_s, iter, loss)

    @classmethod
    def start(
        cls, opts: Any, fractions: tuple[float, ...], scratch: Path, contract: Any
    ) -> CurveRun | None:
        """A run watching ``scratch/out`` for the contract's checkpoint (``fractions`` of them);
        None for a smoke test (``opts``: the evaluation's options)."""
        if opts.smoke:
            return None
        watcher = CheckpointWatcher(
            scratch / "out",
            contract.curve_file,
            scratch / "curve",
            len(fractions),
            contract.model_file,
        )
        return cls(tuple(opts.curve), fractions, watcher)

    def on_line(self, line: str) -> None:
        """Keep what a log line reports (iteration, training loss), stamped by the harness."""
        m = LOG_LINE.match(line.strip())
        if m:
            at = self.watcher.elapsed()
            self.log.append((at, int(m.group(1)), float(m.group(2))))

    def reported_at(self, at_s: float) -> tuple[int | None, float | None]:
        """The program's last logged (iteration, training loss) by ``at_s``."""
        before = [(i, loss) for t, i, loss in self.log if t <= at_s]
        return before[-1] if before else (None, None)


def watching(run: CurveRun | None) -> contextlib.AbstractContextManager[Any]:
    """The watcher to hold open while training runs (nothing when no curve was asked)."""
    return run.watcher if run is not None else contextlib.nullcontext()


def on_start(run: CurveRun | None) -> Callable[[int], None] | None:
    """What the sandbox calls with its root process's id: the watcher reads its CPU time."""
    return run.watcher.started if run is not None else None


def on_line(
    run: CurveRun | None, shown: Callable[[str], None] | None
) -> Callable[[str], None] | None:
    """The training log's reader: the progress display's, and the curve's (reported) log."""
    kept = run.on_line if run is not None else None
    if shown is None or kept is None:
        return shown or kept

    def both(line: str) -> None:
        shown(line)
        kept(line)

    return both


@dataclass(frozen=True)
class CurvePoint:
    """One point of the trusted curve (``requested`` None: the end of training)."""

    requested: float | None
    budget_fraction: float  # where the harness's clock puts it (see the module doc)
    wall_s: float  # seconds since the training sandbox started, by the harness's clock
    cpu_s: float | None  # the training tree's CPU seconds by then (None: wall-time axis)
    val_loss: float | None  # measured; None: not scored (``reason`` says why)
    iteration: int | None  # reported by the program's log
    train_loss: float | None  # reported by the program's log
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in dataclasses.asdict(self).items()
        }


@dataclass(frozen=True)
class CurveScoring:
    """How the points are scored: their plan (the final score's windows), then their scores."""

    plan: ProbePlan
    vocab: int
    scores: tuple[PointScore, ...] = ()  # one per checkpoint, from the scoring sandbox
    wall_s: float = 0.0  # that sandbox's phase for the curve
    cpu_s: float = 0.0

    @classmethod
    def of(
        cls, final: ProbePlan, val: np.ndarray, vocab: int, seed: int, spare: np.ndarray
    ) -> CurveScoring:
        """The final score's windows (drawn again by the same seed) with
        :data:`CURVE_PROBES` fresh probes."""
        plan = plan_probes(
            val,
            final.context,
            vocab,
            len(final.windows),
            seed,
            n_probes=CURVE_PROBES,
            spare_text=spare,
        )
        return cls(plan, vocab)


class Axis(StrEnum):
    """What a point's ``budget_fraction`` is a share of."""

    SECONDS = "share of the seconds budget"
    CPU = "share of the run's CPU time (at least the fraction asked)"
    WALL = "share of the run's wall time (at least the fraction asked)"


@dataclass(frozen=True)
class Clock:
    """When the harness saw something: wall seconds since training started, the tree's CPU."""

    wall_s: float
    cpu_s: float | None = None


def axis_for(budget: Budget, measure: str | None, tree_read: bool) -> Axis:
    """The seconds budget's own axis; else CPU time where the run is charged it and the
    harness read its tree while it ran; else wall time (a GPU)."""
    if budget.seconds is not None:
        return Axis.SECONDS
    return Axis.CPU if measure == Measure.CPU and tree_read else Axis.WALL


def place(axis: Axis, budget: Budget, at: Clock, requested: float | None, end: Clock) -> float:
    """``at``'s fraction of the budget on ``axis``, the run ending at ``end`` (see the module doc)."""
    if axis is Axis.SECONDS:
        return round(at.wall_s / budget.seconds, 4)  # type: ignore[operator]
    if requested is None:
        return 1.0
    now, last = (at.cpu_s, end.cpu_s) if axis is Axis.CPU else (at.wall_s, end.wall_s)
    share = now / last if now is not None and last else 1.0
    return round(min(1.0, max(requested, share)), 4)


@dataclass(frozen=True)
class Layout:
    """A run's curve as fixed when training ended: everything of it but the held-out losses.

    The harness's copies of the checkpoints and each point's placement (the
    fraction asked for, the harness's clocks, the reported log line), the end of
    training last. A result's curve is its layout with each point's measured
    loss; a re-score from a kept graph (:mod:`rescore`) scores the same copies
    on its own windows and keeps these placements.
    """

    requested: tuple[float, ...]  # the fractions the program was told
    axis: Axis
    points: tuple[CurvePoint, ...]  # one per checkpoint copy, then the end (val_loss None)
    note: str
    paths: tuple[Path, ...]  # the checkpoint copies, in order

    def to_dict(self) -> dict[str, Any]:
        """The layout as JSON, without its files (whoever keeps them names them)."""
        points = [p.to_dict() for p in self.points]
        return {
            "requested": list(self.requested),
            "axis": self.axis.value,
            "points": points,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], paths: tuple[Path, ...]) -> Layout:
        """A kept layout with its files at ``paths``; ValueError, KeyError or TypeError when
        ``data`` is not one point per file, then the end."""
        points = tuple(_placed(p) for p in data["points"])
        ends = [p.requested is None for p in points]
        if len(points) != len(paths) + 1 or ends != [False] * len(paths) + [True]:
            raise ValueError("a kept curve needs one point per checkpoint, then the end")
        requested = tuple(float(f) for f in data["requested"])
        return cls(requested, Axis(data["axis"]), points, str(data["note"]), paths)


def _placed(p: dict[str, Any]) -> CurvePoint:
    """A kept point's placement (its loss left out: it is measured again)."""

    def num(v: Any) -> float | None:
        return None if v is None else float(v)

    it = p["iteration"]
    return CurvePoint(
        num(p["requested"]),
        float(p["budget_fraction"]),
        float(p["wall_s"]),
        num(p["cpu_s"]),
        None,
        None if it is None else int(it),
        num(p["train_loss"]),
    )


def _clocks(
    run: CurveRun, budget: Budget, measure: str | None, total: float, train_wall_s: float
) -> tuple[Axis, Clock, list[Clock]]:
    """The axis, the end of training and each snapshot's time on it (``total``: the run's
    CPU seconds; ``measure``: what it is charged).

    A snapshot's CPU figure the watcher could not read (the tree was reaped
    before it looked) is the run's total, which it had reached by then: late,
    never early. So is the end's: the total then includes the export after
    training, a few per cent at most, and only when the model's last write came
    within one poll of the exit.
    """
    w = run.watcher
    axis = axis_for(budget, measure, w.tree_read and total > 0)
    known = axis is Axis.CPU

    def cpu(read: float | None) -> float | None:
        return (read if read is not None else total) if known else None

    end = (
        Clock(w.model_at_s, cpu(w.model_cpu_s))
        if w.model_at_s is not None
        else Clock(train_wall_s, cpu(None))
    )
    return axis, end, [Clock(snap.at_s, cpu(snap.cpu_s)) for snap in w.snapshots]


def lay_out(
    run: CurveRun | None, budget: Budget, measure: str | None, cpu_s: float, wall_s: float
) -> Layout | None:
    """Where ``run``'s points lie, training having used ``cpu_s`` and ``wall_s`` and being
    charged ``measure`` (None: no curve was watched)."""
    if run is None:
        return None
    axis, end, clocks = _clocks(run, budget, measure, cpu_s, wall_s)
    points = [
        _point(axis, budget, at, run.fractions[k], end, None, run.reported_at(at.wall_s))
        for k, at in enumerate(clocks)
    ]
    points.append(_point(axis, budget, end, None, end, None, run.reported_at(end.wall_s)))
    paths = tuple(snap.path for snap in run.watcher.snapshots)
    return Layout(run.fractions, axis, tuple(points), _note(run), paths)


def attach(result: EvalResult, layout: Layout | None, how: CurveScoring) -> EvalResult:
    """``result`` with its trusted curve in ``extra['curve']``: ``layout``'s points with the
    losses ``how`` measured; rejected if a point reads ahead."""
    if layout is None or result.status is not Status.OK or result.metrics is None:
        return result
    paths = layout.paths
    scores, wall_s, cpu_s = (how.scores, how.wall_s, how.cpu_s) if paths else ((), 0.0, 0.0)
    points: list[CurvePoint] = []
    for placed, score in zip(layout.points[:-1], scores, strict=True):
        if score.reads_ahead:
            reason = f"the checkpoint saved at {placed.requested:g} of the budget: {score.reason}"
            return dataclasses.replace(result, status=Status.REJECTED, reason=reason, metrics=None)
        points.append(dataclasses.replace(placed, val_loss=score.val_loss, reason=score.reason))
    points.append(dataclasses.replace(layout.points[-1], val_loss=result.metrics.val_loss))
    curve = {
        "requested": list(layout.requested),
        "axis": layout.axis.value,
        "points": [p.to_dict() for p in points],
        "windows": int(len(how.plan.windows)) if paths else 0,
        "probes": CURVE_PROBES,
        "score_wall_s": round(wall_s, 3),
        "score_cpu_s": round(cpu_s, 3),
        "note": layout.note,
    }
    return dataclasses.replace(result, extra={**result.extra, "curve": curve})


def _point(
    axis: Axis,
    budget: Budget,
    at: Clock,
    requested: float | None,
    end: Clock,
    val_loss: float | None,
    reported: tuple[int | None, float | None],
    reason: str = "",
) -> CurvePoint:
    cpu = round(at.cpu_s, 3) if at.cpu_s is not None else None
    iteration, train_loss = reported
    return CurvePoint(
        requested,
        budget_fraction=place(axis, budget, at, requested, end),
        wall_s=round(at.wall_s, 3),
        cpu_s=cpu,
        val_loss=val_loss,
        iteration=iteration,
        train_loss=train_loss,
        reason=reason,
    )


def _note(run: CurveRun) -> str:
    got, asked, name = len(run.watcher.snapshots), len(run.fractions), run.watcher.name
    if run.asked and not run.fractions:
        return (
            f"the program's contract cannot save a checkpoint at the fractions "
            f"{', '.join(f'{f:g}' for f in run.asked)} of this budget: scored at the end only"
        )
    if got == asked:
        return ""
    why = f" ({'; '.join(run.watcher.skipped)})" if run.watcher.skipped else ""
    if got == 0:
        return (
            f"the program saved no {name} at the fractions {ENV} asked for{why}: "
            "scored at the end only"
        )
    return f"the program saved {got} of the {asked} checkpoints asked for{why}"
