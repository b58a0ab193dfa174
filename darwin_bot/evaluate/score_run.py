"""Run the two scoring sandboxes of one evaluation, one after the other.

Each sandbox gets the agent's tree and weights read-only, its own inputs
folder (one version of every twin pair, see :mod:`scoring`), its own fresh
``/tmp`` and no writable mount at all: nothing one of them does can be seen
by the other. The agent's code runs in them in turn, never at once, so that
neither can signal to the other through shared CPU time while both are alive:
the second sandbox starts early (its interpreter and torch load while the
first runs) but its worker is held at a :class:`~sandbox.Gate` before it
touches anything of the agent's, until the first sandbox has exited. Which
side runs first is a coin flip.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from darwin_bot.core.results import Status
from darwin_bot.errors import RunStopped
from darwin_bot.evaluate.sandbox import Gate, Limits, Mount, SandboxRun, run_sandboxed, scrub_env
from darwin_bot.evaluate.sandbox_proc import stopping
from darwin_bot.evaluate.scoring import Scorer, ScoreRejected, ScoreTruncated, TwinPlan
from darwin_bot.evaluate.scratch import world_readable

WORKER = Path(__file__).with_name("score_worker.py")


@dataclass(frozen=True)
class ScoreJob:
    """Where the agent's tree and weights are, and how to run its code."""

    backend: str
    device: str
    scratch: Path  # holds tree/ and out/ (the weights); score-a/, score-b/ are made here
    limits: Limits
    model_file: str = "model.pt"  # the weights' file name in out/ (the program contract's)
    worker_args: tuple[str, ...] = ()  # the contract's own worker arguments


@dataclass
class ScoreOutcome:
    """How scoring ended: ``status`` is ok, rejected, failed or timeout."""

    status: Status
    reason: str
    scorer: Scorer
    wall_s: list[float] = field(default_factory=list)  # per sandbox, in the order run
    elapsed_s: float = 0.0  # both, from the first start to the last exit
    log: str = ""


def _run_side(
    job: ScoreJob, plan: TwinPlan, scorer: Scorer, side: int, gate: Gate | None = None
) -> SandboxRun:
    folder = job.scratch / f"score-{'ab'[side]}"
    (folder / "inputs").mkdir(parents=True)
    (folder / "home").mkdir()
    np.save(folder / "inputs" / "inputs.npy", plan.sides[side].inputs)
    world_readable(folder)
    tree_m, inputs_m = Mount("tree", job.scratch / "tree"), Mount("inputs", folder / "inputs")
    model_m = Mount("model", job.scratch / "out")  # read-only now
    b = job.backend
    worker = f"/sandbox/darwin/{WORKER.name}" if b == "bwrap" else str(WORKER)
    command = [
        sys.executable, worker, "--tree", tree_m.inside(b),
        "--model", f"{model_m.inside(b)}/{job.model_file}",
        "--inputs", f"{inputs_m.inside(b)}/inputs.npy",
        "--device", job.device, "--batch", str(plan.batch), *(["--gate"] if gate else []),
        *job.worker_args,
    ]  # fmt: skip
    limits = job.limits
    if gate is not None:  # it waits for the first run: give it that long too
        limits = Limits(2 * limits.timeout_s, limits.memory_mb, limits.max_procs)
    home = "/tmp" if b == "bwrap" else str(folder / "home")
    return run_sandboxed(
        command, backend=b, mounts=[tree_m, inputs_m, model_m], cwd=tree_m.inside(b),
        env=scrub_env({"DARWIN_DEVICE": job.device}, home=home), limits=limits,
        device=job.device, stdout_consumer=scorer.consumer(side), gate=gate,
    )  # fmt: skip


def _status(out: ScoreOutcome, run: SandboxRun, timeout_s: float) -> None:
    """Set ``out``'s status from one sandbox run (left ok when the run was fine)."""
    if run.timed_out:
        out.status, out.reason = Status.TIMEOUT, f"scoring ran past the {timeout_s:g} s limit"
    elif isinstance(run.consumer_error, ScoreRejected):
        out.status, out.reason = Status.REJECTED, str(run.consumer_error)
    elif run.returncode != 0 or run.consumer_error is not None:
        why = f"exit code {run.returncode}" if run.returncode else str(run.consumer_error)
        out.status = Status.FAILED
        out.reason = f"scoring failed: loading or running the model crashed ({why})"


def score_sides(job: ScoreJob, plan: TwinPlan, vocab: int) -> ScoreOutcome:
    """Both sandboxes, then the twin comparison; every fault of the agent's code is a status."""
    scorer = Scorer(plan, vocab)
    out = ScoreOutcome(Status.OK, "", scorer)
    first = secrets.randbelow(2)
    gate = Gate()
    runs: dict[int, SandboxRun] = {}
    start = time.monotonic()

    def second() -> None:
        # an interrupt ends both sides; the first side raises it, this one stays quiet
        with contextlib.suppress(RunStopped):
            runs[1] = _run_side(job, plan, scorer, 1 - first, gate)

    waiting = threading.Thread(target=second, daemon=True)
    waiting.start()
    try:
        runs[0] = _run_side(job, plan, scorer, first)
        _status(out, runs[0], job.limits.timeout_s)
    finally:
        gate.release(go=out.status is Status.OK)
        waiting.join()
    if 1 not in runs and stopping():  # the second side was stopped by an interrupt
        raise RunStopped("scoring was stopped by an interrupt before it finished")
    out.elapsed_s = time.monotonic() - start
    out.wall_s = [runs[0].wall_s, runs[1].wall_s]
    for k in (0, 1):
        if runs[k].log_tail:
            out.log += f"\n--- scoring {k + 1} of 2 ---\n" + runs[k].log_tail
    if out.status is not Status.OK:
        return out
    _status(out, runs[1], 2 * job.limits.timeout_s)
    if out.status is not Status.OK:
        return out
    try:
        scorer.verdict()
    except ScoreRejected as exc:
        out.status, out.reason = Status.REJECTED, str(exc)
    except ScoreTruncated as exc:
        out.status, out.reason = Status.FAILED, f"scoring failed: {exc}"
    return out
