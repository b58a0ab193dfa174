"""What a sandboxed run is given (limits, mounts) and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BACKENDS: tuple[str, ...] = ("bwrap", "unshare", "none")  # strongest first
SANDBOX_ROOT = "/sandbox"


@dataclass(frozen=True)
class Limits:
    """Bounds on one sandboxed run. ``None`` means "not limited"."""

    timeout_s: float
    memory_mb: int | None = None
    max_procs: int | None = None
    max_file_mb: int | None = 16384
    cpu_s: float | None = None  # CPU seconds of the whole process tree


@dataclass(frozen=True)
class Mount:
    """A host folder the program sees; under bwrap at ``/sandbox/<name>``."""

    name: str
    host: Path
    writable: bool = False

    def inside(self, backend: str) -> str:
        """The path the program uses for this folder."""
        if backend == "bwrap":
            return f"{SANDBOX_ROOT}/{self.name}"
        return str(self.host)


@dataclass(frozen=True)
class SandboxRun:
    """What happened to one sandboxed command."""

    backend: str
    returncode: int | None  # None when it was killed for running out of time
    timed_out: bool  # stopped at a limit: the wall clock's, or (cpu_limited) the CPU time's
    wall_s: float
    log_tail: str
    max_rss_mb: float = 0.0  # largest resident set of it or anything it waited for
    cpu_s: float = 0.0  # user + system CPU time of the whole tree, from the kernel at its reaping
    consumer_error: BaseException | None = None  # raised by the stdout consumer, if any
    cpu_limited: bool = False  # stopped at Limits.cpu_s
    # (wall, CPU) seconds of each phase of a gated run (sandbox.proc.Gate): held, then after
    # the release, then after each next_phase; () for a run without a gate
    phases: tuple[tuple[float, float], ...] = ()
