"""The catalogue of known edits: each transform declares its kind once, here.

A transform is a function ``(chunk text, rng, imported names) -> new text | None``
registered with :func:`transform`, which stores its kind, commit subject,
rationale and any imports it needs. :data:`KINDS` is built from the registry
(and the hyperparameter rules), never written by hand.

An edit is named by an :class:`EditTag`: its ``kind`` (``rmsnorm``,
``hparam:learning_rate``), for a hyperparameter the ``direction`` it moved
(``up``/``down``) and the ``value`` it set. The *arm* (kind and direction) is
what credit is kept for; the *effect* (kind and value) is what a tree gets,
so the same effect twice in one lineage is a repeat.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from darwin_bot.llm.evidence import EditTag
from darwin_bot.llm.offline.ast_tools import dedented, indented


@dataclass(frozen=True)
class Edit:
    """One proposed edit: the new chunk text, what it is and why."""

    tag: EditTag
    summary: str
    rationale: str
    text: str
    needs: tuple[str, ...] = ()  # modules it imports beyond the file's own


Apply = Callable[[str, random.Random, set[str]], "str | None"]


@dataclass(frozen=True)
class Transform:
    kind: str
    title: str
    why: str
    apply: Apply
    needs: tuple[str, ...] = ()


REGISTRY: dict[str, Transform] = {}


def transform(
    kind: str, title: str, why: str, needs: tuple[str, ...] = ()
) -> Callable[[Apply], Apply]:
    """Register ``fn`` as the transform of ``kind`` (a kind is registered once)."""

    def register(fn: Apply) -> Apply:
        if kind in REGISTRY:
            raise ValueError(f"transform kind {kind!r} registered twice")
        REGISTRY[kind] = Transform(kind, title, why, fn, needs)
        return fn

    return register


def code_edits(chunk_text: str, names: set[str], rng: random.Random) -> list[Edit]:
    """Every registered code transform that applies to ``chunk_text``."""
    body, indent = dedented(chunk_text)
    out: list[Edit] = []
    for t in REGISTRY.values():
        new = t.apply(body, random.Random(rng.random()), names)
        if new is not None and new.strip() != body.strip():
            out.append(Edit(EditTag(t.kind), t.title, t.why, indented(new, indent), t.needs))
    return out
