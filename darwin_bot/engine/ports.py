"""What the engine talks to: the Repository, Memory, Evaluator and Publisher ports; progress; seeds.

Each port is a Protocol whose docstrings are the contract. The shipped
implementations are ``git.repo.GitRepo`` (Repository), ``store.memory.MemoryStore``
(Memory), ``cli.app.TrustedEvaluator`` and :class:`DeferredEvaluator` (Evaluator)
and ``publish.publisher.ForgePublisher`` (Publisher); the engine tests use a fake
evaluator over a real repository.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from darwin_bot.core import SEED_AGENT, Budget, HumanRequest, Metrics, SmokeDeferred, SmokeResult
from darwin_bot.errors import StateError
from darwin_bot.store import GenerationSummary, OffspringRecord

__all__ = [
    "SEED_AGENT",
    "DeferredEvaluator",
    "Evaluator",
    "Events",
    "Memory",
    "Publisher",
    "Say",
]

Say = Callable[[str], None]  # one line of progress for the user (cli.progress.Reporter, or print)


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any parts (Python's hash() is salted per process)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class Repository(Protocol):
    """The git repository as a population of agent branches ``<prefix><agent>``.

    Every write is idempotent: setting a branch to where it is, or deleting a
    branch that is gone, changes nothing. Branches outside the prefix are
    never touched (a ``GitError``).
    """

    root: Path
    prefix: str

    def branch(self, agent: str) -> str:
        """The branch name of ``agent``."""
        ...

    def rev(self, ref: str) -> str | None:
        """The commit ``ref`` points at, or None when it does not exist."""
        ...

    def archived(self, agent: str) -> str | None:
        """The head a culled agent had when its branch was deleted, or None."""
        ...

    def agents(self) -> list[str]:
        """The agent ids that have a branch now, sorted."""
        ...

    def tree_id(self, ref: str, paths: Sequence[str]) -> str:
        """A stable id of the content of ``paths`` at ``ref`` (the evaluation cache key)."""
        ...

    def export(self, ref: str, paths: Sequence[str], dest: Path) -> Path:
        """Write the files of ``paths`` at ``ref`` into ``dest``: what the evaluator receives."""
        ...

    def set_branch(self, agent: str, sha: str) -> str:
        """Point the agent's branch at ``sha`` (create or move)."""
        ...

    def delete_branch(self, branch: str, *, archive_as: str | None = None) -> None:
        """Delete an agent branch, keeping its head as ``archive_as``'s archived head."""
        ...

    def default_branch(self) -> str:
        """The branch the seed is taken from and the memory is committed on."""
        ...

    def worktree(self, ref: str) -> AbstractContextManager[Path]:
        """A scratch checkout of ``ref``, removed on exit."""
        ...

    def cleanup_worktrees(self) -> int:
        """Remove the scratch checkouts a killed run left behind (call with the run lock held)."""
        ...

    def remove_stale_locks(self) -> list[str]:
        """Delete the lock files a killed git left (call with the run lock held); which."""
        ...

    def commit_paths_on_current(self, paths: Sequence[str], message: str) -> str | None:
        """Commit exactly ``paths`` on the checked-out branch; None when nothing changed."""
        ...

    def git(self, *args: str) -> str:
        """Run a git command and return its output (status, ls-tree; an old seed's archive ref)."""
        ...

    @property
    def memory_branch(self) -> str:
        """The branch the memory is committed on (``<prefix>memory``), never the user's."""
        ...

    def commit_memory(
        self, path: str, message: str, files: Sequence[str] | None = None
    ) -> str | None:
        """Commit ``files`` of the memory folder ``path`` on the memory branch; None if unchanged."""
        ...


class Memory(Protocol):
    """The JSON memory records (``store.memory.MemoryStore``): validated on write and on read."""

    root: Path

    def generations(self) -> list[dict[str, Any]]:
        """Every generation summary in its stored JSON form, oldest first."""
        ...

    def write_generation(self, rec: Mapping[str, Any]) -> Path:
        """Write one generation summary (validated; atomic; unchanged content rewrites nothing)."""
        ...

    def last_generation(self) -> int | None:
        """The newest generation with a summary, or None."""
        ...

    def update_generation_metrics(
        self, generation: int, updates: Mapping[str, tuple[Metrics | None, float | None]]
    ) -> list[Path]:
        """Record each agent's measured metrics and fitness change on its mutation records."""
        ...

    def digest(self, max_tokens: int, *, max_chars: int | None = None) -> str:
        """What helped and what hurt, as prompt text of at most ``max_tokens`` tokens."""
        ...

    def record_files(self) -> Iterator[Path]:
        """Every memory record file (validated), for the memory commit."""
        ...


class Evaluator(Protocol):
    """Scores one tree (a folder holding the evolvable paths) under one seed.

    A failed run is a value (``EvalResult.status`` is not ``ok``), never an
    exception; an exception means the evaluator itself broke. ``smoke``: a
    few steps on tiny data, no metrics, to catch code that does not run; an
    evaluator that runs no agent code answers a smoke test with
    :class:`~darwin_bot.core.results.SmokeDeferred`, and only a smoke test.
    ``version`` is part of the cache key: bump it when scores change meaning.
    ``budget`` and ``preset``: train under these instead of the configured
    search budget (the confirmation runs of ``budget.confirm_*``); the
    engine passes them only when confirmation is on.

    An evaluator that scores each generation on its own windows also has
    ``at_generation(g)`` (optional): the engine calls it before any evaluation
    of generation ``g``, and ``version`` then names those windows, so results of
    different generations never share a cache key; its ``windows`` is that name.
    """

    version: str

    def __call__(
        self,
        tree: Path,
        *,
        seed: int,
        smoke: bool = False,
        budget: Budget | None = None,
        preset: str | None = None,
    ) -> SmokeResult: ...


class Publisher(Protocol):
    """Where the evolution is shown and steered (the forge); every write is an upsert.

    Records arrive typed, as ``darwin_bot.store.records`` defines them (the
    offspring record, the generation summary with its ranking of ``Row``).
    Calling any method twice with the same arguments leaves the forge as one
    call did.
    """

    def scored_by(self, version: str) -> None:
        """The evaluator version whose cached results the PR bodies show (no other is comparable)."""
        ...

    def controls(self) -> dict[str, bool]:
        """The dashboard's boxes: ``pause``, ``promote_leader``, ``reevaluate``."""
        ...

    def request_context(self) -> tuple[str, tuple[str, ...]]:
        """The humans' answers as prompt text, and the imports approved requests allow."""
        ...

    def offspring(self, record: OffspringRecord) -> None:
        """Open or update the draft PR of a new offspring (its branch is pushed)."""
        ...

    def requests(self, requests: list[HumanRequest]) -> None:
        """Open (or find) one issue per distinct request; record their states in memory."""
        ...

    def selected(self, summary: GenerationSummary, records: Mapping[str, OffspringRecord]) -> None:
        """Show a generation's selection: statuses, PR bodies, close the culled, the champion."""
        ...

    def handled(self, action: str) -> None:
        """The engine carried out a one-shot dashboard action; clear its box on the next write."""
        ...


class Events:
    """What the engine reports as it happens, for a live display (every method a no-op here).

    ``begin``: a batch of ``total`` steps starts (offspring to make, training
    runs to train); ``offspring``: one offspring was made or rejected;
    ``run``: one training run ended (``agent`` names it; ``baseline_ppl`` is the
    seed's mean perplexity at that budget when known); ``generation``: a
    generation's summary was recorded (the leaderboard is final).
    """

    def begin(self, what: str, total: int, unit: str) -> None:
        return None

    def offspring(self, record: Any) -> None:
        return None

    def run(self, agent: str, seed: int, result: Any, baseline_ppl: float | None) -> None:
        return None

    def generation(self, summary: Any) -> None:
        return None


class DeferredEvaluator:
    """The evaluator of the CI jobs that hold secrets: it never runs agent code.

    Smoke tests are deferred to the evaluate job on the sandboxed runner (a
    failure there goes to the repair job); a full evaluation that is not in
    the results is a StateError, never a local run.
    """

    def __init__(self, version: str, windows: Callable[[int | None], str] | None = None) -> None:
        self.base_version = version
        # generation -> the public name of its windows (evaluate.windows), as the legs score
        self.names = windows
        self.generation: int | None = None

    def at_generation(self, g: int) -> None:
        """Generation ``g``'s windows: its legs' results are filed (and read) under their name."""
        self.generation = g

    @property
    def windows(self) -> str | None:
        """The public name of the windows the results must have been scored on (None: any)."""
        return self.names(self.generation) if self.names is not None else None

    @property
    def version(self) -> str:
        name = self.windows
        return f"{self.base_version}-w{name}" if name else self.base_version

    def __call__(
        self,
        tree: Path,
        *,
        seed: int,
        smoke: bool = False,
        budget: Budget | None = None,
        preset: str | None = None,
    ) -> SmokeDeferred:
        if smoke:
            return SmokeDeferred(
                reason="smoke test deferred to the sandboxed evaluate job",
                seed=seed,
                evaluator_version=self.version,
            )
        raise StateError(
            "this step holds secrets and never runs agent code, but a result is missing; "
            "run the evaluate job for it (see the 'agents' output of propose)"
        )
