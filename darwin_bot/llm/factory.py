"""Pick an LLM backend from the configuration."""

from __future__ import annotations

import os
import sys

from darwin_bot.config import LLMConfig
from darwin_bot.errors import ConfigError
from darwin_bot.llm.base import LLM

_said_auto = False


def resolve_backend(cfg: LLMConfig) -> str:
    """The backend ``cfg.backend`` means: the one place where ``auto`` is decided.

    ``auto`` is ``openai`` when ``OPENAI_API_KEY`` or ``llm.base_url`` is set,
    else ``heuristic``; the choice is said once per process on stderr.
    """
    global _said_auto
    if cfg.backend != "auto":
        return cfg.backend
    backend = "openai" if (os.environ.get("OPENAI_API_KEY") or cfg.base_url) else "heuristic"
    if not _said_auto:
        why = (
            "OPENAI_API_KEY or llm.base_url is set"
            if backend == "openai"
            else "no OPENAI_API_KEY and no llm.base_url: offline mutator"
        )
        print(f"darwin: llm.backend = auto -> {backend} ({why})", file=sys.stderr)
        _said_auto = True
    return backend


def shared_client(cfg: LLMConfig) -> bool:
    """Whether one backend object serves the whole run (a client, a reply cursor).

    The offline mutator is made per offspring instead, seeded on its own.
    """
    return resolve_backend(cfg) in ("openai", "scripted")


def make_llm(cfg: LLMConfig, *, seed: int = 0) -> LLM:
    """The backend ``cfg.backend`` names (``auto``: see :func:`resolve_backend`)."""
    backend = resolve_backend(cfg)
    if backend == "openai":
        from darwin_bot.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(cfg)
    if backend == "heuristic":
        from darwin_bot.llm.offline import HeuristicLLM

        return HeuristicLLM(seed=seed)
    if backend == "scripted":
        from darwin_bot.llm.scripted import ScriptedLLM

        if not cfg.script:
            raise ConfigError("llm.backend = 'scripted' needs llm.script: a JSONL file of replies")
        return ScriptedLLM.from_file(cfg.script)
    raise ConfigError(f"unknown llm.backend {cfg.backend!r}")
