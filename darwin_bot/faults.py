"""Fault injection: kill this process at its N-th write point, to test crash consistency.

A *write point* is every place darwin changes durable state: a state file
(``jsonio.write_json``, just before the rename that makes it visible), a git
write (a branch moved or deleted, a commit made, a push) and a forge write
(a PR, comment, status, label, issue or branch changed). With
``DARWIN_FAULT_AT=N`` in the environment the process SIGKILLs itself just
before its N-th write point (``DARWIN_FAULT_BEFORE=kind:name``: before the first
write point of that kind and name, e.g. ``git:push_generation``); with ``DARWIN_FAULT_LOG=FILE`` every write point
appends one line (``kind name``) to FILE, so a test can count them. Neither
variable is set in normal use, and then a write point costs one dict lookup.

``tests/test_faults.py`` runs a small evolution once uninterrupted, then for
every write point (or a seeded sample) kills it there, resumes, and compares
the final state field by field.
"""

from __future__ import annotations

import os
import signal
from typing import Any

AT_ENV = "DARWIN_FAULT_AT"
BEFORE_ENV = "DARWIN_FAULT_BEFORE"
LOG_ENV = "DARWIN_FAULT_LOG"

GIT_WRITES = frozenset(
    {
        "set_branch",
        "delete_branch",
        "commit_worktree",
        "merge_commit",
        "commit_paths_on_current",
        "commit_memory",
        "push",
        "push_current",
        "push_archive",
        "push_generation",
    }
)
FORGE_WRITES = frozenset(
    {
        "upsert_pr",
        "close_pr",
        "mark_ready",
        "merge_pr",
        "set_labels",
        "ensure_label",
        "set_status",
        "upsert_comment",
        "upsert_issue",
        "close_issue",
        "delete_branch",
    }
)

_seen = 0


def enabled() -> bool:
    return AT_ENV in os.environ or LOG_ENV in os.environ or BEFORE_ENV in os.environ


def point(kind: str, name: str) -> None:
    """One write point is about to happen: count it, log it, and die here if asked."""
    if not enabled():
        return
    global _seen
    _seen += 1
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{kind} {name}\n")
    if os.environ.get(AT_ENV) == str(_seen) or os.environ.get(BEFORE_ENV) == f"{kind}:{name}":
        os.kill(os.getpid(), signal.SIGKILL)


class Watched:
    """``target`` with a write point before each call of the methods in ``writes``."""

    def __init__(self, target: Any, kind: str, writes: frozenset[str]) -> None:
        self._target = target
        self._kind = kind
        self._writes = writes

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name not in self._writes or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            point(self._kind, name)
            return attr(*args, **kwargs)

        return call


def watch(target: Any, kind: str, writes: frozenset[str]) -> Any:
    """``target`` itself, or a :class:`Watched` wrapper of it when fault injection is on."""
    return Watched(target, kind, writes) if enabled() else target
