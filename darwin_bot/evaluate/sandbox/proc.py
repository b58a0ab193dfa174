"""Running the sandbox's process: its output tail, its start gate, its wall-clock limit, its end.

The process leads its own process group; at the end, normal or not, the whole
group is sent SIGTERM, then SIGKILL after :data:`KILL_GRACE_S`, so nothing it
started outlives it.

:func:`stop_all` is the interrupt's path (Ctrl-C): it ends every sandboxed
process group this process has running, at once, and makes every
:func:`run_process` in flight or yet to come raise ``RunStopped``: a run cut
short is never a result, so nothing about it is cached and the next run
trains it again.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from darwin_bot.errors import RunStopped
from darwin_bot.evaluate.proctree import tree_cpu_s
from darwin_bot.evaluate.sandbox.types import SandboxRun

LOG_TAIL_BYTES = 4096
# Runs the command and reaps every process it leaves, so the kernel's rusage of it
# (read at its reaping below) covers the CPU time of the whole sandboxed tree.
REAPER = Path(__file__).parent.parent / "reaper.py"
CPU_POLL_S = 0.5  # how often a CPU budget is checked while the tree runs
KILL_GRACE_S = 3.0

_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()
_stopping = threading.Event()
STOPPED = "stopped by an interrupt before it finished"


def stop_all() -> int:
    """End every running sandbox now (SIGKILL to each group); later runs refuse to start.

    Safe to call from a signal handler: it takes no lock that a handler could
    interrupt its own thread holding for long. Returns how many groups it ended.
    """
    _stopping.set()
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    return len(procs)


def stopping() -> bool:
    """Whether :func:`stop_all` was called in this process."""
    return _stopping.is_set()


class Gate:
    """Holds a sandboxed program at its start until the caller says go (or stop), in phases.

    The program reads one line from stdin: the line given to :meth:`release`
    (``go`` by default), or end of file. A run's time is cut into phases: the
    first from its start to the release (the program starting up, held), the
    next from the release, and one more at each :meth:`next_phase`. A phase
    given ``timeout_s``/``cpu_s`` replaces the run's limits with these, counted
    from its own start; each phase's wall and CPU seconds come back in
    ``SandboxRun.phases``, so what a program did while held is not charged to
    what it does after.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._go = False
        self._line = b"go\n"
        self._pending: tuple[float | None, float | None] = (None, None)
        self.pid: int | None = None  # set by the run: the process tree whose CPU time is read
        # (monotonic time, tree CPU seconds, phase timeout_s, phase cpu_s) at each boundary
        self.marks: list[tuple[float, float, float | None, float | None]] = []
        self._lock = threading.Lock()

    def release(
        self,
        go: bool,
        line: bytes = b"go\n",
        timeout_s: float | None = None,
        cpu_s: float | None = None,
    ) -> None:
        self._go, self._line, self._pending = go, line, (timeout_s, cpu_s)
        self._event.set()

    def next_phase(self, timeout_s: float | None = None, cpu_s: float | None = None) -> None:
        """Start a new phase now (its limits, when given, count from now)."""
        self._mark(timeout_s, cpu_s)

    def _mark(self, timeout_s: float | None, cpu_s: float | None) -> None:
        cpu = tree_cpu_s(self.pid) if self.pid is not None else 0.0
        with self._lock:
            self.marks.append((time.monotonic(), cpu, timeout_s, cpu_s))

    def bounds(
        self, start: float, timeout_s: float, cpu_s: float | None
    ) -> tuple[float, float | None]:
        """(deadline, CPU cap) now: the last phase's limits that were given, else the run's."""
        with self._lock:
            marks = list(self.marks)
        deadline, cap = start + timeout_s, cpu_s
        for at, cpu, phase_timeout, phase_cpu in marks:
            if phase_timeout is not None:
                deadline = at + phase_timeout
            if phase_cpu is not None:
                cap = cpu + phase_cpu
        return deadline, cap

    def phases(self, start: float, end: float, cpu_end: float) -> tuple[tuple[float, float], ...]:
        """(wall, CPU) seconds of each phase, the first from ``start``; () before any release."""
        with self._lock:
            marks = list(self.marks)
        if not marks:
            return ()
        points = [(start, 0.0)] + [(at, cpu) for at, cpu, _, _ in marks] + [(end, cpu_end)]
        return tuple(
            (max(0.0, b[0] - a[0]), max(0.0, b[1] - a[1])) for a, b in itertools.pairwise(points)
        )

    def feed(self, stdin: IO[bytes]) -> None:
        self._event.wait()
        with contextlib.suppress(OSError):  # it may have died already
            if self._go:
                self._mark(*self._pending)  # the held phase ends as the line is written
                stdin.write(self._line)
                stdin.flush()
            stdin.close()


class _Tail:
    """Reads a pipe to its end, keeping only the last ``limit`` bytes.

    ``on_line`` (display only: the program's lines are claims) is called with
    each complete line as it arrives; a line longer than ``limit`` is dropped,
    and an exception in ``on_line`` never stops the reading.
    """

    def __init__(
        self,
        stream: IO[bytes],
        limit: int = LOG_TAIL_BYTES,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self._stream = stream
        self._limit = limit
        self._buf = bytearray()
        self._on_line = on_line
        self._line = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while chunk := self._stream.read1(65536):  # type: ignore[attr-defined]
            self._buf += chunk
            if len(self._buf) > 2 * self._limit:
                del self._buf[: -self._limit]
            if self._on_line is not None:
                self._lines(chunk)

    def _lines(self, chunk: bytes) -> None:
        self._line += chunk
        *complete, rest = self._line.split(b"\n")
        self._line = bytearray(rest if len(rest) <= self._limit else b"")
        for raw in complete:
            if len(raw) <= self._limit:
                with contextlib.suppress(Exception):
                    self._on_line(raw.decode("utf-8", errors="replace"))  # type: ignore[misc]

    def text(self) -> str:
        return bytes(self._buf[-self._limit :]).decode("utf-8", errors="replace")


class _Meter:
    """The most CPU time the tree was seen to have used, polled from ``/proc`` while it runs.

    The kernel's rusage at the reaping is the figure, except for what it cannot
    see: a process still running when the sandbox's PID 1 exits (or is killed)
    is killed and reaped without its CPU time reaching anyone's rusage. The
    polled figure bounds that loss to one poll interval.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu_s = 0.0
        self._next = time.monotonic() + CPU_POLL_S

    def poll(self, now: float | None = None) -> float:
        if now is None or now >= self._next:
            self._next = time.monotonic() + CPU_POLL_S
            self.cpu_s = max(self.cpu_s, tree_cpu_s(self.pid))
        return self.cpu_s


def _wait(
    proc: subprocess.Popen[bytes],
    deadline: float | None,
    meter: _Meter | None = None,
    cpu_cap_s: float | None = None,
    bounds: Callable[[], tuple[float, float | None]] | None = None,
) -> tuple[int | None, resource.struct_rusage | None]:
    """Reap ``proc`` by ``deadline`` (monotonic; None: block) or until ``meter`` sees its tree
    past ``cpu_cap_s`` CPU seconds: (exit code or None when stopped, its rusage).
    ``bounds``, when given, says both anew at each poll (a :class:`Gate`'s phases).

    ``os.wait4`` instead of ``Popen.wait`` because its rusage, read from the
    kernel, covers the program and everything it reaped: the peak memory, and
    the CPU time of every thread of the whole tree (the sandbox's PID 1 reaps
    whatever the program started, and the reaper reaps PID 1).
    """
    while True:
        pid, status, usage = os.wait4(proc.pid, 0 if deadline is None else os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage
        if bounds is not None:
            deadline, cpu_cap_s = bounds()
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return None, None
        if meter is not None:
            cpu = meter.poll(now)
            if cpu_cap_s is not None and cpu > cpu_cap_s:
                return None, None
        time.sleep(0.02)


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the leader has exited, without reaping it (its rusage is still wanted)."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped
        return True


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, give the leader a grace period, then SIGKILL the group."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + KILL_GRACE_S
    while time.monotonic() < deadline and not _exited(proc):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _consume(
    proc: subprocess.Popen[bytes],
    consumer: Callable[[IO[bytes]], None],
    errors: list[BaseException],
) -> threading.Thread:
    """Hand stdout to ``consumer`` on a thread; if it raises, kill the group, keep the error."""

    def consume() -> None:
        try:
            consumer(proc.stdout)  # type: ignore[arg-type]
        except Exception as exc:  # handed back to the caller as a value
            errors.append(exc)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    return thread


def run_process(
    argv: Sequence[str],
    *,
    backend: str,
    env: Mapping[str, str],
    timeout_s: float,
    stdout_consumer: Callable[[IO[bytes]], None] | None = None,
    gate: Gate | None = None,
    on_line: Callable[[str], None] | None = None,
    cpu_s: float | None = None,
    on_start: Callable[[int], None] | None = None,
) -> SandboxRun:
    """Run ``argv`` (the whole sandbox command line) to its end, ``timeout_s`` or ``cpu_s``
    CPU seconds; see :func:`darwin_bot.evaluate.sandbox.run_sandboxed` for the pipes.

    Raises ``RunStopped`` when :func:`stop_all` was called before or while it ran.
    """
    if _stopping.is_set():
        raise RunStopped(STOPPED)
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", str(REAPER), str(os.getpid()), "--", *argv],
        stdin=subprocess.PIPE if gate else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stdout_consumer else subprocess.STDOUT,
        env=dict(env),
        start_new_session=True,  # its own process group, killed as one
        close_fds=True,
    )
    with _live_lock:
        _live.add(proc)
    if on_start is not None:
        on_start(proc.pid)
    try:
        run = _supervise(proc, backend, timeout_s, stdout_consumer, gate, on_line, cpu_s)
    finally:  # an exception (an interrupt included) never leaves the group running
        with _live_lock:
            _live.discard(proc)
        if proc.returncode is None:
            _kill_group(proc)
    if _stopping.is_set():
        raise RunStopped(STOPPED)
    return run


def _supervise(
    proc: subprocess.Popen[bytes],
    backend: str,
    timeout_s: float,
    stdout_consumer: Callable[[IO[bytes]], None] | None,
    gate: Gate | None,
    on_line: Callable[[str], None] | None,
    cpu_s: float | None,
) -> SandboxRun:
    """Feed, watch and reap a started ``proc`` (see :func:`run_process`)."""
    start = time.monotonic()
    assert proc.stdout is not None
    tail = _Tail(proc.stderr if stdout_consumer else proc.stdout, on_line=on_line)  # type: ignore[arg-type]
    consumer_error: list[BaseException] = []
    consumer_thread = None
    if stdout_consumer is not None:
        consumer_thread = _consume(proc, stdout_consumer, consumer_error)
    bounds = None
    if gate is not None:
        gate.pid = proc.pid
        bounds = functools.partial(gate.bounds, start, timeout_s, cpu_s)
        threading.Thread(target=gate.feed, args=(proc.stdin,), daemon=True).start()
    meter = _Meter(proc.pid)
    returncode, usage = _wait(proc, start + timeout_s, meter, cpu_s, bounds)
    timed_out = returncode is None
    end = time.monotonic()
    wall = end - start
    cpu_limited = timed_out and end < (bounds()[0] if bounds else start + timeout_s)
    if timed_out:
        meter.poll()  # what it used up to the kill, which the kernel's figure would lose
    _kill_group(proc)  # also after a normal exit: nothing it started may outlive it
    if timed_out:
        returncode, usage = _wait(proc, None)
    assert usage is not None
    for thread in (tail.thread, consumer_thread):
        if thread is not None:
            thread.join(timeout=5.0)
    cpu = max(usage.ru_utime + usage.ru_stime, meter.cpu_s)
    return SandboxRun(
        backend=backend,
        returncode=None if timed_out else returncode,
        timed_out=timed_out,
        cpu_limited=cpu_limited,
        max_rss_mb=usage.ru_maxrss / 1024.0,
        wall_s=wall,
        cpu_s=cpu,
        log_tail=tail.text(),
        consumer_error=consumer_error[0] if consumer_error else None,
        phases=gate.phases(start, end, cpu) if gate is not None else (),
    )
