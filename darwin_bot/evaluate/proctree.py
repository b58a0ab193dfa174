"""The CPU time a running process tree has used so far, read from ``/proc`` by the trusted side.

Used to stop a run at its CPU budget while it runs; the figure a finished run
is charged is the kernel's rusage at its reaping (``sandbox.proc``), which this
matches except for processes that exited without being reaped by the tree.
"""

from __future__ import annotations

import os

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of it and of the children it reaped), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces or ")": split after the last one
    fields = raw[raw.rindex(b")") + 2 :].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return int(fields[1]), (utime + stime + cutime + cstime) / TICKS


def tree_cpu_s(root: int) -> float:
    """CPU seconds used by ``root``, its live descendants and what they reaped (0: no /proc)."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return 0.0
    for name in entries:
        stat = _stat(name)
        if stat is not None:
            children.setdefault(stat[0], []).append(int(name))
            cpu[int(name)] = stat[1]
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(children.get(pid, ()))
    return total
