"""The run lock: one darwin process that writes state per repository at a time.

The lock is ``<git common dir>/darwin.lock``, held with ``flock`` by the
process for its whole life: the kernel releases it when the process ends,
however it ends (SIGKILL included), so a lock is never stale and nothing has
to guess whether its holder is alive. The file also says who holds it (pid,
host, since when) for the message a second process prints.

Within one process the lock is re-entrant (a test or the demo may build
several engines for one repository); across processes a second one is
refused in one line (``RunLocked``, exit 2) or, with ``wait``, blocks until
the first one is done.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from darwin_bot.errors import RunLocked

LOCK_NAME = "darwin.lock"

# path -> open file descriptor, for the life of the process (never closed: the lock
# is released by the kernel when the process exits).
_HELD: dict[Path, int] = {}


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its file says."""

    pid: int
    host: str
    since: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, since {self.since}"


def lock_path(git_dir: Path) -> Path:
    return git_dir / LOCK_NAME


def read_holder(path: Path) -> Holder | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Holder(int(data["pid"]), str(data["host"]), str(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # being written, or not ours: the message says less


def hold_run_lock(git_dir: Path, *, wait: bool = False, what: str = "darwin") -> Path:
    """Take the repository's run lock for the rest of this process (idempotent).

    ``RunLocked`` when another process holds it and ``wait`` is false.
    """
    path = lock_path(git_dir).resolve()
    if path in _HELD:
        return path
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = read_holder(path)
        if not wait:
            os.close(fd)
            who = holder.describe() if holder else "another process"
            raise RunLocked(
                f"another darwin run holds the lock on this repository ({who}); "
                f"wait for it to finish or run '{what} --wait' ({path})"
            ) from None
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the holder exits or releases
    since = datetime.now(UTC).replace(microsecond=0).isoformat()
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": since, "at": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    _HELD[path] = fd
    return path


def release(git_dir: Path) -> None:
    """Give the lock back before the process ends (tests; a long-lived process)."""
    path = lock_path(git_dir).resolve()
    fd = _HELD.pop(path, None)
    if fd is not None:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
