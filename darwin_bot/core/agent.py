"""Agents, the mutations that made them, and their requests to humans.

An agent is a git branch ``<prefix><agent-id>``; everything here can be
rebuilt from the commit trailers on that branch (see ``git.repo``), so git
alone is enough to recover the population after a crash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class MutationKind(StrEnum):
    """How an agent's commit came to be (``Darwin-Kind``); a StrEnum, so JSON holds the value."""

    SEED = "seed"  # generation 0: the default branch's tree
    MUTATE = "mutate"  # an LLM edit of one parent
    CROSSOVER = "crossover"  # chunks of two parents
    REPAIR = "repair"  # a fix of an offspring whose smoke test or evaluation failed


RequestKind = Literal["data", "dependency", "script", "restructure", "other"]
REQUEST_KINDS: tuple[str, ...] = ("data", "dependency", "script", "restructure", "other")

TRAILER_KEYS: tuple[str, ...] = (
    "Darwin-Agent",
    "Darwin-Generation",
    "Darwin-Parents",
    "Darwin-Kind",
    "Darwin-Model",
    "Darwin-Prompt-Tokens",
    "Darwin-Completion-Tokens",
)

SEED_AGENT = "seed"  # the id of generation 0's agent: the default branch's tree


class Outcome(StrEnum):
    """What became of a mutation: one event (``outcome`` of a mutation record), or one call.

    One of the two outcome enums, each for one thing that ends: this one for a
    mutation, :class:`darwin_bot.core.results.Status` for an evaluation (and for an
    offspring record, which says whether there is a tree to evaluate). A value
    both spell (``rejected``) means the same in each: nothing usable came of it.
    A mutate call ends ``APPLIED``, ``REJECTED`` or ``DUPLICATE``
    (``mutation.events.MutationOutcome``).
    """

    PENDING = "pending"  # committed, not evaluated yet
    APPLIED = "applied"  # the edit was applied and committed
    REPAIRED = "repaired"  # a repair edit was applied and committed
    REJECTED = "rejected"  # invalid (validation, parsing) or the LLM failed; files as committed
    SMOKE_FAILED = "smoke_failed"  # committed, but the smoke test failed
    DECLINED = "declined"  # the LLM proposed no change
    DUPLICATE = "duplicate"  # the same change as a sibling's or a known agent's: not tested


def agent_id(generation: int, index: int) -> str:
    """The id of the ``index``-th offspring of ``generation``: stable across reruns."""
    return f"g{generation:03d}-{index:03d}"


@dataclass(frozen=True)
class Mutation:
    """One commit on an agent's branch, as its trailers describe it."""

    sha: str
    agent: str
    generation: int
    parents: tuple[str, ...]
    kind: MutationKind
    summary: str
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def trailers(self) -> dict[str, str]:
        return {
            "Darwin-Agent": self.agent,
            "Darwin-Generation": str(self.generation),
            "Darwin-Parents": ",".join(self.parents) or "-",
            "Darwin-Kind": self.kind,
            "Darwin-Model": self.model or "-",
            "Darwin-Prompt-Tokens": str(self.prompt_tokens),
            "Darwin-Completion-Tokens": str(self.completion_tokens),
        }


@dataclass(frozen=True)
class Agent:
    """A member of the population: a branch head and the lineage behind it."""

    id: str
    branch: str
    head: str
    generation: int
    parents: tuple[str, ...]
    mutations: tuple[Mutation, ...] = field(default_factory=tuple)

    @property
    def summary(self) -> str:
        own = [m.summary for m in self.mutations if m.agent == self.id]
        return own[0] if own else (self.mutations[-1].summary if self.mutations else SEED_AGENT)


class RequestStatus(StrEnum):
    """Where a request stands (``state`` of a request record); a StrEnum, so JSON holds the value."""

    PENDING = "pending"  # open, no decision yet
    APPROVED = "approved"  # labelled darwin:approved and not declined
    DECLINED = "declined"  # labelled darwin:declined, or closed without approval


@dataclass(frozen=True)
class HumanRequest:
    """An agent's request for something only a human can give."""

    kind: RequestKind
    title: str
    rationale: str
    agent: str = ""
    generation: int = 0

    @property
    def key(self) -> str:
        """Dedup key: the same kind and title from any agent is one request."""
        norm = " ".join(self.title.lower().split())
        return hashlib.sha256(f"{self.kind}:{norm}".encode()).hexdigest()[:12]
