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
- it places each point on the budget axis by its clock: under a seconds budget
  the share of the budget elapsed when the harness saw the checkpoint; under an
  iteration budget (the harness cannot count another program's iterations) the
  share of the run's wall time, from the sandbox's start to the last write of
  the final model, and never less than the fraction that point was asked for.

The iteration and training loss beside each point are the program's log lines
(``iter N: loss X``) before the harness saw the checkpoint: reported, not
measured, and marked so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from darwin_bot.core.results import Budget, EvalResult, Status
from darwin_bot.errors import ConfigError
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


def _place(budget: Budget, at_s: float, requested: float | None, end_s: float) -> float:
    if budget.seconds is not None:
        return round(at_s / budget.seconds, 4)
    if requested is None:
        return 1.0
    return round(min(1.0, max(requested, at_s / end_s if end_s > 0 else 1.0)), 4)


def attach(
    result: EvalResult, run: CurveRun | None, how: CurveScoring, train_wall_s: float
) -> EvalResult:
    """``result`` with its trusted curve in ``extra['curve']``; rejected if a point reads ahead."""
    if run is None or result.status is not Status.OK or result.metrics is None:
        return result
    watcher, budget = run.watcher, result.budget
    end_s = watcher.model_at_s if watcher.model_at_s is not None else train_wall_s
    paths = [snap.path for snap in watcher.snapshots]
    scores, wall_s, cpu_s = (how.scores, how.wall_s, how.cpu_s) if paths else ((), 0.0, 0.0)
    points: list[CurvePoint] = []
    for k, (snap, score) in enumerate(zip(watcher.snapshots, scores, strict=True)):
        requested = run.fractions[k]
        if score.reads_ahead:
            reason = f"the checkpoint saved at {requested:g} of the budget: {score.reason}"
            return dataclasses.replace(result, status=Status.REJECTED, reason=reason, metrics=None)
        at = _place(budget, snap.at_s, requested, end_s)
        reported = run.reported_at(snap.at_s)
        points.append(
            CurvePoint(requested, at, round(snap.at_s, 3), score.val_loss, *reported, score.reason)
        )
    iteration, train_loss = run.reported_at(end_s)
    points.append(
        CurvePoint(
            None,
            _place(budget, end_s, None, end_s),
            round(end_s, 3),
            result.metrics.val_loss,
            iteration,
            train_loss,
        )
    )
    curve = {
        "requested": list(run.fractions),
        "axis": "share of the seconds budget"
        if budget.seconds is not None
        else "share of the run's wall time (at least the fraction asked)",
        "points": [p.to_dict() for p in points],
        "windows": int(len(how.plan.windows)) if paths else 0,
        "probes": CURVE_PROBES,
        "score_wall_s": round(wall_s, 3),
        "score_cpu_s": round(cpu_s, 3),
        "note": _note(run),
    }
    return dataclasses.replace(result, extra={**result.extra, "curve": curve})


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
