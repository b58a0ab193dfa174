"""Mutate a tree chunk by chunk, validate, commit, smoke-test, repair.

The evolution loop calls :func:`mutate_tree` once per offspring and
:func:`repair_tree` when a full evaluation of a committed offspring failed.
Both edit files in place under ``cfg.evolution.evolvable`` and leave the tree
at the *last committed state*: an invalid edit is restored at once and never
committed, so when the outcome is "rejected" the files equal the last commit
(the parent's state if nothing was committed). The caller decides what to do
with commits of a rejected offspring (normally: drop the branch).

Flow of :func:`mutate_tree`:

1. Chunk every evolvable file; pick each mutable chunk with probability
   ``evolution.mutation_rate`` (at least one, seeded by ``ctx``).
2. For each picked chunk: prompt (with the summaries of the chunks already
   changed), parse the reply, apply it, validate the files. A valid edit stays;
   an invalid one is restored and recorded as "rejected".
3. If no chunk changed, the rejected chunks go back to the LLM with the reason
   (``evolution.repair_attempts`` times); if every picked chunk was declined,
   a few other chunks are tried.
4. Commit (kind "mutate"), then smoke-test. On failure, the changed chunks that
   the traceback points at (all changed chunks if none) go back with the error
   and the log tail; a valid fix is committed (kind "repair") and smoke-tested.
"""

from __future__ import annotations

import random
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from darwin_bot.config import Config
from darwin_bot.core.agent import HumanRequest
from darwin_bot.core.results import Budget, EvalResult, Metrics
from darwin_bot.errors import LLMError, MutationRejected
from darwin_bot.llm.base import LLM, Completion, Message
from darwin_bot.mutation.chunks import Chunk, chunk_source, find_chunk, reindent, replace_chunk
from darwin_bot.mutation.prompts import FileView, mutation_prompt, repair_prompt
from darwin_bot.mutation.replies import Reply, apply_blocks, parse_reply
from darwin_bot.mutation.validate import check_paths, validate_files

FALLBACK_CHUNKS = 3  # extra chunks tried when the LLM declined every picked one


@dataclass(frozen=True)
class MutationContext:
    agent: str
    generation: int
    parents: tuple[str, ...]
    parent_metrics: Metrics | None
    baseline_metrics: Metrics | None
    memory_digest: str = ""  # from the memory store, already capped
    requests_context: str = ""  # approved/declined human requests, as text
    extra_imports: tuple[str, ...] = ()  # approved dependency requests
    seed: int = 0


@dataclass(frozen=True)
class ChunkChange:
    file: str
    chunk: str
    summary: str
    rationale: str = ""  # the LLM's stated reason, kept in the commit body for review


@dataclass(frozen=True)
class Attempt:
    kind: Literal["mutate", "repair"]
    summary: str  # the commit subject
    changes: tuple[ChunkChange, ...]
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    requests: tuple[HumanRequest, ...] = ()


@dataclass(frozen=True)
class MutationEvent:
    """One record for memory, rejected edits included."""

    file: str
    chunk: str
    kind: str
    outcome: str  # "applied" | "rejected" | "smoke_failed" | "repaired"
    reason: str
    summary: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class MutationOutcome:
    status: Literal["ok", "rejected"]  # ok: the last committed state passed the smoke test
    reason: str
    attempts: tuple[Attempt, ...]  # those that were committed, in order
    events: tuple[MutationEvent, ...]
    smoke: EvalResult | None


Commit = Callable[[Attempt], str]
Smoke = Callable[[Path], EvalResult]


@dataclass
class _Problem:
    """A chunk to send back for repair, with what went wrong."""

    file: str
    chunk: str
    current: str  # the text the LLM proposed or the committed text
    error: str
    log_tail: str = ""


@dataclass
class _Session:
    """The state of one call: files as committed, files as edited, and the ledger."""

    tree: Path
    ctx: MutationContext
    llm: LLM
    cfg: Config
    committed: dict[str, str] = field(default_factory=dict)  # path -> text at the last commit
    parent: dict[str, str] = field(default_factory=dict)  # path -> text before this offspring
    events: list[MutationEvent] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    pending_changes: list[ChunkChange] = field(default_factory=list)
    requests: list[HumanRequest] = field(default_factory=list)
    tokens: list[Completion] = field(default_factory=list)  # calls since the last commit
    stopped: str = ""  # set when the LLM backend failed: no more calls

    # ------------------------------------------------------------------ files
    def load(self) -> None:
        paths: list[str] = []
        for root in self.cfg.evolution.evolvable:
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
                f"no Python files under the evolvable paths {', '.join(self.cfg.evolution.evolvable)}"
            )
        self.committed = {p: (self.tree / p).read_text(encoding="utf-8") for p in paths}
        self.parent = dict(self.committed)

    def current(self, path: str) -> str:
        return (self.tree / path).read_text(encoding="utf-8")

    def chunks(self, path: str) -> list[Chunk]:
        return chunk_source(path, self.current(path))

    def restore(self) -> None:
        for p, text in self.committed.items():
            if self.current(p) != text:
                (self.tree / p).write_text(text, encoding="utf-8")

    @property
    def allowed_imports(self) -> tuple[str, ...]:
        return tuple(self.cfg.llm.allowed_imports) + tuple(self.ctx.extra_imports)

    # ------------------------------------------------------------------ the LLM
    def ask(self, messages: list[Message]) -> Completion:
        c = self.llm.complete(messages)
        self.tokens.append(c)
        return c

    def record(
        self,
        file: str,
        chunk: str,
        kind: str,
        outcome: str,
        reason: str,
        summary: str,
        c: Completion | None,
    ) -> None:
        self.events.append(
            MutationEvent(
                file=file,
                chunk=chunk,
                kind=kind,
                outcome=outcome,
                reason=reason,
                summary=summary,
                model=c.model if c else "",
                prompt_tokens=c.prompt_tokens if c else 0,
                completion_tokens=c.completion_tokens if c else 0,
                cost_usd=c.cost_usd if c else 0.0,
            )
        )

    def apply_reply(self, chunk: Chunk, text: str) -> Reply:
        """Parse and apply ``text`` to ``chunk`` and validate; restores and raises on failure."""
        limit = self.cfg.llm.max_reply_chars
        if len(text) > limit:
            raise MutationRejected(
                f"reply of {len(text)} characters is over llm.max_reply_chars ({limit})"
            )
        reply = parse_reply(text, agent=self.ctx.agent, generation=self.ctx.generation)
        self.requests.extend(r for r in reply.requests if r not in self.requests)
        if reply.target and reply.target != chunk.id:
            check_paths([reply.target.split("::")[0]], self.cfg.evolution.evolvable)
            raise MutationRejected(
                f"reply edits {reply.target!r}, but the prompt asked for {chunk.id!r}"
            )
        if reply.no_change:
            return reply
        if reply.truncated:
            raise MutationRejected("the code block is never closed: the reply looks truncated")
        if reply.code is not None:
            new_chunk = reindent(reply.code, chunk.indent)
        else:
            new_chunk = apply_blocks(chunk.text, reply.blocks)
        if new_chunk.strip() == chunk.text.strip():
            return Reply(
                reply.summary, reply.rationale, reply.target, None, (), reply.requests, True, False
            )
        source = self.current(chunk.file)
        new_source = replace_chunk(source, chunk, new_chunk)
        try:
            validate_files(
                self.committed,
                {chunk.file: new_source},
                evolvable=self.cfg.evolution.evolvable,
                allowed_imports=self.allowed_imports,
                max_file_lines=self.cfg.evolution.max_file_lines,
                program=self.cfg.program,  # darwin:contract seam
            )
        except MutationRejected:
            self.restore()
            raise
        (self.tree / chunk.file).write_text(new_source, encoding="utf-8")
        return reply

    # ------------------------------------------------------------------ steps
    def mutate_chunk(self, file: str, name: str, running: list[str]) -> _Problem | bool:
        """Ask for one chunk. True: applied; False: declined/failed; a _Problem: invalid edit."""
        chunks = self.chunks(file)
        chunk = find_chunk(chunks, name)
        if chunk is None or self.stopped:
            return False
        messages = mutation_prompt(
            FileView(file, tuple(chunks)),
            chunk,
            running_memory=running,
            memory_digest=self.ctx.memory_digest,
            parent_metrics=self.ctx.parent_metrics,
            baseline_metrics=self.ctx.baseline_metrics,
            requests_context=self.ctx.requests_context,
            allowed_imports=self.allowed_imports,
            max_file_lines=self.cfg.evolution.max_file_lines,
            program=self.cfg.program,  # darwin:contract seam
        )
        return self._edit(chunk, messages, "mutate", chunk.text)

    def repair_chunk(self, p: _Problem) -> bool:
        chunks = self.chunks(p.file)
        chunk = find_chunk(chunks, p.chunk)
        if chunk is None or self.stopped:
            return False
        original = find_chunk(chunk_source(p.file, self.parent[p.file]), p.chunk)
        messages = repair_prompt(
            FileView(p.file, tuple(chunks)),
            chunk.id,
            current=p.current,
            original=original.text if original else chunk.text,
            error=p.error,
            log_tail=p.log_tail,
            allowed_imports=self.allowed_imports,
            max_file_lines=self.cfg.evolution.max_file_lines,
            program=self.cfg.program,  # darwin:contract seam
        )
        return self._edit(chunk, messages, "repair", p.current) is True

    def _edit(
        self, chunk: Chunk, messages: list[Message], kind: str, shown: str
    ) -> _Problem | bool:
        try:
            c = self.ask(messages)
        except LLMError as exc:
            self.stopped = f"LLM failed: {exc}"
            self.record(chunk.file, chunk.name, kind, "rejected", self.stopped, "", None)
            return False
        try:
            reply = self.apply_reply(chunk, c.text)
        except MutationRejected as exc:
            self.record(chunk.file, chunk.name, kind, "rejected", str(exc), "", c)
            proposed = _proposed_text(c.text) or shown
            return _Problem(chunk.file, chunk.name, proposed, str(exc))
        if reply.no_change:
            self.record(
                chunk.file, chunk.name, kind, "rejected", "no change proposed", reply.summary, c
            )
            return False
        outcome = "applied" if kind == "mutate" else "repaired"
        self.record(chunk.file, chunk.name, kind, outcome, reply.rationale, reply.summary, c)
        self.pending_changes.append(
            ChunkChange(chunk.file, chunk.name, reply.summary, reply.rationale)
        )
        return True

    def commit(self, kind: Literal["mutate", "repair"], commit: Commit) -> None:
        changes = tuple(self.pending_changes)
        first = changes[0].summary
        summary = first if len(changes) == 1 else f"{first} (+{len(changes) - 1} more)"
        calls = self.tokens
        attempt = Attempt(
            kind=kind,
            summary=summary[:120],
            changes=changes,
            model=next((c.model for c in reversed(calls) if c.model), ""),
            prompt_tokens=sum(c.prompt_tokens for c in calls),
            completion_tokens=sum(c.completion_tokens for c in calls),
            cost_usd=sum(c.cost_usd for c in calls),
            requests=tuple(self.requests),
        )
        commit(attempt)
        self.attempts.append(attempt)
        self.committed = {p: self.current(p) for p in self.committed}
        self.pending_changes = []
        self.requests = []
        self.tokens = []

    def changed_chunks(self) -> list[tuple[str, str]]:
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

    def smoke_problems(self, result: EvalResult, targets: list[tuple[str, str]]) -> list[_Problem]:
        """Repair problems for a failed run: the chunks its traceback names, else ``targets``."""
        text = f"{result.reason}\n{result.log_tail}"
        hit: list[tuple[str, str]] = []
        for m in re.finditer(r'File "([^"]+)", line (\d+)', text):
            fname, line = m.group(1).replace("\\", "/"), int(m.group(2))
            for p in self.committed:
                if fname == p or fname.endswith("/" + p):
                    for c in chunk_source(p, self.committed[p]):
                        if (
                            c.start <= line <= c.end
                            and (p, c.name) in targets
                            and (p, c.name) not in hit
                        ):
                            hit.append((p, c.name))
        chosen = hit or targets
        by_file = {
            p: {c.name: c.text for c in chunk_source(p, self.committed[p])} for p, _ in chosen
        }
        return [
            _Problem(
                p,
                n,
                by_file[p].get(n, ""),
                f"the smoke test failed: {result.reason}",
                result.log_tail,
            )
            for p, n in chosen
        ]

    def outcome(
        self, status: Literal["ok", "rejected"], reason: str, smoke: EvalResult | None
    ) -> MutationOutcome:
        self.restore()
        return MutationOutcome(status, reason, tuple(self.attempts), tuple(self.events), smoke)


def _proposed_text(reply: str) -> str:
    m = re.search(r"^```[\w-]*\n(.*?)(?:^```|\Z)", reply, re.MULTILINE | re.DOTALL)
    return m.group(1) if m else ""


def _last_reason(s: _Session, default: str) -> str:
    if s.stopped:
        return s.stopped
    for e in reversed(s.events):
        # a repair that went back to the original says nothing new: report what was wrong
        if e.outcome == "rejected" and e.reason != "no change proposed":
            return f"{e.file}::{e.chunk}: {e.reason}"
    return default


def pick_chunks(
    candidates: list[tuple[str, str]], ctx: MutationContext, rate: float
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(picked, fallbacks): each chunk with probability ``rate``, at least one; seeded by ``ctx``."""
    rng = random.Random(f"darwin:{ctx.seed}:{ctx.agent}:{ctx.generation}")
    picked = [x for x in candidates if rng.random() < rate]
    rest = [x for x in candidates if x not in picked]
    rng.shuffle(rest)
    if not picked:
        picked, rest = rest[:1], rest[1:]
    return picked, rest


def mutate_tree(
    tree: Path,
    ctx: MutationContext,
    llm: LLM,
    cfg: Config,
    *,
    commit: Commit,
    smoke: Smoke,
    only: tuple[str, ...] = (),
) -> MutationOutcome:
    """Mutate the evolvable files of ``tree`` (a worktree of the parent); see the module doc.

    ``only`` ("file::chunk" ids) replaces the random choice of chunks: for
    tests, benchmarks and a human who wants one chunk rewritten.
    """
    s = _Session(Path(tree), ctx, llm, cfg)
    try:
        s.load()
    except MutationRejected as exc:
        return s.outcome("rejected", str(exc), None)
    candidates = [(p, c.name) for p in s.committed for c in s.chunks(p) if not c.frozen]
    if only:
        known = {f"{p}::{n}" for p, n in candidates}
        missing = [x for x in only if x not in known]
        if missing:
            return s.outcome("rejected", f"no such chunk(s): {', '.join(missing)}", None)
        picked = [tuple(x.split("::", 1)) for x in only]  # type: ignore[misc]
        rest: list[tuple[str, str]] = []
    else:
        picked, rest = pick_chunks(candidates, ctx, cfg.evolution.mutation_rate)

    running: list[str] = []
    problems: list[_Problem] = []

    def run(targets: list[tuple[str, str]]) -> None:
        for file, name in targets:
            got = s.mutate_chunk(file, name, running)
            if isinstance(got, _Problem):
                problems.append(got)
            elif got:
                running.append(f"{file}::{name}: {s.pending_changes[-1].summary}")

    run(picked)
    if not s.pending_changes and not problems:
        for extra in rest[:FALLBACK_CHUNKS]:
            run([extra])
            if s.pending_changes or problems:
                break
    kind: Literal["mutate", "repair"] = "mutate"
    rounds = 0
    while not s.pending_changes and problems and rounds < cfg.evolution.repair_attempts:
        rounds += 1
        todo, problems = problems, []
        for p in todo:
            if not s.repair_chunk(p):
                bad = s.events[-1]
                problems.append(_Problem(p.file, p.chunk, p.current, bad.reason or p.error))
        kind = "repair"
    if not s.pending_changes:
        return s.outcome("rejected", _last_reason(s, "no chunk was changed"), None)
    s.commit(kind, commit)
    return _smoke_and_repair(s, commit, smoke, rounds)


def repair_tree(
    tree: Path,
    ctx: MutationContext,
    llm: LLM,
    cfg: Config,
    error: str,
    *,
    commit: Commit,
    smoke: Smoke,
) -> MutationOutcome:
    """Repair a committed offspring whose full evaluation failed with ``error`` (log tail included).

    The chunks to fix are those the traceback in ``error`` points at among the
    chunks that differ from ``ctx.parents[0]`` (read with ``git show``), else all
    of those. Each fix is committed (kind "repair") and smoke-tested.
    """
    s = _Session(Path(tree), ctx, llm, cfg)
    try:
        s.load()
    except MutationRejected as exc:
        return s.outcome("rejected", str(exc), None)
    if ctx.parents:
        s.parent = {p: _git_show(s.tree, ctx.parents[0], p, s.committed[p]) for p in s.committed}
    failed = EvalResult(
        status="failed",
        reason=error.strip().splitlines()[-1] if error.strip() else "failed",
        metrics=None,
        device="",
        seed=ctx.seed,
        budget=Budget(iters=cfg.budget.smoke_iters),
        evaluator_version="",
        tree_hash="",
        log_tail=error,
    )
    targets = s.changed_chunks()
    if targets:
        problems = s.smoke_problems(failed, targets)
    else:  # no parent to compare with: only what the traceback names
        every = [(p, c.name) for p in s.committed for c in s.chunks(p) if not c.frozen]
        problems = s.smoke_problems(failed, every)
        if len(problems) == len(every):
            return s.outcome(
                "rejected",
                "cannot tell which chunk to repair: the tree does not "
                "differ from its parent and the error names no chunk",
                None,
            )
    return _repair_rounds(s, commit, smoke, problems, 0, failed)


def _git_show(tree: Path, rev: str, path: str, default: str) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(tree), "show", f"{rev}:{path}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return default
    return out.stdout if out.returncode == 0 else default


def _smoke_and_repair(s: _Session, commit: Commit, smoke: Smoke, used: int) -> MutationOutcome:
    result = smoke(s.tree)
    if result.ok:
        return s.outcome("ok", "", result)
    _smoke_failed(s, result)
    return _repair_rounds(
        s, commit, smoke, s.smoke_problems(result, s.changed_chunks()), used, result
    )


def _smoke_failed(s: _Session, result: EvalResult) -> None:
    for file, name in s.changed_chunks():
        s.record(
            file,
            name,
            s.attempts[-1].kind if s.attempts else "mutate",
            "smoke_failed",
            f"smoke test: {result.reason}",
            "",
            None,
        )


def _repair_rounds(
    s: _Session,
    commit: Commit,
    smoke: Smoke,
    problems: list[_Problem],
    used: int,
    result: EvalResult,
) -> MutationOutcome:
    while used < s.cfg.evolution.repair_attempts and problems:
        used += 1
        for p in problems:
            s.repair_chunk(p)
        if not s.pending_changes:
            break
        s.commit("repair", commit)
        result = smoke(s.tree)
        if result.ok:
            return s.outcome("ok", "", result)
        _smoke_failed(s, result)
        problems = s.smoke_problems(result, s.changed_chunks())
    reason = f"smoke test failed: {result.reason}" if not s.stopped else s.stopped
    if s.events and s.events[-1].outcome == "rejected" and not s.stopped:
        reason += f"; repair rejected: {s.events[-1].reason}"
    return s.outcome("rejected", reason, result)
