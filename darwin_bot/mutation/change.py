"""The change an offspring makes to its parent, with formatting normalised away.

Two offspring whose signatures are equal made the same edit to the same code
(comments, blank lines and layout do not count), so training the second one
would measure nothing new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache

from darwin_bot.llm import normalised
from darwin_bot.mutation.chunks import chunk_source


@lru_cache(maxsize=4096)
def _normalised(text: str) -> str:
    return normalised(text)


# Why cached (bot time): a generation's offspring share a few parents, and an
# offspring changes a few chunks, so the same file and chunk texts are chunked, parsed and
# unparsed once per offspring otherwise. Pure functions of the text: the cache changes no result.
@lru_cache(maxsize=256)
def _normalised_chunks(path: str, source: str) -> tuple[tuple[str, str], ...]:
    """(chunk name, normalised text) of ``source``, in order."""
    return tuple((c.name, _normalised(c.text)) for c in chunk_source(path, source))


def changed_chunks(
    parent: Mapping[str, str], now: Mapping[str, str]
) -> list[tuple[str, str, str, str]]:
    """(file, chunk, normalised before, normalised after) of every chunk that really changed."""
    out = []
    for path in sorted(now):
        before = dict(_normalised_chunks(path, parent.get(path, "")))
        for name, after in _normalised_chunks(path, now[path]):
            if before.get(name) != after:
                out.append((path, name, before.get(name, ""), after))
    return out


def signature(parent: Mapping[str, str], now: Mapping[str, str]) -> str:
    """A short hash of :func:`changed_chunks` ('' when nothing changed but formatting)."""
    parts = changed_chunks(parent, now)
    if not parts:
        return ""
    text = "\x00".join("\x01".join(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
