"""Trusted reaper: runs the sandbox's command line and reaps everything it leaves behind.

The CPU time of a sandboxed run is read from the kernel when its processes are
reaped: a process's rusage includes every child it waited for. bwrap's outer
process exits as soon as its PID 1 reports the program's exit status, without
waiting for that PID 1, so the orphaned PID 1 (which reaped the whole program)
would be reaped by the host's init and its CPU time lost. This reaper is a
child subreaper: orphans below it come back to it, it reaps them all, and then
exits with the command's status, so the evaluator's ``wait4`` on the reaper
sees the CPU time of the whole tree. Nothing here reads anything the program
wrote.

It runs by file path with ``python -I -S``, imports only the standard library
and never darwin_bot. It dies with its parent (``PR_SET_PDEATHSIG``), ignores
SIGTERM (the process group's SIGTERM ends bwrap, whose PID 1 dies with it, and
the reaper then reaps it) and ends as the command did: with its exit code, or
killed by the same signal.

Usage: ``python -I -S reaper.py PARENT_PID -- ARGV...``
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        sys.exit(f"reaper.py: prctl({option}) failed: {os.strerror(ctypes.get_errno())}")


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        sys.exit("usage: reaper.py PARENT_PID -- ARGV...")
    parent, command = int(argv[0]), argv[2:]
    if sys.platform == "linux":  # elsewhere only the backend "none" runs, uncounted orphans
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the evaluator died before the line above
            return 1
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    code = 1
    while True:  # the command, then every orphan it left (its PID 1 among them)
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if done == pid:
            code = os.waitstatus_to_exitcode(status)
    if code < 0:  # killed by a signal: end the same way, so the caller sees it
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
