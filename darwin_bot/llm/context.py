"""How much a model can read and write: its context window and an honest token count.

A prompt plus its completion budget must fit the model's context window, or the
server answers 400 (llama.cpp, vLLM) or silently cuts the reply. The window is,
in order: ``llm.context_tokens`` when set, what the server reports (llama.cpp's
``/props``, vLLM's ``max_model_len`` in ``/v1/models``), the known window of the
model's family, else :data:`DEFAULT_CONTEXT` (a small local model's).

Tokens are estimated from characters, on the safe side: Python source runs at
about 3.1 characters per token with GPT-style tokenizers (measured on this
project's ``seed/``), so the estimate starts at :data:`CHARS_PER_TOKEN` = 3.0
and then learns the server's own ratio from the usage it reports on long
prompts (the lowest seen, so the estimate stays an over-count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from darwin_bot.llm.base import Message

CHARS_PER_TOKEN = 3.0
MIN_CHARS_PER_TOKEN = 1.5  # never believe a ratio below this (a prompt of odd symbols)
LEARN_FROM_CHARS = 2000  # shorter prompts are mostly chat-template overhead: learn nothing
TEMPLATE_TOKENS = 16  # per message: the chat template's role markers
DEFAULT_CONTEXT = 8192

# Longest prefix wins; names as the providers publish them.
KNOWN_CONTEXT: dict[str, int] = {
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
}


def known_context(model: str) -> int | None:
    """The published window of ``model``'s family (``openai/gpt-4o`` counts as ``gpt-4o``)."""
    name = model.rsplit("/", 1)[-1].lower()
    keys = [k for k in KNOWN_CONTEXT if name.startswith(k)]
    return KNOWN_CONTEXT[max(keys, key=len)] if keys else None


def message_chars(messages: list[Message]) -> int:
    return sum(len(m["content"]) for m in messages)


@dataclass
class Window:
    """A model's context window and the completion budget asked of it (in tokens)."""

    context_tokens: int
    max_tokens: int
    source: str = "default"  # config | server | known | default: where the window came from
    chars_per_token: float = CHARS_PER_TOKEN

    def tokens(self, messages: list[Message]) -> int:
        """An over-estimate of the prompt tokens of ``messages``."""
        return math.ceil(message_chars(messages) / self.chars_per_token) + TEMPLATE_TOKENS * len(
            messages
        )

    def text_tokens(self, text: str) -> int:
        return math.ceil(len(text) / self.chars_per_token)

    def completion_budget(self, messages: list[Message]) -> int:
        """``max_tokens``, or less so that the prompt and the reply fit the window (may be <= 0)."""
        return min(self.max_tokens, self.context_tokens - self.tokens(messages))

    def learn(self, messages: list[Message], prompt_tokens: int) -> None:
        """Take the server's count of a long prompt as the ratio when it is lower (safer)."""
        chars = message_chars(messages)
        if chars < LEARN_FROM_CHARS or prompt_tokens <= 0:
            return
        ratio = max(MIN_CHARS_PER_TOKEN, chars / prompt_tokens)
        self.chars_per_token = min(self.chars_per_token, ratio)


@runtime_checkable
class Windowed(Protocol):
    """A backend whose model has a context window (the openai backend; not the offline ones)."""

    def window(self) -> Window | None: ...


def window_of(llm: object) -> Window | None:
    """The window of ``llm`` (through a wrapper that passes it on), or None when it has none."""
    return llm.window() if isinstance(llm, Windowed) else None
