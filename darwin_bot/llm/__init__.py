"""LLM backends behind one protocol; ``make_llm(config)`` picks one."""

from darwin_bot.llm.base import LLM, Completion, Message

__all__ = ["LLM", "Completion", "Message"]
