"""Fail-closed check of an agent checkout before any of its code runs.

An agent branch may change only the evolvable paths: the bot's own commits
are checked before they are pushed, but anyone with push access can put a
commit on ``darwin/*``. So the evaluate step looks at what the agent's
commits changed, from the merge base with the default branch to the
checkout's ``HEAD``, and rejects a branch that touches anything else
(``darwin_bot/``, ``.github/workflows/``, ``action.yml``, ``darwin.toml``...).

Comparing trees with the trusted checkout instead would reject every agent
as soon as the default branch moves on (memory commits, a human's edit), so
history is required; a checkout without it (a shallow clone, no default
branch) cannot be verified and is rejected too: fail closed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

GIT_TIMEOUT_S = 60


def _git(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(checkout), *args],
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )


def _base_commit(checkout: Path, default_branch: str) -> str | None:
    for ref in (f"refs/remotes/origin/{default_branch}", f"refs/heads/{default_branch}"):
        found = _git(checkout, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
        if found.returncode == 0:
            return found.stdout.strip()
    return None


def allowed_path(path: str, allowed: Sequence[str]) -> bool:
    """Whether ``path`` lies under one of ``allowed`` (``seed/`` is a folder, ``x.py`` a file)."""
    return any(
        path == spec.rstrip("/") or path.startswith(spec.rstrip("/") + "/") for spec in allowed
    )


def unverified_reason(checkout: Path, default_branch: str, allowed: Sequence[str]) -> str | None:
    """None when the agent's commits change only ``allowed`` paths; else why it is rejected.

    ``checkout`` is a clone of the repository with the agent's commit checked
    out and the default branch's history present (``fetch-depth: 0``).
    """
    if _git(checkout, "rev-parse", "--git-dir").returncode != 0:
        return f"{checkout} is not a git checkout; cannot verify which paths the agent changed"
    if _git(checkout, "rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        return (
            "the agent checkout is shallow; check it out with fetch-depth: 0 so it can be verified"
        )
    base = _base_commit(checkout, default_branch)
    if base is None:
        return f"the agent checkout has no {default_branch!r} branch to compare with"
    fork = _git(checkout, "merge-base", base, "HEAD")
    if fork.returncode != 0:
        return f"the agent's commit shares no history with {default_branch!r}"
    diff = _git(checkout, "diff", "--name-only", "--no-renames", "-z", fork.stdout.strip(), "HEAD")
    if diff.returncode != 0:
        return f"cannot list the agent's changes: {diff.stderr.strip()[:200]}"
    outside = sorted(p for p in diff.stdout.split("\0") if p and not allowed_path(p, allowed))
    if outside:
        shown = ", ".join(outside[:5]) + (
            f" and {len(outside) - 5} more" if len(outside) > 5 else ""
        )
        return f"the branch changes paths outside {', '.join(allowed)}: {shown}"
    return None
