"""The wire format of a prompt's sections, in one place.

A prompt is prose plus sections. Each section starts with a header line
``### NAME <argument>`` and may hold one fenced block. The prompt builder
(:mod:`darwin_bot.mutation.prompts`) writes sections with :func:`render`; the
offline mutator (:mod:`darwin_bot.llm.offline`) reads them back with
:func:`find`. The templates under ``mutation/templates/`` hold only prose and
``$placeholders`` for rendered sections, so their wording can change without
touching either side.

This module lives in ``llm/`` (not ``mutation/``) so that ``mutation`` imports
``llm`` and never the other way round.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Section(StrEnum):
    """The sections a mutation or repair prompt may carry."""

    TASK = "TASK"  # argument: the task (mutate | repair)
    FILE = "FILE"
    IMPORTS = "IMPORTS"  # the file's frozen import block
    GLOBALS = "GLOBALS"
    CHANGED = "CHANGED"  # what this offspring changed so far
    MEMORY = "MEMORY"
    PARENT_METRICS = "PARENT_METRICS"
    REQUESTS = "REQUESTS"
    ERROR = "ERROR"
    LOG_TAIL = "LOG_TAIL"
    ORIGINAL = "ORIGINAL"  # argument: chunk id; body: the parent's chunk (repair)
    CHUNK = "CHUNK"  # argument: chunk id; body: the chunk to edit


class Task(StrEnum):
    MUTATE = "mutate"
    REPAIR = "repair"


def render_section(
    name: Section, argument: str = "", body: str | None = None, fence: str = ""
) -> str:
    """``### NAME argument`` then ``body`` (fenced as ``fence`` when ``fence`` is given)."""
    head = f"### {name.value}" + (f" {argument}" if argument else "")
    if body is None:
        return head
    if fence:
        return f"{head}\n```{fence}\n{body.rstrip(chr(10))}\n```"
    return f"{head}\n{body}"


_HEADER = re.compile(r"^### (\w+)(?: (\S+))?.*$", re.MULTILINE)
_FENCED = re.compile(r"^```[\w-]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def find(prompt: str, name: Section) -> tuple[str, str] | None:
    """``(argument, body)`` of the first ``name`` section of ``prompt``, or None.

    The body is the section's first fenced block without the fences, else its
    text up to the next header.
    """
    for m in _HEADER.finditer(prompt):
        if m.group(1) != name.value:
            continue
        rest = prompt[m.end() :]
        nxt = _HEADER.search(rest)
        fence = _FENCED.search(rest)
        if fence and (nxt is None or fence.start() < nxt.start()):
            return (m.group(2) or "", fence.group(1))
        return (m.group(2) or "", (rest[: nxt.start()] if nxt else rest).strip())
    return None


def task_of(prompt: str) -> Task | None:
    """The prompt's task, or None when it is not one of ours."""
    got = find(prompt, Section.TASK)
    if got is None:
        return None
    try:
        return Task(got[0])
    except ValueError:
        return None
