"""One chunk edit: prompt the LLM, parse and apply its reply, validate, keep or restore."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import StrEnum

from darwin_bot.config import Config
from darwin_bot.core.agent import Outcome
from darwin_bot.errors import LLMError, MutationRejected
from darwin_bot.llm.base import LLM, Message
from darwin_bot.mutation.chunks import Chunk, chunk_source, find_chunk, reindent, replace_chunk
from darwin_bot.mutation.events import ChunkChange, MutationContext
from darwin_bot.mutation.prompts import FileView, mutation_prompt, repair_prompt
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
    SKIPPED = "skipped"  # no such chunk, or the LLM backend failed earlier


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

    @property
    def allowed_imports(self) -> tuple[str, ...]:
        return tuple(self.cfg.llm.allowed_imports) + tuple(self.ctx.extra_imports)

    def mutate(self, file: str, name: str, running: list[str]) -> EditResult:
        chunks = self.files.chunks(file)
        chunk = find_chunk(chunks, name)
        if chunk is None or self.stopped:
            return EditResult(EditStatus.SKIPPED)
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

    def repair(self, p: Problem) -> EditResult:
        chunks = self.files.chunks(p.file)
        chunk = find_chunk(chunks, p.chunk)
        if chunk is None or self.stopped:
            return EditResult(EditStatus.SKIPPED)
        original = find_chunk(chunk_source(p.file, self.files.parent[p.file]), p.chunk)
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
        return self._edit(chunk, messages, "repair", p.current)

    def _edit(self, chunk: Chunk, messages: list[Message], kind: str, shown: str) -> EditResult:
        where = (chunk.file, chunk.name)
        try:
            c = self.llm.complete(messages)
        except LLMError as exc:
            self.stopped = f"LLM failed: {exc}"
            self.ledger.record(where, kind, Outcome.REJECTED, self.stopped)
            return EditResult(EditStatus.SKIPPED)
        self.ledger.calls.append(c)
        try:
            reply = self._apply(chunk, c.text)
        except MutationRejected as exc:
            self.ledger.record(where, kind, Outcome.REJECTED, str(exc), c)
            proposed = _proposed_text(c.text) or shown
            return EditResult(
                EditStatus.INVALID, Problem(chunk.file, chunk.name, proposed, str(exc))
            )
        change = ChunkChange(
            chunk.file, chunk.name, reply.summary, reply.rationale, reply.edit, reply.explore
        )
        if reply.no_change:
            why = reply.declined_because or "the LLM proposed no change"
            self.ledger.record(where, kind, Outcome.DECLINED, why, c, change)
            return EditResult(EditStatus.DECLINED)
        outcome = Outcome.APPLIED if kind == "mutate" else Outcome.REPAIRED
        self.ledger.record(where, kind, outcome, reply.rationale, c, change)
        self.ledger.pending.append(change)
        return EditResult(EditStatus.APPLIED)

    def _apply(self, chunk: Chunk, text: str) -> Reply:
        """Parse and apply ``text`` to ``chunk`` and validate; restores and raises on failure."""
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
        try:
            validate_files(
                self.files.committed,
                {chunk.file: new_source},
                evolvable=self.cfg.evolution.evolvable,
                allowed_imports=self.allowed_imports,
                max_file_lines=self.cfg.evolution.max_file_lines,
                program=self.cfg.program,  # darwin:contract seam
            )
        except MutationRejected:
            self.files.restore()
            raise
        self.files.write(chunk.file, new_source)
        return reply


def _proposed_text(reply: str) -> str:
    m = re.search(r"^```[\w-]*\n(.*?)(?:^```|\Z)", reply, re.MULTILINE | re.DOTALL)
    return m.group(1) if m else ""
