"""The LLM protocol: one method, ``complete(messages) -> Completion``.

Backends: ``openai`` (any OpenAI-compatible server), ``heuristic`` (offline
rule-based mutator that answers mutation prompts in the same reply format),
``scripted`` (replies read in order from a JSONL file). A backend raises only
``LLMError`` subclasses; callers never see a client library's exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypedDict, runtime_checkable

if TYPE_CHECKING:
    from darwin_bot.llm.evidence import Guidance


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    usage_reported: bool = True
    finish_reason: str = ""  # "stop", "length" (cut at the token budget), ... ("": not said)


class LLM(Protocol):
    """Anything that turns a chat into one reply."""

    name: str

    def complete(self, messages: list[Message]) -> Completion:
        """Return the reply to ``messages``.

        ``messages`` are chat turns (``system`` first, then ``user``; an
        ``assistant`` turn only in a multi-turn exchange). The reply's text is
        parsed by ``darwin_bot.mutation.replies``; token counts are what the
        backend reports (``usage_reported`` False when it reports none).
        Raises only ``LLMError`` (``LLMTransientError`` when a retry later may
        work, ``LLMReplyError`` for an unusable reply), after the backend's own
        retries; a client library's exception never escapes.
        """
        ...


@dataclass(frozen=True)
class ChunkOffer:
    """A chunk the pipeline may have rewritten: ``file::name``, its text, its file's imports."""

    id: str
    text: str
    imports: str


@dataclass(frozen=True)
class ChunkPlan:
    """The chunks a guided backend wants rewritten (``picked``), then the fallbacks, by id."""

    picked: tuple[str, ...]
    rest: tuple[str, ...]


@runtime_checkable
class Guided(Protocol):
    """A backend that also reads typed guidance (the memory's evidence) besides the prompt.

    The pipeline calls ``guide`` once per offspring, before the first prompt;
    ``None`` means no guidance (the memory withheld). Then ``prefer`` with
    every mutable chunk and the ids of its own random pick: a plan replaces
    the pick, None keeps it.
    """

    def guide(self, guidance: Guidance | None) -> None: ...

    def prefer(self, offers: Sequence[ChunkOffer], picked: Sequence[str]) -> ChunkPlan | None: ...
