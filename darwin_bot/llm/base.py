"""The LLM protocol: one method, ``complete(messages) -> Completion``.

Backends: ``openai`` (any OpenAI-compatible server), ``heuristic`` (offline
rule-based mutator that answers mutation prompts in the same reply format),
``scripted`` (replies read in order from a JSONL file). A backend raises only
``LLMError`` subclasses; callers never see a client library's exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypedDict


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


class LLM(Protocol):
    """Anything that turns a chat into one reply."""

    name: str

    def complete(self, messages: list[Message]) -> Completion:
        """Return the reply to ``messages``; raise ``LLMError`` on failure."""
        ...
