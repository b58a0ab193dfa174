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

from darwin_bot.llm.offline.ast_tools import dedented, indented


@dataclass(frozen=True)
class EditTag:
    """Which edit: ``kind``, and for a hyperparameter its ``direction`` and new ``value``."""

    kind: str
    direction: str = ""
    value: str = ""

    @property
    def arm(self) -> str:
        """What credit is kept for: ``rmsnorm``, ``hparam:learning_rate:up``."""
        return f"{self.kind}:{self.direction}" if self.direction else self.kind

    @property
    def effect(self) -> str:
        """What the tree gets: ``rmsnorm``, ``hparam:learning_rate=0.002``."""
        return f"{self.kind}={self.value}" if self.value else self.kind

    def text(self) -> str:
        """The one-line form used in replies and records: ``hparam:learning_rate:up=0.002``."""
        return self.arm + (f"={self.value}" if self.value else "")

    @classmethod
    def parse(cls, text: str) -> EditTag:
        head, _, value = text.strip().partition("=")
        kind, direction = head, ""
        if head.startswith("hparam:") and head.count(":") == 2:
            kind, direction = head.rsplit(":", 1)
        return cls(kind, direction, value)


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
