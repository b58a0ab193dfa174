"""LLM backends behind one protocol; ``make_llm(config)`` picks one."""

from typing import TYPE_CHECKING

from darwin_bot import lazy_surface

if TYPE_CHECKING:
    from darwin_bot.llm.base import LLM, ChunkOffer, ChunkPlan, Completion, Guided, Message
    from darwin_bot.llm.context import CHARS_PER_TOKEN, Window, window_of
    from darwin_bot.llm.evidence import (
        Evidence,
        Guidance,
        audit_memory,
        evidence_digest,
        from_memory,
    )
    from darwin_bot.llm.factory import make_llm, resolve_backend, shared_client
    from darwin_bot.llm.offline.ast_tools import normalised
    from darwin_bot.llm.offline.backend import HeuristicLLM
    from darwin_bot.llm.offline.catalogue import unlocked_by
    from darwin_bot.llm.openai_backend import OpenAIBackend
    from darwin_bot.llm.sections import Section, Task, render_section


# The package's surface: code outside the package imports these names from here, never
# from a module of the package (tests/test_house.py holds the rule and the listing in
# tests/surface.txt). Each name is imported from its module on first use (PEP 562), so
# importing one module of the package (a sandbox worker) does not import the rest.
__all__ = [
    "CHARS_PER_TOKEN",
    "ChunkOffer",
    "ChunkPlan",
    "Completion",
    "Evidence",
    "Guidance",
    "Guided",
    "HeuristicLLM",
    "LLM",
    "Message",
    "OpenAIBackend",
    "Section",
    "Task",
    "Window",
    "audit_memory",
    "evidence_digest",
    "from_memory",
    "make_llm",
    "normalised",
    "render_section",
    "resolve_backend",
    "shared_client",
    "unlocked_by",
    "window_of",
]
_HOMES = {
    "CHARS_PER_TOKEN": ".context",
    "ChunkOffer": ".base",
    "ChunkPlan": ".base",
    "Completion": ".base",
    "Evidence": ".evidence",
    "Guidance": ".evidence",
    "Guided": ".base",
    "HeuristicLLM": ".offline.backend",
    "LLM": ".base",
    "Message": ".base",
    "OpenAIBackend": ".openai_backend",
    "Section": ".sections",
    "Task": ".sections",
    "Window": ".context",
    "audit_memory": ".evidence",
    "evidence_digest": ".evidence",
    "from_memory": ".evidence",
    "make_llm": ".factory",
    "normalised": ".offline.ast_tools",
    "render_section": ".sections",
    "resolve_backend": ".factory",
    "shared_client": ".factory",
    "unlocked_by": ".offline.catalogue",
    "window_of": ".context",
}


__getattr__ = lazy_surface(__name__, _HOMES, globals())
