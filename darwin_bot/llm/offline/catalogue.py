"""Every known edit: the registered code transforms and the hyperparameter rules."""

from __future__ import annotations

import random

from darwin_bot.llm.offline import blocks, training  # noqa: F401 - importing registers them
from darwin_bot.llm.offline.hparams import KINDS as HPARAM_KINDS
from darwin_bot.llm.offline.hparams import hparam_edits
from darwin_bot.llm.offline.registry import REGISTRY, Edit, code_edits

KINDS: tuple[str, ...] = (*REGISTRY, *HPARAM_KINDS)


def proposals(chunk_text: str, names: set[str], rng: random.Random) -> list[Edit]:
    """Every known edit that applies to ``chunk_text`` (may be empty), in catalogue order.

    ``names`` are the names the file's import block binds. An edit whose
    ``needs`` are not allowed imports is still listed: the caller decides
    (the offline mutator asks the humans for it).
    """
    return code_edits(chunk_text, names, rng) + hparam_edits(chunk_text, rng)


def unlocked_by(module: str) -> list[tuple[str, str]]:
    """(kind, title) of the known code edits that need ``module`` (an import a human may approve)."""
    return [(t.kind, t.title) for t in REGISTRY.values() if module in t.needs]
