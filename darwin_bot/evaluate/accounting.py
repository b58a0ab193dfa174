"""What a sandboxed run is charged: the CPU time of its process tree, and how to read it.

The budget measures work, not waiting. On a CPU device the charge of a run is
the user + system CPU time of every process and thread of its sandbox, read by
the trusted side from the kernel when the tree is reaped
(:mod:`darwin_bot.evaluate.reaper`); the program never reports it. A busy
machine slows a run's wall clock, not the CPU time its work needs, so the same
program is charged about the same quiet or loaded.

Two things keep CPU time proportional to work, and the harness sets both:

* OpenMP's spin-waiting burns CPU while a thread waits for its siblings (and
  more so when the machine descheduled one of them): ``OMP_WAIT_POLICY=PASSIVE``
  makes waiting threads sleep.
* The thread count is fixed by the trusted side (``threads_for``): concurrent
  evaluations split the cores instead of each taking all of them.

On a GPU the host's CPU time says little (kernels run asynchronously and a
synchronising thread spins), so a CUDA run is charged its wall time, as before;
a GPU runner is one evaluation per device (:mod:`darwin_bot.evaluate.devices`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Measure(StrEnum):
    """Which figure a run is charged: its CPU time, or (on a GPU, or an old result) its wall time."""

    CPU = "cpu"
    WALL = "wall"


# A run that kept its threads busy less than this share of its wall time mostly
# waited for the machine; its wall time is no verdict on the program.
BUSY_FLOOR = 0.5


def measure_for(device: str) -> Measure:
    """The figure a run on ``device`` is charged."""
    return Measure.WALL if device.startswith("cuda") else Measure.CPU


def charged_cpu(device: str, train_cpu_s: float, score_cpu_s: float) -> dict[str, float]:
    """The CPU figures a run's metrics are charged (none on a GPU, where wall time is)."""
    if measure_for(device) is not Measure.CPU:
        return {}
    return {"train_cpu_s": train_cpu_s, "score_cpu_s": score_cpu_s}


def thread_env(threads: int | None) -> dict[str, str]:
    """The environment that keeps a CPU run's CPU time proportional to its work."""
    env = {"OMP_WAIT_POLICY": "PASSIVE"}
    if threads:
        n = str(threads)
        env.update(DARWIN_THREADS=n, OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n)
    return env


@dataclass(frozen=True)
class Usage:
    """What the kernel says one sandboxed run used."""

    wall_s: float
    cpu_s: float
    threads: int  # the threads it was given (cores it could keep busy)

    @property
    def busy(self) -> float:
        """Share of its wall time x threads that it spent on a CPU (1: never waited)."""
        if not self.wall_s > 0:
            return 1.0
        return self.cpu_s / (self.wall_s * max(1, self.threads))

    @property
    def contended(self) -> bool:
        """It mostly waited: for the machine, or (its own doing) for nothing."""
        return self.busy < BUSY_FLOOR
