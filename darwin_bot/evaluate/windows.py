"""The secret that draws the scored windows, kept where no sandbox can read it.

The scored windows are drawn from the whole held-out split by a seed derived
from a secret (see ``scoring.py``). The secret comes from, in this order:

1. ``DARWIN_WINDOW_SECRET`` in the trusted process's environment (CI: a
   repository secret given to every evaluation job, so that every job of one
   run draws the same windows). The sandbox's environment is an allowlist
   (``sandbox_env``), so the variable never reaches a program.
2. A file ``darwin-window-secret`` (mode 0600) in a folder of the trusted side,
   the repository's git folder for ``darwin run``: never copied into a
   sandbox (only the evolvable paths are) and never committed.

Without either, each evaluation draws its own secret windows
(:func:`darwin_bot.evaluate.scoring.secret_seed`). Results on different windows
are not comparable: :func:`fingerprint` goes into the evaluation cache's key
(through the evaluator's version), so a new secret is a new cache.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from darwin_bot.evaluate.scoring import WINDOW_SEED, secret_seed

ENV = "DARWIN_WINDOW_SECRET"
FILE = "darwin-window-secret"


def read_secret(folder: Path | None = None) -> str | None:
    """The secret from the environment, else from ``folder`` (created there on first use)."""
    value = os.environ.get(ENV, "").strip()
    if value or folder is None:
        return value or None
    path = Path(folder) / FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip() or None


def seed_of(secret: str) -> int:
    """The window seed a secret stands for."""
    return int.from_bytes(hashlib.sha256(b"windows\0" + secret.encode()).digest()[:8], "big")


def fingerprint(secret: str) -> str:
    """A short public name of the secret (it reveals nothing of it): part of the cache key."""
    return hashlib.sha256(b"name\0" + secret.encode()).hexdigest()[:8]


def choose(windows: str, window_seed: int | None) -> tuple[int, str]:
    """The seed of an evaluation's windows, and how it was chosen (recorded in the result)."""
    if windows == "fixed":
        return WINDOW_SEED, "fixed"
    if window_seed is not None:
        return window_seed, "secret"
    shared = read_secret()
    if shared is not None:  # DARWIN_WINDOW_SECRET: the same windows for every evaluation
        return seed_of(shared), f"secret {fingerprint(shared)}"
    return secret_seed(), "secret (this evaluation's)"
