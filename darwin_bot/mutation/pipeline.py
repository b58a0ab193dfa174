"""Mutate a tree chunk by chunk, validate, commit, smoke-test, repair.

The evolution loop calls :func:`mutate_tree` once per offspring and
:func:`repair_tree` when a full evaluation of a committed offspring failed.
Both edit files in place under ``cfg.evolution.evolvable`` and leave the tree
at the *last committed state*: an invalid edit is restored at once and never
committed, so when the outcome is not ok the files equal the last commit
(the parent's state if nothing was committed). The caller decides what to do
with commits of a rejected offspring (normally: drop the branch).

Flow of :func:`mutate_tree`:

1. Chunk every evolvable file; pick each mutable chunk with probability
   ``evolution.mutation_rate`` (at least one, seeded by ``ctx``). A guided
   backend (the offline mutator with the memory) may replace the pick with its
   own plan (``Guided.prefer``).
2. For each picked chunk: prompt (with the summaries of the chunks already
   changed), parse the reply, apply it, validate the files. A valid edit stays;
   an invalid one is restored and recorded as rejected.
3. If no chunk changed, the rejected chunks go back to the LLM with the reason
   (``evolution.repair_attempts`` times); if every picked chunk was declined,
   a few other chunks are tried (not after a reply cut at the token limit twice:
   the budget, not the chunk, is what failed).
4. ``screen`` sees the normalised change signature before anything runs: a
   change it knows (a sibling's, a known agent's) ends the call as
   ``duplicate``, neither smoke-tested nor trained.
5. Commit (kind "mutate"), then smoke-test. On failure, the changed chunks that
   the traceback points at (all changed chunks if none) go back with the error
   and the log tail; a valid fix is committed (kind "repair") and smoke-tested.

Which objects do what: :class:`~darwin_bot.mutation.session.TreeFiles` (the
files), :class:`~darwin_bot.mutation.session.Ledger` (events, tokens,
commits), :class:`~darwin_bot.mutation.editor.ChunkEditor` (one chunk edit).
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from darwin_bot.config import Config
from darwin_bot.core import EvalResult, MutationKind, Outcome, SmokeDeferred, SmokeResult
from darwin_bot.errors import MutationRejected
from darwin_bot.llm import LLM, ChunkOffer, Guided
from darwin_bot.mutation.change import signature
from darwin_bot.mutation.chunks import chunk_source
from darwin_bot.mutation.editor import ChunkEditor, EditStatus, Problem
from darwin_bot.mutation.events import (
    MutationContext,
    MutationEvent,
    MutationOutcome,
)
from darwin_bot.mutation.prompts import FileView
from darwin_bot.mutation.session import Commit, Ledger, TreeFiles

FALLBACK_CHUNKS = 3  # extra chunks tried when the LLM declined every picked one

Smoke = Callable[[Path], SmokeResult]
Screen = Callable[[str], str]  # change signature -> why it is a duplicate ('' if new)


@dataclasses.dataclass
class _Call:
    files: TreeFiles
    ledger: Ledger
    editor: ChunkEditor
    commit: Commit
    smoke: Smoke

    def outcome(
        self, status: Outcome, reason: str, smoke: SmokeResult | None, change: str = ""
    ) -> MutationOutcome:
        self.files.restore()
        sig = signature(self.files.parent, self.files.committed) if self.ledger.attempts else change
        return MutationOutcome(
            status,
            reason,
            tuple(self.ledger.attempts),
            tuple(self.ledger.events),
            smoke,
            sig,
            tuple(self.files.changed()),
        )

    def reason(self, default: str) -> str:
        return self.editor.stopped or self.ledger.last_problem() or default


def _start(
    tree: Path, ctx: MutationContext, llm: LLM, cfg: Config, commit: Commit, smoke: Smoke
) -> _Call:
    files = TreeFiles(Path(tree), tuple(cfg.evolution.evolvable))
    ledger = Ledger()
    return _Call(files, ledger, ChunkEditor(files, ledger, llm, cfg, ctx), commit, smoke)


def _guide(
    llm: LLM, ctx: MutationContext, files: TreeFiles, cfg: Config, allowed: tuple[str, ...]
) -> None:
    """Hand a backend that reads typed guidance (the offline mutator) its evidence."""
    if not isinstance(llm, Guided):
        return
    g = ctx.guidance
    if g is not None:
        lines = {p: t.count("\n") + 1 for p, t in files.committed.items()}
        g = dataclasses.replace(
            g,
            allowed_imports=allowed,
            max_file_lines=cfg.evolution.max_file_lines,
            file_lines=lines,
        )
    llm.guide(g)


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


def _planned(
    llm: LLM, files: TreeFiles, picked: list[tuple[str, str]], rest: list[tuple[str, str]]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """A guided backend's choice of chunks in place of the random pick, when it makes one."""
    if not isinstance(llm, Guided):
        return picked, rest
    offers, where = [], {}
    for path in files.committed:
        chunks = files.chunks(path)
        view = FileView(path, tuple(chunks))
        for c in chunks:
            if not c.frozen:
                offers.append(ChunkOffer(c.id, c.text, view.imports()))
                where[c.id] = (path, c.name)
    order = {f"{p}::{n}": i for i, (p, n) in enumerate(picked + rest)}
    offers.sort(key=lambda o: order.get(o.id, len(order)))  # the random order breaks ties
    plan = llm.prefer(offers, [f"{p}::{n}" for p, n in picked])
    if plan is None:
        return picked, rest
    return [where[i] for i in plan.picked], [where[i] for i in plan.rest]


def _targets(s: _Call, ctx: MutationContext, cfg: Config, only: tuple[str, ...], llm: LLM):  # noqa: ANN202
    candidates = s.files.mutable()
    if not only:
        picked, rest = pick_chunks(candidates, ctx, cfg.evolution.mutation_rate)
        return _planned(llm, s.files, picked, rest)
    known = {f"{p}::{n}" for p, n in candidates}
    missing = [x for x in only if x not in known]
    if missing:
        raise MutationRejected(f"no such chunk(s): {', '.join(missing)}")
    return [tuple(x.split("::", 1)) for x in only], []


def _propose(s: _Call, picked: list, rest: list, cfg: Config) -> tuple[list[Problem], int]:
    """Edit the picked chunks (then fallbacks, then repairs of invalid edits); (problems, rounds)."""
    running: list[str] = []
    problems: list[Problem] = []

    def run(targets: list[tuple[str, str]]) -> None:
        for file, name in targets:
            got = s.editor.mutate(file, name, running)
            if got.problem is not None:
                problems.append(got.problem)
            elif got.status is EditStatus.APPLIED:
                running.append(f"{file}::{name}: {s.ledger.pending[-1].summary}")

    run(picked)
    for extra in rest[:FALLBACK_CHUNKS]:
        # A model that cannot finish a reply in its budget would be cut on other chunks too.
        if s.ledger.pending or problems or s.editor.cut_twice:
            break
        run([extra])
    rounds = 0
    while not s.ledger.pending and problems and rounds < cfg.evolution.repair_attempts:
        rounds += 1
        todo, problems = problems, []
        for p in todo:
            got = s.editor.repair(p)
            if got.status is not EditStatus.APPLIED:
                bad = s.ledger.events[-1]
                problems.append(dataclasses.replace(p, error=bad.reason or p.error))
    return problems, rounds


def mutate_tree(
    tree: Path,
    ctx: MutationContext,
    llm: LLM,
    cfg: Config,
    *,
    commit: Commit,
    smoke: Smoke,
    only: tuple[str, ...] = (),
    screen: Screen | None = None,
) -> MutationOutcome:
    """Mutate the evolvable files of ``tree`` (a worktree of the parent); see the module doc.

    ``only`` ("file::chunk" ids) replaces the random choice of chunks: for
    tests, benchmarks and a human who wants one chunk rewritten.
    """
    s = _start(tree, ctx, llm, cfg, commit, smoke)
    try:
        s.files.load()
        _guide(llm, ctx, s.files, cfg, s.editor.allowed_imports)
        picked, rest = _targets(s, ctx, cfg, only, llm)
    except MutationRejected as exc:
        return s.outcome(Outcome.REJECTED, str(exc), None)
    _, rounds = _propose(s, picked, rest, cfg)
    if not s.ledger.pending:
        return s.outcome(Outcome.REJECTED, s.reason("no chunk was changed"), None)
    if screen is not None:
        change = signature(s.files.parent, s.files.now())
        why = screen(change)
        if why:
            s.ledger.events = [_as_duplicate(e, why) for e in s.ledger.events]
            return s.outcome(Outcome.DUPLICATE, why, None, change)
    kind = MutationKind.REPAIR if rounds else MutationKind.MUTATE
    s.ledger.commit(kind, s.commit)
    s.files.snapshot()
    return _smoke_and_repair(s, rounds)


def _as_duplicate(e: MutationEvent, why: str) -> MutationEvent:
    """An applied edit of a dropped draw: recorded, but never credited as a trial."""
    if e.outcome is not Outcome.APPLIED:
        return e
    return dataclasses.replace(e, outcome=Outcome.DUPLICATE, reason=f"{why}. {e.reason}")


def repair_tree(
    tree: Path,
    ctx: MutationContext,
    llm: LLM,
    cfg: Config,
    error: str,
    *,
    commit: Commit,
    smoke: Smoke,
    parent_files: Mapping[str, str] | None = None,
) -> MutationOutcome:
    """Repair a committed offspring whose full evaluation failed with ``error`` (log tail included).

    The chunks to fix are those the traceback in ``error`` points at among the
    chunks that differ from ``parent_files`` (the parent's evolvable files,
    read by the caller from git), else all of those. Each fix is committed
    (kind "repair") and smoke-tested.
    """
    s = _start(tree, ctx, llm, cfg, commit, smoke)
    try:
        s.files.load()
    except MutationRejected as exc:
        return s.outcome(Outcome.REJECTED, str(exc), None)
    if parent_files:
        s.files.parent = {p: parent_files.get(p, s.files.committed[p]) for p in s.files.committed}
    reason = error.strip().splitlines()[-1] if error.strip() else "failed"
    targets = s.files.changed()
    if targets:
        problems = _problems(s.files, reason, error, targets)
    else:  # no parent to compare with: only what the traceback names
        every = s.files.mutable()
        problems = _problems(s.files, reason, error, every)
        if len(problems) == len(every):
            return s.outcome(
                Outcome.REJECTED,
                "cannot tell which chunk to repair: the tree does not "
                "differ from its parent and the error names no chunk",
                None,
            )
    return _repair_rounds(s, problems, 0, f"full evaluation: {reason}", None)


def _problems(
    files: TreeFiles, reason: str, log: str, targets: list[tuple[str, str]]
) -> list[Problem]:
    """Repair problems for a failed run: the chunks its traceback names, else ``targets``."""
    hit: list[tuple[str, str]] = []
    for m in re.finditer(r'File "([^"]+)", line (\d+)', f"{reason}\n{log}"):
        fname, line = m.group(1).replace("\\", "/"), int(m.group(2))
        for p in files.committed:
            if fname == p or fname.endswith("/" + p):
                for c in chunk_source(p, files.committed[p]):
                    if (
                        c.start <= line <= c.end
                        and (p, c.name) in targets
                        and (p, c.name) not in hit
                    ):
                        hit.append((p, c.name))
    chosen = hit or targets
    by_file = {p: {c.name: c.text for c in chunk_source(p, files.committed[p])} for p, _ in chosen}
    return [
        Problem(p, n, by_file[p].get(n, ""), f"the smoke test failed: {reason}", log)
        for p, n in chosen
    ]


def _smoke_failed(s: _Call, result: EvalResult) -> list[Problem]:
    """Blame a failed smoke test (never a deferred one: see :func:`_passed`) on the changed chunks."""
    kind = s.ledger.attempts[-1].kind if s.ledger.attempts else MutationKind.MUTATE
    changed = s.files.changed()
    made = {(c.file, c.chunk): c for a in s.ledger.attempts for c in a.changes}
    for where in changed:  # each changed chunk shares the blame, under its edit's tag
        why = f"smoke test: {result.reason}"
        s.ledger.record(where, kind, Outcome.SMOKE_FAILED, why, change=made.get(where))
    return _problems(s.files, result.reason, result.log_tail, changed)


def _passed(result: SmokeResult) -> bool:
    """A smoke test that passed, or one deferred to the sandboxed evaluate job (see
    :class:`~darwin_bot.core.results.SmokeDeferred`): either way the commit stands."""
    return isinstance(result, SmokeDeferred) or result.ok


def _smoke_and_repair(s: _Call, used: int) -> MutationOutcome:
    result = s.smoke(s.files.tree)
    if _passed(result):
        return s.outcome(Outcome.APPLIED, "", result)
    return _repair_rounds(
        s, _smoke_failed(s, result), used, f"smoke test failed: {result.reason}", result
    )


def _repair_rounds(
    s: _Call, problems: list[Problem], used: int, failure: str, result: SmokeResult | None
) -> MutationOutcome:
    cfg = s.editor.cfg
    while used < cfg.evolution.repair_attempts and problems:
        used += 1
        for p in problems:
            s.editor.repair(p)
        if not s.ledger.pending:
            break
        s.ledger.commit(MutationKind.REPAIR, s.commit)
        s.files.snapshot()
        result = s.smoke(s.files.tree)
        if _passed(result):
            return s.outcome(Outcome.APPLIED, "", result)
        failure = f"smoke test failed: {result.reason}"
        problems = _smoke_failed(s, result)
    reason = s.editor.stopped or failure
    last = s.ledger.events[-1] if s.ledger.events else None
    if last is not None and last.outcome is Outcome.REJECTED and not s.editor.stopped:
        reason += f"; repair rejected: {last.reason}"
    return s.outcome(Outcome.REJECTED, reason, result)
