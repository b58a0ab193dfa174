"""Make a chunk prompt fit the model's context window, leaving out context before the chunk.

A prompt and the reply it asks for must fit the window together: a whole-chunk
rewrite needs about as many tokens as the chunk, plus the summary and rationale.
When they do not fit, the optional sections go first, in the prompt builder's
order (the memory digest, the file's structure, the earlier changes, ...); the
chunk, the rules and the reply format never do. What was left out is recorded
with the edit. A prompt that cannot fit even then is that chunk's failure, with
the figures in the reason, never the end of the offspring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from darwin_bot.llm import Message, Window

REPLY_OVERHEAD_TOKENS = 200  # SUMMARY, RATIONALE, EDIT and the fences around the code
SHORTER = (
    "\n\nYour previous reply to this prompt was cut off at the token limit. Reply again, "
    "shorter: one-line SUMMARY and RATIONALE, then SEARCH/REPLACE blocks that change only "
    "the lines you need (not the whole chunk)."
)


@dataclass(frozen=True)
class Fitted:
    """A prompt that fits (``problem`` empty), what it left out, or why none fits."""

    messages: list[Message]
    left_out: tuple[str, ...] = ()
    problem: str = ""


def reply_tokens(window: Window, chunk_text: str) -> int:
    """Tokens a whole-chunk rewrite needs (capped at the configured completion budget)."""
    return min(window.max_tokens, window.text_tokens(chunk_text) + REPLY_OVERHEAD_TOKENS)


def fit_prompt(
    build: Callable[[frozenset[str]], list[Message]],
    window: Window | None,
    trim: Sequence[str],
    chunk_text: str,
) -> Fitted:
    """``build(leave_out)`` with as little left out as lets the prompt and its reply fit."""
    if window is None:  # the offline mutator and scripted replies have no window
        return Fitted(build(frozenset()))
    need = reply_tokens(window, chunk_text)
    dropped: list[str] = []
    messages = build(frozenset())
    for step in (None, *trim):
        if step is not None:
            dropped.append(step)
            messages = build(frozenset(dropped))
        if window.tokens(messages) + need <= window.context_tokens:
            return Fitted(messages, tuple(dropped))
    return Fitted(
        messages,
        tuple(dropped),
        f"the prompt does not fit the model's context window: ~{window.tokens(messages)} "
        f"prompt tokens (with {', '.join(dropped) or 'nothing'} left out) + {need} for the "
        f"reply > {window.context_tokens} ({window.source}); raise llm.context_tokens if the "
        "server allows it, or use a model with a larger window",
    )


def shorter(messages: list[Message]) -> list[Message]:
    """The same prompt, asking for a reply of smaller scope (after one cut at the limit)."""
    last = messages[-1]
    return [*messages[:-1], {"role": last["role"], "content": last["content"] + SHORTER}]
