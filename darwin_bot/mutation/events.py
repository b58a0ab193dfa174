"""What the mutation pipeline produces: typed events, attempts and the outcome of one call."""

from __future__ import annotations

from dataclasses import dataclass

from darwin_bot.core import HumanRequest, Metrics, MutationKind, Outcome, SmokeResult
from darwin_bot.llm import Guidance


@dataclass(frozen=True)
class MutationContext:
    agent: str
    generation: int
    parents: tuple[str, ...]
    parent_metrics: Metrics | None
    baseline_metrics: Metrics | None
    memory_digest: str = ""  # for an LLM, already capped
    requests_context: str = ""  # approved/declined human requests, as text
    extra_imports: tuple[str, ...] = ()  # approved dependency requests
    seed: int = 0
    guidance: Guidance | None = None  # the memory as typed evidence (offline mutator)


@dataclass(frozen=True)
class ChunkChange:
    file: str
    chunk: str
    summary: str
    rationale: str = ""  # the LLM's stated reason, kept in the commit body for review
    edit: str = ""  # the reply's EDIT tag
    explore: bool = False


@dataclass(frozen=True)
class Attempt:
    kind: MutationKind  # mutate or repair
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
    kind: MutationKind  # mutate or repair
    outcome: Outcome  # core.agent: the one enum a mutation record carries
    reason: str
    summary: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    edit: str = ""
    explore: bool = False
    left_out: tuple[str, ...] = ()  # prompt sections left out to fit the model's window


@dataclass(frozen=True)
class MutationOutcome:
    """What one mutate (or repair) call made; ``status`` is one of three :class:`Outcome` values.

    ``APPLIED``: a change was committed and its last committed state passed the
    smoke test (or its smoke test is deferred); ``REJECTED``: nothing usable (see
    ``reason``); ``DUPLICATE``: the change is known already, neither smoke-tested
    nor trained. Each event's own outcome is in ``events``.
    """

    status: Outcome
    reason: str
    attempts: tuple[Attempt, ...]  # those that were committed, in order
    events: tuple[MutationEvent, ...]
    smoke: SmokeResult | None  # SmokeDeferred: the sandboxed evaluate job runs it
    change: str = ""  # the normalised change signature of the final tree ('' if none)
    changed: tuple[
        tuple[str, str], ...
    ] = ()  # (file, chunk) that differ from the parent at the end
