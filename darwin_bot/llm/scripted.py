"""The ``scripted`` backend: replies read in order from a JSONL file.

One JSON object per line: ``{"text": ..., "model": ..., "prompt_tokens": ...,
"completion_tokens": ...}`` (only ``text`` is required). Each ``complete``
call returns the next line, whatever the prompt; running out is an
``LLMError``. The prompts received are kept in ``prompts`` for tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from darwin_bot.errors import ConfigError, LLMError
from darwin_bot.llm.base import Completion, Message


def _reply(where: str, obj: Any) -> Completion:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        raise ConfigError(f"{where}: each line must be a JSON object with a string 'text'")
    return Completion(
        text=obj["text"],
        model=str(obj.get("model") or "scripted"),
        prompt_tokens=int(obj.get("prompt_tokens") or 0),
        completion_tokens=int(obj.get("completion_tokens") or 0),
        cost_usd=float(obj.get("cost_usd") or 0.0),
    )


class ScriptedLLM:
    """``LLM`` that plays back a fixed list of replies."""

    def __init__(self, replies: list[Completion], *, source: str = "<list>") -> None:
        self.name = "scripted"
        self.source = source
        self._replies = list(replies)
        self._next = 0
        self.prompts: list[list[Message]] = []

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedLLM:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"llm.script {p} does not exist; point it at a JSONL file of replies")
        replies: list[Completion] = []
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{p}:{n}: not valid JSON: {exc.msg}") from exc
            replies.append(_reply(f"{p}:{n}", obj))
        return cls(replies, source=str(p))

    @classmethod
    def from_texts(cls, texts: list[str], model: str = "scripted") -> ScriptedLLM:
        return cls([Completion(text=t, model=model) for t in texts])

    @property
    def remaining(self) -> int:
        return len(self._replies) - self._next

    def complete(self, messages: list[Message]) -> Completion:
        self.prompts.append(messages)
        if self._next >= len(self._replies):
            raise LLMError(
                f"scripted LLM ran out of replies after {len(self._replies)} "
                f"({self.source}); add more lines to the script"
            )
        reply = self._replies[self._next]
        self._next += 1
        return reply
