"""Lock files a killed git left behind: found, given time to settle, removed.

A git killed mid-commit or mid-update-ref leaves ``index.lock`` or
``refs/.../<name>.lock`` in the repository, and every later git write then
fails until someone deletes it. Only call this with the run lock held
(``darwin_bot.git.runlock``): then no darwin process can own one. A lock a person's
own git holds lives for milliseconds, so only a lock that is still there,
unchanged, ``settle_s`` after it was last written is removed. The run lock
itself (``darwin.lock``) is not git's and is never touched.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from darwin_bot.git.runlock import LOCK_NAME


def remove_stale_git_locks(common_dir: Path, *, settle_s: float = 2.0) -> list[str]:
    """Delete the settled git lock files under ``common_dir``; their paths relative to it."""
    found = [
        p
        for p in [*common_dir.glob("*.lock"), *common_dir.glob("refs/**/*.lock")]
        if p.is_file() and p.name != LOCK_NAME
    ]
    seen: dict[Path, int] = {}
    for path in found:
        with contextlib.suppress(FileNotFoundError):
            seen[path] = path.stat().st_mtime_ns
    if not seen:
        return []
    wait = max(seen.values()) / 1e9 + settle_s - time.time()
    if wait > 0:
        time.sleep(min(wait, settle_s))
    removed = []
    for path, mtime in seen.items():
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime_ns == mtime:  # unchanged: nobody is writing it
                path.unlink()
                removed.append(path.relative_to(common_dir).as_posix())
    return removed
