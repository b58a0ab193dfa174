"""Build mutation and repair prompts from the templates in ``templates/``.

The templates are data files (``string.Template``, ``$name`` placeholders)
holding the prose; every section header (``### NAME <argument>``) and fenced
block is written by :func:`darwin_bot.llm.sections.render_section`, the one module that
also reads them back (the offline mutator finds its chunk that way). So the
templates' wording can change without touching code.

The mutate template puts what every chunk of one file shares first (rules,
the file's structure, the memory, the metrics) and the task and the chunk
last: a server that caches prompt prefixes (llama.cpp's server, OpenAI's
prompt caching) then evaluates, or bills at full price, only the tail.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

from darwin_bot.config import ProgramConfig
from darwin_bot.core import Metrics
from darwin_bot.llm import Message, Section, Task, render_section
from darwin_bot.mutation.chunks import Chunk
from darwin_bot.program import contract_for

LOG_TAIL_CHARS = 3000
MEMORY_DIGEST_CHARS = 6000
LEFT_OUT = "(left out to fit the model's context window)"
# What a prompt drops, in this order, to fit a small context window: the chunk, the
# rules, the imports and the reply format are never dropped.
MUTATE_TRIM = ("memory", "structure", "changed", "requests", "globals", "metrics")
REPAIR_TRIM = ("log", "original")


@cache
def template(name: str) -> str:
    """The text of ``templates/<name>.md``, shipped as package data."""
    return (resources.files("darwin_bot.mutation") / "templates" / f"{name}.md").read_text(
        encoding="utf-8"
    )


def _render(name: str, **values: str) -> str:
    return Template(template(name)).substitute(**values)


@dataclass(frozen=True)
class FileView:
    """What a prompt shows of the file around the chunk."""

    file: str
    chunks: tuple[Chunk, ...]

    def structure(self) -> str:
        rows = []
        for c in self.chunks:
            if c.frozen:
                continue
            rows.append(f"- {c.name}: {c.signature}" if c.signature else f"- {c.name}")
        return "\n".join(rows)

    def imports(self) -> str:
        return "".join(c.text for c in self.chunks if c.frozen).rstrip("\n")

    def globals(self) -> str:
        return "".join(c.text for c in self.chunks if c.kind == "globals").rstrip("\n") or "(none)"


def format_metrics(m: Metrics | None, baseline: Metrics | None) -> str:
    if m is None:
        return "(not evaluated yet)"
    line = (
        f"perplexity {m.perplexity:.4f}, val_loss {m.val_loss:.4f}, MFU {m.mfu:.4%}, "
        f"{m.tokens_per_s:.0f} tokens/s, {m.train_seconds:.1f} s, peak memory {m.peak_mem_mb:.0f} MB"
    )
    if baseline is not None:
        line += f"\nbaseline: perplexity {baseline.perplexity:.4f}, MFU {baseline.mfu:.4%}"
    return line


def _rules(
    allowed_imports: tuple[str, ...], max_file_lines: int, program: ProgramConfig | None = None
) -> str:
    return _render(
        "rules",
        contract_rules=contract_for(program).rules(),
        allowed_imports=", ".join(allowed_imports) or "(none)",
        max_file_lines=str(max_file_lines),
    ).rstrip("\n")


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 20].rstrip() + "\n... (truncated)"


def mutation_prompt(
    view: FileView,
    chunk: Chunk,
    *,
    running_memory: list[str],
    memory_digest: str,
    parent_metrics: Metrics | None,
    baseline_metrics: Metrics | None,
    requests_context: str,
    allowed_imports: tuple[str, ...],
    max_file_lines: int,
    program: ProgramConfig | None = None,  # the contract's rules
    leave_out: frozenset[str] = frozenset(),  # of MUTATE_TRIM
) -> list[Message]:
    def part(name: str, text: str) -> str:
        return LEFT_OUT if name in leave_out else text

    user = _render(
        "mutate",
        task_section=render_section(Section.TASK, Task.MUTATE),
        chunk_id=chunk.id,
        file=view.file,
        rules=_rules(allowed_imports, max_file_lines, program),
        file_section=render_section(Section.FILE, view.file),
        structure=part("structure", view.structure()),
        imports_section=render_section(Section.IMPORTS, view.file, view.imports(), fence="python"),
        globals_section=render_section(
            Section.GLOBALS, view.file, part("globals", view.globals()), fence="python"
        ),
        changed_section=render_section(Section.CHANGED),
        running_memory=part(
            "changed", "\n".join(f"- {s}" for s in running_memory) or "(nothing yet)"
        ),
        memory_section=render_section(Section.MEMORY),
        memory_digest=part(
            "memory", _cap(memory_digest.strip(), MEMORY_DIGEST_CHARS) or "(no records yet)"
        ),
        parent_metrics_section=render_section(Section.PARENT_METRICS),
        parent_metrics=part("metrics", format_metrics(parent_metrics, baseline_metrics)),
        requests_section=render_section(Section.REQUESTS),
        requests_context=part("requests", requests_context.strip() or "(none)"),
        chunk_section=render_section(Section.CHUNK, chunk.id, chunk.text, fence="python"),
        reply_format=template("reply_format").rstrip("\n"),
    )
    return [
        {"role": "system", "content": template("system").strip()},
        {"role": "user", "content": user},
    ]


def repair_prompt(
    view: FileView,
    chunk_id: str,
    *,
    current: str,
    original: str,
    error: str,
    log_tail: str,
    allowed_imports: tuple[str, ...],
    max_file_lines: int,
    program: ProgramConfig | None = None,  # the contract's rules
    leave_out: frozenset[str] = frozenset(),  # of REPAIR_TRIM
) -> list[Message]:
    tail = LEFT_OUT if "log" in leave_out else log_tail[-LOG_TAIL_CHARS:].strip() or "(no output)"
    user = _render(
        "repair",
        task_section=render_section(Section.TASK, Task.REPAIR),
        chunk_id=chunk_id,
        error_section=render_section(Section.ERROR),
        error=error.strip() or "(no message)",
        log_tail_section=render_section(Section.LOG_TAIL, "", tail, fence="text"),
        rules=_rules(allowed_imports, max_file_lines, program),
        imports_section=render_section(Section.IMPORTS, view.file, view.imports(), fence="python"),
        original_section=render_section(
            Section.ORIGINAL,
            chunk_id,
            LEFT_OUT if "original" in leave_out else original,
            fence="python",
        ),
        chunk_section=render_section(Section.CHUNK, chunk_id, current, fence="python"),
        reply_format=template("reply_format").rstrip("\n"),
    )
    return [
        {"role": "system", "content": template("system").strip()},
        {"role": "user", "content": user},
    ]
