"""Run the scoring sandbox of one evaluation: the exported graph on the windows and probes.

The sandbox holds no agent code: only trusted scripts (``graph_worker.py`` and
its siblings), a private copy of the exported graph and of the checkpoint (the
weight count reads it), and the input windows, in one read-only folder, with
its own fresh ``/tmp`` and no writable mount. The graph is a pure function
that the worker interprets operator by operator (see ``graph_archive.py``), so
nothing in it can keep state between windows, write anywhere, or talk to
anything; the sandbox bounds its time and memory.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darwin_bot.core.results import Status
from darwin_bot.evaluate.accounting import thread_env
from darwin_bot.evaluate.sandbox import Limits, Mount, SandboxRun, run_sandboxed, scrub_env
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
    weights: tuple[Path, ...] = ()  # a learning curve's checkpoints, each run in the graph


@dataclass
class ScoreOutcome:
    """How scoring ended: ``status`` is ok, rejected, failed or timeout."""

    status: Status
    reason: str
    scorer: Scorer
    wall_s: float = 0.0
    cpu_s: float = 0.0  # the sandbox's process tree, from the kernel
    cpu_limited: bool = False  # the sandbox was stopped at its CPU budget (Limits.cpu_s)
    log: str = ""


def run_worker(job: ScoreJob, plan: ProbePlan, scorer: Scorer) -> SandboxRun:
    """The scoring sandbox on ``plan``, its output fed to ``scorer.consume``."""
    job.folder.mkdir(parents=True)
    (job.folder / "home").mkdir()
    shutil.copyfile(job.archive, job.folder / "graph.pt2")  # a private copy, not a bind
    if job.checkpoint.is_file() and not job.checkpoint.is_symlink():
        shutil.copyfile(job.checkpoint, job.folder / "checkpoint.pt")
    for k, path in enumerate(job.weights):
        shutil.copyfile(path, job.folder / f"weights-{k}.pt")
    np.save(job.folder / "inputs.npy", plan.inputs)
    world_readable(job.folder)
    m, b = Mount("score", job.folder), job.backend
    worker = f"/sandbox/darwin/{WORKER.name}" if b == "bwrap" else str(WORKER)
    inside = m.inside(b)
    command = [
        sys.executable, worker, "--archive", f"{inside}/graph.pt2",
        "--inputs", f"{inside}/inputs.npy", "--context", str(plan.context),
        "--device", job.device,
        *(["--checkpoint", f"{inside}/checkpoint.pt", "--checkpoint-key", job.checkpoint_key]
          if (job.folder / "checkpoint.pt").is_file() else []),
        *[a for k in range(len(job.weights)) for a in ("--weights", f"{inside}/weights-{k}.pt")],
    ]  # fmt: skip
    # the thread settings training gets: OpenMP threads that spin while a sibling waits for
    # a core would charge the load to the program's scoring CPU time
    env = {"DARWIN_DEVICE": job.device, **thread_env(job.threads), **dict(job.env)}
    home = "/tmp" if b == "bwrap" else str(job.folder / "home")
    return run_sandboxed(
        command, backend=b, mounts=[m], cwd=inside, env=scrub_env(env, home=home),
        limits=job.limits, device=job.device, stdout_consumer=scorer.consume,
    )  # fmt: skip


def score_graph(job: ScoreJob, plan: ProbePlan, vocab: int) -> ScoreOutcome:
    """The sandbox, then the probes' verdict; every fault of the graph is a status."""
    scorer = Scorer(plan, vocab)
    out = ScoreOutcome(Status.OK, "", scorer)
    run = run_worker(job, plan, scorer)
    out.wall_s, out.cpu_s, out.log = run.wall_s, run.cpu_s, run.log_tail
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
    try:
        scorer.verdict()
    except ScoreRejected as exc:
        out.status, out.reason = Status.REJECTED, str(exc)
    except ScoreTruncated as exc:
        out.status, out.reason = Status.FAILED, f"scoring failed: {exc}"
    return out
