"""Atomic JSON files: the one way darwin-bot writes state to disk.

A write goes to a temporary file in the same folder, is flushed and fsynced,
then renamed over the target, so a crash leaves either the old file or the
new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from darwin_bot import faults
from darwin_bot.errors import StateError


def write_json(path: Path, data: Any, *, allow_nan: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (sorted keys, trailing newline).

    A file that already holds exactly this content is left alone (and its
    mtime with it), so rerunning a step rewrites nothing. An OS failure is a
    ``StateError`` naming the file.
    """
    text = (
        json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=allow_nan) + "\n"
    )
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            faults.point("state", path.name)  # tests kill here: a temp file, no target
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StateError(f"cannot write {path}: {exc}") from exc
    return path


def read_json(path: Path) -> Any:
    """Read a JSON file; a corrupt one is a StateError naming the file and the fix."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StateError(
            f"{path} is not valid JSON ({exc}); restore it from git or delete it to recompute"
        ) from exc
