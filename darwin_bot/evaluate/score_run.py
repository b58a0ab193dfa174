"""Run the scoring sandbox of one evaluation: the exported graph on the windows and probes.

The sandbox holds no agent code: only trusted scripts (``graph_worker.py`` and
its siblings), a private copy of the exported graph and of the checkpoint (the
weight count reads it), and the input windows, in one read-only folder, with
its own fresh ``/tmp`` and no writable mount. The graph is a pure function
that the worker interprets operator by operator (see ``graph_archive.py``), so
nothing in it can keep state between windows, write anywhere, or talk to
anything; the sandbox bounds its time and memory.

The sandbox can be started before there is anything to score
(:class:`ScoreSandbox`): its interpreter imports torch while the agent trains,
then blocks on one line of stdin. At the handover the trusted side copies the
checked graph and the inputs into the empty folder and writes the job's line.
Its time is cut in phases there (``sandbox.proc.Gate``): what it did while
held (its start-up) is neither charged nor limited as scoring. A learning
curve's checkpoints are scored by the same worker after the final model, in a
phase of their own.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from darwin_bot.core import Status
from darwin_bot.evaluate.accounting import thread_env
from darwin_bot.evaluate.sandbox import Gate, Limits, Mount, SandboxRun, run_sandboxed, scrub_env
from darwin_bot.evaluate.scoring import ProbePlan, Scorer, ScoreRejected, ScoreTruncated
from darwin_bot.evaluate.scratch import world_readable

WORKER = Path(__file__).with_name("graph_worker.py")
REJECTED_EXIT = 3  # graph_worker.py: its own reader refused the graph


@dataclass(frozen=True)
class ScoreJob:
    """Where the exported graph and checkpoint are, and how to run the worker."""

    backend: str
    device: str
    folder: Path  # made here: the private copies and the inputs
    archive: Path
    checkpoint: Path
    checkpoint_key: str  # count only this entry of the checkpoint ("" = all of it)
    limits: Limits
    threads: int | None = None
    env: tuple[tuple[str, str], ...] = ()  # more environment (the worker's own device)


@dataclass(frozen=True)
class CurvePart:
    """A learning curve's checkpoints, scored after the final model by the same worker."""

    plan: ProbePlan  # the same windows, its own probes
    paths: tuple[Path, ...]
    consume: Callable[[IO[bytes]], None]  # reads every checkpoint's frames


@dataclass
class ScoreOutcome:
    """How scoring ended: ``status`` is ok, rejected, failed or timeout."""

    status: Status
    reason: str
    scorer: Scorer
    wall_s: float = 0.0  # the final model's phase (not the start-up, not the curve)
    cpu_s: float = 0.0  # the same, of the sandbox's process tree, from the kernel
    cpu_limited: bool = False  # the sandbox was stopped at its CPU budget (Limits.cpu_s)
    log: str = ""
    startup_wall_s: float = 0.0  # the worker's start-up (torch's import), before the job came
    curve_wall_s: float = 0.0
    curve_cpu_s: float = 0.0
    curve_stopped: str = ""  # why the curve's part ended early ("": it did not)


class ScoreSandbox:
    """The scoring sandbox of one evaluation, started before its job is known.

    :meth:`start` launches ``graph_worker.py`` on an empty read-only folder; it
    imports torch and blocks on stdin. :meth:`run` fills the folder and sends
    the job; :meth:`close` ends a worker that got none. ``hold_s`` bounds the
    wait; the job's own limits count from the handover.
    """

    def __init__(self, job: ScoreJob, context: int, hold_s: float) -> None:
        self.job, self.context, self.hold_s = job, context, hold_s
        self.gate = Gate()
        self._consumer: Callable[[IO[bytes]], None] | None = None
        self._handed = threading.Event()
        self._result: SandboxRun | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ScoreSandbox:
        self.job.folder.mkdir(parents=True)
        (self.job.folder / "home").mkdir()
        world_readable(self.job.folder)
        self._thread.start()
        return self

    def _run(self) -> None:
        job, b = self.job, self.job.backend
        inside = Mount("score", job.folder).inside(b)
        worker = f"/sandbox/darwin/{WORKER.name}" if b == "bwrap" else str(WORKER)
        command = [sys.executable, worker, "--context", str(self.context), "--device", job.device]
        # the thread settings training gets: OpenMP threads that spin while a sibling waits
        # for a core would charge the load to the program's scoring CPU time
        env = {"DARWIN_DEVICE": job.device, **thread_env(job.threads), **dict(job.env)}
        home = "/tmp" if b == "bwrap" else str(job.folder / "home")
        held = Limits(self.hold_s, job.limits.memory_mb, job.limits.max_procs)
        try:
            self._result = run_sandboxed(
                command,
                backend=b,
                mounts=[Mount("score", job.folder)],
                cwd=inside,
                env=scrub_env(env, home=home),
                limits=held,
                device=job.device,
                stdout_consumer=self._consume,
                gate=self.gate,
            )
        except BaseException as exc:  # RunStopped, SandboxError: raised in the caller's thread
            self._error = exc

    def _consume(self, stream: IO[bytes]) -> None:
        self._handed.wait()
        if self._consumer is not None:
            self._consumer(stream)
        else:
            stream.read()

    def run(self, line: bytes, consumer: Callable[[IO[bytes]], None], limits: Limits) -> SandboxRun:
        """Send the job ``line`` (the folder filled), its frames to ``consumer``; the run.

        ``limits``' time and CPU bound the job from the handover: the scoring budget, not
        the hold's (which only had to outlast training).
        """
        self._consumer = consumer
        self._handed.set()
        self.gate.release(True, line, limits.timeout_s, limits.cpu_s)
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def close(self) -> None:
        """End the worker if it got no job (it exits at end of file); wait for it."""
        if not self._handed.is_set():
            self._handed.set()
            self.gate.release(False)
        if self._thread.is_alive():
            self._thread.join()


def _fill(job: ScoreJob, plan: ProbePlan, curve: CurvePart | None) -> bytes:
    """Copy the graph, checkpoint and inputs into the folder; the job's line for the worker."""
    inside = Mount("score", job.folder).inside(job.backend)
    shutil.copyfile(job.archive, job.folder / "graph.pt2")  # a private copy, not a bind
    spec: dict[str, object] = {"archive": f"{inside}/graph.pt2", "inputs": f"{inside}/inputs.npy"}
    if job.checkpoint.is_file() and not job.checkpoint.is_symlink():
        shutil.copyfile(job.checkpoint, job.folder / "checkpoint.pt")
        spec |= {"checkpoint": f"{inside}/checkpoint.pt", "checkpoint_key": job.checkpoint_key}
    np.save(job.folder / "inputs.npy", plan.inputs)
    if curve is not None and curve.paths:
        for k, path in enumerate(curve.paths):
            shutil.copyfile(path, job.folder / f"weights-{k}.pt")
        np.save(job.folder / "curve-inputs.npy", curve.plan.inputs)
        spec["weights"] = [f"{inside}/weights-{k}.pt" for k in range(len(curve.paths))]
        spec["curve_inputs"] = f"{inside}/curve-inputs.npy"
    world_readable(job.folder)
    return json.dumps(spec).encode() + b"\n"


@dataclass
class _Frames:
    """The final model's frames, then (a new phase, with the same limits) the curve's."""

    scorer: Scorer
    curve: CurvePart | None
    gate: Gate
    limits: Limits
    final_done: bool = field(default=False)

    def consume(self, stream: IO[bytes]) -> None:
        self.scorer.consume(stream, last=self.curve is None)
        self.final_done = True
        if self.curve is not None:
            self.gate.next_phase(self.limits.timeout_s, self.limits.cpu_s)
            self.curve.consume(stream)


def score_graph(
    job: ScoreJob,
    plan: ProbePlan,
    vocab: int,
    sandbox: ScoreSandbox | None = None,
    curve: CurvePart | None = None,
) -> ScoreOutcome:
    """The sandbox (``sandbox``, started early, or one started now), then the probes' verdict;
    every fault of the graph is a status."""
    if sandbox is None:
        sandbox = ScoreSandbox(job, plan.context, job.limits.timeout_s + 60.0).start()
    scorer = Scorer(plan, vocab)
    part = curve if curve is not None and curve.paths else None
    frames = _Frames(scorer, part, sandbox.gate, job.limits)
    try:
        run = sandbox.run(_fill(job, plan, frames.curve), frames.consume, job.limits)
    finally:
        sandbox.close()
    return _outcome(job, run, frames)


def _outcome(job: ScoreJob, run: SandboxRun, frames: _Frames) -> ScoreOutcome:
    phases = list(run.phases) or [(0.0, 0.0), (run.wall_s, run.cpu_s)]
    final = phases[1] if len(phases) > 1 else (0.0, 0.0)
    curve = phases[2] if len(phases) > 2 else (0.0, 0.0)
    out = ScoreOutcome(Status.OK, "", frames.scorer, final[0], final[1], log=run.log_tail)
    out.startup_wall_s, out.curve_wall_s, out.curve_cpu_s = phases[0][0], curve[0], curve[1]
    if frames.final_done:  # whatever ended the run came after the final model's frames
        out.curve_stopped = _curve_stop(job, run)
        return _verdict(out)
    if run.timed_out:
        out.status = Status.TIMEOUT
        out.reason = f"scoring ran past the {job.limits.timeout_s:g} s limit"
        out.cpu_limited = run.cpu_limited
    elif isinstance(run.consumer_error, ScoreRejected):
        out.status, out.reason = Status.REJECTED, str(run.consumer_error)
    elif run.returncode == REJECTED_EXIT:
        out.status = Status.REJECTED
        out.reason = run.log_tail.strip().splitlines()[-1] if run.log_tail.strip() else "refused"
    elif run.returncode != 0 or run.consumer_error is not None:
        why = f"exit code {run.returncode}" if run.returncode else str(run.consumer_error)
        out.status = Status.FAILED
        out.reason = f"scoring failed: running the exported graph crashed ({why})"
    if out.status is not Status.OK:
        return out
    return _verdict(out)


def _curve_stop(job: ScoreJob, run: SandboxRun) -> str:
    if run.timed_out:
        return f"scoring the curve ran past the {job.limits.timeout_s:g} s limit"
    if run.consumer_error is not None:
        return f"scoring the curve failed: {run.consumer_error}"
    if run.returncode != 0:
        tail = run.log_tail.strip().splitlines()
        return f"scoring the curve failed ({tail[-1] if tail else run.returncode})"
    return ""


def _verdict(out: ScoreOutcome) -> ScoreOutcome:
    try:
        out.scorer.verdict()
    except ScoreRejected as exc:
        out.status, out.reason = Status.REJECTED, str(exc)
    except ScoreTruncated as exc:
        out.status, out.reason = Status.FAILED, f"scoring failed: {exc}"
    return out
