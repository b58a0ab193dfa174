"""Snapshots of the checkpoints a training program saves, taken by the harness's own clock.

While training runs, a thread of the trusted harness looks at the program's
output folder every :data:`POLL_S` seconds. Each time the checkpoint file
changes (a new inode, size or modification time) and holds a complete torch
zip archive, the harness copies it into its own folder, out of the program's
reach, and stamps the copy with the time since it started the training
sandbox. That stamp, not anything the program says, places the point on the
curve: a checkpoint can only hold weights trained before the harness saw it,
and a program that saves late cannot pass it off as early. Later writes
cannot change a copy already taken.

The output folder is hostile: the file may be a link, a FIFO or still being
written. Only a regular file, opened without following links, is copied (a file
with holes is refused: its copy would cost the harness's disk what it did not
cost the program's); a copy is kept only when the file did not change while it was copied and the copy is
a readable zip (``torch.save`` writes the zip's directory last, so a partial
write is never one). At most ``limit`` snapshots are taken (the requested
points); the last time the final model file changed is kept as the end of
training.

Each stamp also holds the CPU time the sandbox's process tree had used by
then (:func:`~darwin_bot.evaluate.proctree.tree_cpu_s`, read from ``/proc``
once the harness hands over the tree's root with :meth:`CheckpointWatcher.started`):
a program can stretch its wall time for free by sleeping, not its CPU time.
A stamp taken after the tree was reaped has no CPU figure (``None``): the
caller knows the run's total.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from darwin_bot.evaluate.proctree import tree_cpu_s
from darwin_bot.evaluate.scratch import has_holes

POLL_S = 0.1
GIVE_UP_TRIES = 5  # polls a file may stay unchanged and unreadable before it is skipped
MAX_SNAPSHOT_BYTES = 8 * 1024**3  # a checkpoint past this is not copied (the disk is shared)


@dataclass(frozen=True)
class Snapshot:
    """One checkpoint the harness copied: where, and when (seconds since training started)."""

    path: Path
    at_s: float
    cpu_s: float | None = None  # the tree's CPU seconds by then (None: not read)


@dataclass
class CheckpointWatcher:
    """Copies ``out/name`` each time it changes, up to ``limit`` times; see the module doc."""

    out: Path
    name: str
    dest: Path
    limit: int
    model_file: str = ""  # the final weights' file: the time it last changed ends training
    snapshots: list[Snapshot] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why a change was not copied
    model_at_s: float | None = None
    model_cpu_s: float | None = None  # the tree's CPU seconds when the model last changed
    tree_read: bool = False  # whether the tree's CPU time was read at all
    _root: int | None = None  # the sandbox's process, while it runs
    _cpu_seen: float = 0.0
    _seen: tuple[int, int, int] | None = None
    _busy: tuple[tuple[int, int, int] | None, int] = (None, 0)  # a change not yet copied, tries
    _model_seen: tuple[int, int, int] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0

    def __enter__(self) -> CheckpointWatcher:
        self.dest.mkdir(parents=True, exist_ok=True)
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="darwin-curve", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._root = None  # reaped: its pid may be another process's by now
        self.poll()  # the program has exited: its last write is complete

    def started(self, pid: int) -> None:
        """The sandbox's root process: its tree's CPU time stamps the snapshots from now on."""
        self._root = pid

    def cpu(self) -> float | None:
        """The tree's CPU seconds so far, never less than read before (None: no tree to read)."""
        root = self._root
        used = tree_cpu_s(root) if root is not None else 0.0
        if not used > 0:  # no /proc, or the tree is gone
            return None
        self._cpu_seen = max(self._cpu_seen, used)
        self.tree_read = True
        return self._cpu_seen

    def elapsed(self) -> float:
        """Seconds since the watcher started (with the training sandbox)."""
        return time.monotonic() - self._t0

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self.poll()

    def poll(self) -> None:
        """Look once: copy the checkpoint if it changed, note a change of the model file."""
        now = self.elapsed()
        if self.model_file:
            sig = _signature(self.out / self.model_file)
            if sig is not None and sig != self._model_seen:
                self._model_seen, self.model_at_s, self.model_cpu_s = sig, now, self.cpu()
        if len(self.snapshots) >= self.limit:
            return
        sig = _signature(self.out / self.name)
        if sig is None or sig == self._seen:
            return
        copy = self.dest / f"point-{len(self.snapshots)}.pt"
        cpu = self.cpu()  # before the copy, as ``now`` is
        why = _copy(self.out / self.name, copy, sig)
        if why is None:
            self._seen = sig
            self.snapshots.append(Snapshot(copy, now, cpu))
            return
        tries = self._busy[1] + 1 if self._busy[0] == sig else 1
        self._busy = (sig, tries)
        if why == "busy" and tries >= GIVE_UP_TRIES:  # unchanged, and still no complete zip
            why = "the checkpoint is not a torch zip archive (save it with torch.save)"
        if why != "busy":
            self._seen = sig
            if why not in self.skipped:
                self.skipped.append(why)


def _signature(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime) of a regular file; None for anything else or nothing."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _copy(src: Path, dest: Path, sig: tuple[int, int, int]) -> str | None:
    """Copy ``src`` to ``dest`` when it is still ``sig``; None, "busy" (try again) or why not."""
    if sig[1] > MAX_SNAPSHOT_BYTES:
        return f"a checkpoint of {sig[1]} bytes is over the {MAX_SNAPSHOT_BYTES} bytes copied"
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return "busy"
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or (st.st_ino, st.st_size, st.st_mtime_ns) != sig:
            return "busy"
        if has_holes(st):  # its copy here would take disk the program's file does not
            return "the checkpoint is a sparse file (holes): save it with torch.save"
        if not zipfile.is_zipfile(f):  # not complete yet: nothing copied
            return "busy"
        f.seek(0)
        with open(dest, "wb") as g:
            shutil.copyfileobj(f, g, length=1 << 20)
    if _signature(src) != sig or not zipfile.is_zipfile(dest):
        dest.unlink(missing_ok=True)
        return "busy"
    return None
