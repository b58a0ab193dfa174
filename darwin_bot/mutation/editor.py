"""One chunk edit: prompt the LLM, parse and apply its reply, validate, keep or drop.

A failed edit is dropped by never writing it: the offspring's earlier valid
edits, on disk and waiting for the commit, stay as they are. An LLM outage
(``LLMTransientError``, ``LLMAuthError``) is not this chunk's fault: it is
raised on to the engine, which stops the run and leaves the offspring pending.
A prompt the server refuses (``LLMRequestError``) or one that cannot fit the
model's window fails this chunk only; a reply cut at the token limit is its own
reason, and the chunk is asked once more for a reply of smaller scope.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import StrEnum

from darwin_bot.config import Config
from darwin_bot.core import MutationKind, Outcome
from darwin_bot.errors import (
    LLMAuthError,
    LLMError,
    LLMRequestError,
    LLMTransientError,
    MutationRejected,
)
from darwin_bot.llm import LLM, Completion, Message, window_of
from darwin_bot.mutation.chunks import Chunk, chunk_source, find_chunk, reindent, replace_chunk
from darwin_bot.mutation.events import ChunkChange, MutationContext
from darwin_bot.mutation.fit import Fitted, fit_prompt, shorter
from darwin_bot.mutation.prompts import (
    MUTATE_TRIM,
    REPAIR_TRIM,
    FileView,
    mutation_prompt,
    repair_prompt,
)
from darwin_bot.mutation.replies import Reply, apply_blocks, parse_reply
from darwin_bot.mutation.session import Ledger, TreeFiles
from darwin_bot.mutation.validate import check_paths, validate_files


@dataclass(frozen=True)
class Problem:
    """A chunk to send back for repair, with what went wrong."""

    file: str
    chunk: str
    current: str  # the text the LLM proposed or the committed text
    error: str
    log_tail: str = ""


class EditStatus(StrEnum):
    APPLIED = "applied"  # the edit is valid and on disk, waiting for a commit
    DECLINED = "declined"  # the LLM proposed no change
    INVALID = "invalid"  # the edit broke a rule: ``problem`` says which
    SKIPPED = "skipped"  # no such chunk, no reply for it, or the LLM backend failed earlier


@dataclass(frozen=True)
class EditResult:
    status: EditStatus
    problem: Problem | None = None


@dataclass
class ChunkEditor:
    """Edits chunks of ``files`` with ``llm``; everything it does goes into ``ledger``."""

    files: TreeFiles
    ledger: Ledger
    llm: LLM
    cfg: Config
    ctx: MutationContext
    stopped: str = ""  # set when the LLM backend failed: no more calls
    cut_twice: int = 0  # chunks whose reply was cut at the token limit even when asked shorter

    @property
    def allowed_imports(self) -> tuple[str, ...]:
        return tuple(self.cfg.llm.allowed_imports) + tuple(self.ctx.extra_imports)

    def mutate(self, file: str, name: str, running: list[str]) -> EditResult:
        chunks = self.files.chunks(file)
        chunk = find_chunk(chunks, name)
        if chunk is None or self.stopped:
            return EditResult(EditStatus.SKIPPED)
        view = FileView(file, tuple(chunks))
        fitted = fit_prompt(
            lambda leave_out: mutation_prompt(
                view,
                chunk,
                running_memory=running,
                memory_digest=self.ctx.memory_digest,
                parent_metrics=self.ctx.parent_metrics,
                baseline_metrics=self.ctx.baseline_metrics,
                requests_context=self.ctx.requests_context,
                allowed_imports=self.allowed_imports,
                max_file_lines=self.cfg.evolution.max_file_lines,
                program=self.cfg.program,
                leave_out=leave_out,
            ),
            window_of(self.llm),
            MUTATE_TRIM,
            chunk.text,
        )
        return self._edit(chunk, fitted, MutationKind.MUTATE, chunk.text)

    def repair(self, p: Problem) -> EditResult:
        chunks = self.files.chunks(p.file)
        chunk = find_chunk(chunks, p.chunk)
        if chunk is None or self.stopped:
            return EditResult(EditStatus.SKIPPED)
        original = find_chunk(chunk_source(p.file, self.files.parent[p.file]), p.chunk)
        view = FileView(p.file, tuple(chunks))
        fitted = fit_prompt(
            lambda leave_out: repair_prompt(
                view,
                chunk.id,
                current=p.current,
                original=original.text if original else chunk.text,
                error=p.error,
                log_tail=p.log_tail,
                allowed_imports=self.allowed_imports,
                max_file_lines=self.cfg.evolution.max_file_lines,
                program=self.cfg.program,
                leave_out=leave_out,
            ),
            window_of(self.llm),
            REPAIR_TRIM,
            p.current,
        )
        return self._edit(chunk, fitted, MutationKind.REPAIR, p.current)

    def _call(
        self, where: tuple[str, str], kind: str, messages: list[Message], left: tuple[str, ...]
    ) -> Completion | None:
        """One LLM call; None when this chunk gets no reply (recorded). An outage is raised on."""
        try:
            c = self.llm.complete(messages)
        except (LLMTransientError, LLMAuthError):
            raise  # an outage decides nothing about this offspring: the engine stops the run
        except LLMRequestError as exc:
            self.ledger.record(where, kind, Outcome.REJECTED, str(exc), left_out=left)
            return None
        except LLMError as exc:
            self.stopped = f"LLM failed: {exc}"
            self.ledger.record(where, kind, Outcome.REJECTED, self.stopped, left_out=left)
            return None
        self.ledger.calls.append(c)
        return c

    def _ask(self, where: tuple[str, str], kind: str, fitted: Fitted) -> Completion | None:
        """The reply to ``fitted``; a reply cut at the token limit is asked again, shorter, once."""
        c = self._call(where, kind, fitted.messages, fitted.left_out)
        if c is None or c.finish_reason != "length":
            return c
        self.ledger.record(where, kind, Outcome.REJECTED, self._cut(c), c, left_out=fitted.left_out)
        c = self._call(where, kind, shorter(fitted.messages), fitted.left_out)
        if c is None or c.finish_reason != "length":
            return c
        self.cut_twice += 1
        why = self._cut(c) + ", again after asking for a shorter reply"
        self.ledger.record(where, kind, Outcome.REJECTED, why, c, left_out=fitted.left_out)
        return None

    def _cut(self, c: Completion) -> str:
        return (
            f"the reply was cut at the token limit after {c.completion_tokens} tokens "
            f"(llm.max_tokens = {self.cfg.llm.max_tokens}, or what the context window left)"
        )

    def _edit(self, chunk: Chunk, fitted: Fitted, kind: MutationKind, shown: str) -> EditResult:
        where = (chunk.file, chunk.name)
        left = fitted.left_out
        if fitted.problem:
            self.ledger.record(where, kind, Outcome.REJECTED, fitted.problem, left_out=left)
            return EditResult(EditStatus.SKIPPED)
        c = self._ask(where, kind, fitted)
        if c is None:
            return EditResult(EditStatus.SKIPPED)
        try:
            reply = self._apply(chunk, c.text)
        except MutationRejected as exc:
            self.ledger.record(where, kind, Outcome.REJECTED, str(exc), c, left_out=left)
            proposed = _proposed_text(c.text) or shown
            return EditResult(
                EditStatus.INVALID, Problem(chunk.file, chunk.name, proposed, str(exc))
            )
        change = ChunkChange(
            chunk.file, chunk.name, reply.summary, reply.rationale, reply.edit, reply.explore
        )
        if reply.no_change:
            why = reply.declined_because or "the LLM proposed no change"
            self.ledger.record(where, kind, Outcome.DECLINED, why, c, change, left)
            return EditResult(EditStatus.DECLINED)
        outcome = Outcome.APPLIED if kind == MutationKind.MUTATE else Outcome.REPAIRED
        self.ledger.record(where, kind, outcome, reply.rationale, c, change, left)
        self.ledger.pending.append(change)
        return EditResult(EditStatus.APPLIED)

    def _apply(self, chunk: Chunk, text: str) -> Reply:
        """Parse, apply and validate ``text`` for ``chunk``; written only when valid, else raises."""
        limit = self.cfg.llm.max_reply_chars
        if len(text) > limit:
            raise MutationRejected(
                f"reply of {len(text)} characters is over llm.max_reply_chars ({limit})"
            )
        reply = parse_reply(text, agent=self.ctx.agent, generation=self.ctx.generation)
        self.ledger.ask_for(reply.requests)
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
            return dataclasses.replace(reply, code=None, blocks=(), no_change=True)
        new_source = replace_chunk(self.files.current(chunk.file), chunk, new_chunk)
        # The tree as it would be: the earlier valid edits (not committed yet) with this one.
        edited = {**self.files.edited(), chunk.file: new_source}
        validate_files(
            self.files.committed,
            edited,
            evolvable=self.cfg.evolution.evolvable,
            allowed_imports=self.allowed_imports,
            max_file_lines=self.cfg.evolution.max_file_lines,
            program=self.cfg.program,
        )
        self.files.write(chunk.file, new_source)  # never before it is valid: nothing to undo
        return reply


def _proposed_text(reply: str) -> str:
    m = re.search(r"^```[\w-]*\n(.*?)(?:^```|\Z)", reply, re.MULTILINE | re.DOTALL)
    return m.group(1) if m else ""
