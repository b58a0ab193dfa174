"""The change an offspring makes to its parent, with formatting normalised away.

Two offspring whose signatures are equal made the same edit to the same code
(comments, blank lines and layout do not count), so training the second one
would measure nothing new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from darwin_bot.llm.offline.ast_tools import normalised
from darwin_bot.mutation.chunks import chunk_source


def changed_chunks(
    parent: Mapping[str, str], now: Mapping[str, str]
) -> list[tuple[str, str, str, str]]:
    """(file, chunk, normalised before, normalised after) of every chunk that really changed."""
    out = []
    for path in sorted(now):
        before = {c.name: normalised(c.text) for c in chunk_source(path, parent.get(path, ""))}
        for c in chunk_source(path, now[path]):
            after = normalised(c.text)
            if before.get(c.name) != after:
                out.append((path, c.name, before.get(c.name, ""), after))
    return out


def signature(parent: Mapping[str, str], now: Mapping[str, str]) -> str:
    """A short hash of :func:`changed_chunks` ('' when nothing changed but formatting)."""
    parts = changed_chunks(parent, now)
    if not parts:
        return ""
    text = "\x00".join("\x01".join(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
