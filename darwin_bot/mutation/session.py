"""The state of one pipeline call, split by job: the files of the tree, and the ledger.

:class:`TreeFiles` knows the evolvable files as the parent had them, as last
committed and as edited now, and restores the last commit. :class:`Ledger`
keeps what the call produced: memory events, LLM token counts since the last
commit, the changes and requests waiting for a commit, and the attempts
committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from darwin_bot.core import HumanRequest, MutationKind, Outcome
from darwin_bot.errors import MutationRejected
from darwin_bot.llm import Completion
from darwin_bot.mutation.chunks import Chunk, chunk_source
from darwin_bot.mutation.events import Attempt, ChunkChange, MutationEvent

Commit = Callable[[Attempt], str]


@dataclass
class TreeFiles:
    """The evolvable Python files of a tree: as the parent had them, as committed, as edited."""

    tree: Path
    evolvable: tuple[str, ...]
    committed: dict[str, str] = field(default_factory=dict)  # path -> text at the last commit
    parent: dict[str, str] = field(default_factory=dict)  # path -> text before this offspring

    def load(self) -> None:
        paths: list[str] = []
        for root in self.evolvable:
            p = self.tree / root
            if p.is_dir():
                paths += [
                    q.relative_to(self.tree).as_posix()
                    for q in sorted(p.rglob("*.py"))
                    if "__pycache__" not in q.parts
                ]
            elif p.is_file() and p.suffix == ".py":
                paths.append(root)
        if not paths:
            raise MutationRejected(
                f"no Python files under the evolvable paths {', '.join(self.evolvable)}"
            )
        self.committed = {p: (self.tree / p).read_text(encoding="utf-8") for p in paths}
        self.parent = dict(self.committed)

    def current(self, path: str) -> str:
        return (self.tree / path).read_text(encoding="utf-8")

    def now(self) -> dict[str, str]:
        return {p: self.current(p) for p in self.committed}

    def edited(self) -> dict[str, str]:
        """The files whose text on disk differs from the last commit (edits waiting for it)."""
        return {p: t for p, t in self.now().items() if t != self.committed[p]}

    def write(self, path: str, text: str) -> None:
        (self.tree / path).write_text(text, encoding="utf-8")

    def chunks(self, path: str) -> list[Chunk]:
        return chunk_source(path, self.current(path))

    def mutable(self) -> list[tuple[str, str]]:
        """(file, chunk) of every chunk that may change."""
        return [(p, c.name) for p in self.committed for c in self.chunks(p) if not c.frozen]

    def restore(self) -> None:
        for p, text in self.committed.items():
            if self.current(p) != text:
                self.write(p, text)

    def snapshot(self) -> None:
        """What is on disk is now the last commit."""
        self.committed = self.now()

    def changed(self) -> list[tuple[str, str]]:
        """(file, chunk) pairs whose committed text differs from the parent's."""
        out: list[tuple[str, str]] = []
        for p in self.committed:
            if self.committed[p] == self.parent[p]:
                continue
            before = {c.name: c.text for c in chunk_source(p, self.parent[p])}
            for c in chunk_source(p, self.committed[p]):
                if not c.frozen and before.get(c.name) != c.text:
                    out.append((p, c.name))
        return out


@dataclass
class Ledger:
    """What one call produced: events, tokens, pending changes and requests, attempts."""

    events: list[MutationEvent] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    pending: list[ChunkChange] = field(default_factory=list)
    requests: list[HumanRequest] = field(default_factory=list)
    calls: list[Completion] = field(default_factory=list)  # since the last commit

    def record(
        self,
        chunk: tuple[str, str],
        kind: str,
        outcome: Outcome,
        reason: str,
        c: Completion | None = None,
        change: ChunkChange | None = None,
        left_out: tuple[str, ...] = (),
    ) -> None:
        self.events.append(
            MutationEvent(
                file=chunk[0],
                chunk=chunk[1],
                kind=kind,
                outcome=outcome,
                reason=reason,
                summary=change.summary if change else "",
                model=c.model if c else "",
                prompt_tokens=c.prompt_tokens if c else 0,
                completion_tokens=c.completion_tokens if c else 0,
                cost_usd=c.cost_usd if c else 0.0,
                edit=change.edit if change else "",
                explore=change.explore if change else False,
                left_out=left_out,
            )
        )

    def ask_for(self, requests: tuple[HumanRequest, ...]) -> None:
        self.requests.extend(r for r in requests if r not in self.requests)

    def commit(self, kind: MutationKind, commit: Commit) -> Attempt:
        """Commit the pending changes as one attempt (via ``commit``) and start a new ledger page."""
        changes = tuple(self.pending)
        first = changes[0].summary
        summary = first if len(changes) == 1 else f"{first} (+{len(changes) - 1} more)"
        attempt = Attempt(
            kind=kind,
            summary=summary[:120],
            changes=changes,
            model=next((c.model for c in reversed(self.calls) if c.model), ""),
            prompt_tokens=sum(c.prompt_tokens for c in self.calls),
            completion_tokens=sum(c.completion_tokens for c in self.calls),
            cost_usd=sum(c.cost_usd for c in self.calls),
            requests=tuple(self.requests),
        )
        commit(attempt)
        self.attempts.append(attempt)
        self.pending, self.requests, self.calls = [], [], []
        return attempt

    def last_problem(self) -> str:
        """The newest rejection's reason, as ``file::chunk: reason`` ('' if none)."""
        for e in reversed(self.events):
            if e.outcome is Outcome.REJECTED:
                return f"{e.file}::{e.chunk}: {e.reason}"
        return ""
