"""The secret that draws the scored windows, kept where no sandbox can read it.

The scored windows are drawn from the whole held-out split by a seed derived
from a secret (see ``scoring.py``). The secret comes from, in this order:

1. ``DARWIN_WINDOW_SECRET`` in the trusted process's environment (CI: a
   repository secret given to every evaluation job, so that every job of one
   run draws the same windows). The sandbox's environment is an allowlist
   (``sandbox.env``), so the variable never reaches a program.
2. A file ``darwin-window-secret`` (mode 0600) in a folder of the trusted side,
   the repository's git folder for ``darwin run``: never copied into a
   sandbox (only the evolvable paths are) and never committed.

Each generation of a run has its own windows, :func:`of_generation`: drawn by
HMAC(secret, generation), so every agent of one generation (its offspring, the
survivors carried in, the seed the gate compares with, the confirmation runs)
is scored on the same windows, and the next generation's are new. The set's
public name (the secret's fingerprint and the generation) goes into the
evaluation cache's key through the evaluator's version: a result scored on
generation 3's windows is never read as one of generation 4's.

Without a secret, each evaluation draws its own secret windows
(:func:`darwin_bot.evaluate.scoring.secret_seed`): fine for one ``darwin
evaluate``, never comparable with another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from darwin_bot.errors import ConfigError
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


@dataclass(frozen=True)
class WindowSet:
    """Which windows are scored: the seed that draws them, and the set's public name."""

    seed: int
    name: str  # "<fingerprint>" (one set for a whole run) or "<fingerprint>-g<generation>"


def of_generation(secret: str, generation: int) -> WindowSet:
    """Generation ``generation``'s windows: the same for all its agents, new for the next."""
    message = f"darwin windows of generation {generation}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return WindowSet(int.from_bytes(digest[:8], "big"), f"{fingerprint(secret)}-g{generation}")


def current_windows(secret: str | None, generation: int | None) -> WindowSet | None:
    """The windows an engine's evaluation is scored on (None: no secret, a fresh set each time).

    Before the engine names a generation, the run's one set (the secret's own seed).
    """
    if secret is None:
        return None
    if generation is None:
        return WindowSet(seed_of(secret), fingerprint(secret))
    return of_generation(secret, generation)


def choose(windows: str, window_seed: int | None, name: str = "") -> tuple[int, str]:
    """The seed of an evaluation's windows, and how it was chosen (recorded in the result).

    ``name``: the public name of ``window_seed``'s set (``WindowSet.name``).
    """
    if windows == "fixed":
        return WINDOW_SEED, "fixed"
    if window_seed is not None:
        return window_seed, f"secret {name}" if name else "secret"
    shared = read_secret()
    if shared is not None:  # DARWIN_WINDOW_SECRET: the same windows for every evaluation
        return seed_of(shared), f"secret {fingerprint(shared)}"
    return secret_seed(), "secret (this evaluation's)"


def required_secret(what: str) -> str:
    """The secret from the environment, or ConfigError saying how to set it (CI's jobs)."""
    secret = read_secret()
    if secret is None:
        raise ConfigError(
            f"{what} needs {ENV}, the secret every job of a generation draws its windows "
            f'by; set it once: gh secret set {ENV} --body "$(openssl rand -hex 32)" '
            "(docs/github.md)"
        )
    return secret
