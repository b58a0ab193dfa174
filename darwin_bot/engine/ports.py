"""What the engine talks to: the Evaluator and Publisher ports, progress, seeds."""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from darwin_bot.core.agent import HumanRequest
from darwin_bot.core.results import Budget, EvalResult
from darwin_bot.errors import StateError

SEED_AGENT = "seed"


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any parts (Python's hash() is salted per process)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class Evaluator(Protocol):
    """Scores one tree (a folder holding the evolvable paths) under one seed."""

    version: str

    def __call__(self, tree: Path, *, seed: int, smoke: bool = False) -> EvalResult: ...


class Publisher(Protocol):
    """Where the evolution is shown and steered (the forge); every call is an upsert."""

    def controls(self) -> dict[str, bool]: ...

    def request_context(self) -> tuple[str, tuple[str, ...]]: ...

    def offspring(self, record: dict[str, Any]) -> None: ...

    def requests(self, requests: list[HumanRequest]) -> None: ...

    def selected(self, summary: dict[str, Any], records: dict[str, dict[str, Any]]) -> None: ...

    def handled(self, action: str) -> None: ...


@dataclass
class Progress:
    """Terse progress lines on stderr (a bar would garble CI logs)."""

    enabled: bool = True
    started: float = field(default_factory=time.monotonic)

    def __call__(self, msg: str) -> None:
        if self.enabled:
            print(f"[{time.monotonic() - self.started:7.1f}s] {msg}", file=sys.stderr, flush=True)


class DeferredEvaluator:
    """The evaluator of the CI jobs that hold secrets: it never runs agent code.

    Smoke tests are deferred to the evaluate job on the sandboxed runner (a
    failure there goes to the repair job); a full evaluation that is not in
    the results is a StateError, never a local run.
    """

    def __init__(self, version: str) -> None:
        self.version = version

    def __call__(self, tree: Path, *, seed: int, smoke: bool = False) -> EvalResult:
        if smoke:
            return EvalResult(
                status="ok",
                reason="smoke test deferred to the sandboxed evaluate job",
                metrics=None,
                device="",
                seed=seed,
                budget=Budget(iters=0),
                evaluator_version=self.version,
                tree_hash="",
            )
        raise StateError(
            "this step holds secrets and never runs agent code, but a result is missing; "
            "run the evaluate job for it (see the 'agents' output of propose)"
        )
