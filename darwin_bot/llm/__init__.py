"""LLM backends behind one protocol; ``make_llm(config)`` picks one."""

from darwin_bot.llm.base import LLM, Completion, Message
from darwin_bot.llm.factory import make_llm

__all__ = ["LLM", "Completion", "Message", "make_llm"]
