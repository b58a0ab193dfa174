"""A mutation's commit message: subject, body and the ``Darwin-*`` trailers, both ways.

The trailers are the contract between the commits the bot writes and the
lineage it reads back (``GitRepo.lineage``): every field of a
:class:`~darwin_bot.core.agent.Mutation` but the sha is in them.
"""

from __future__ import annotations

import re

from darwin_bot.core import TRAILER_KEYS, Mutation

_TRAILER_LINE = re.compile(r"^(Darwin-[A-Za-z-]+):\s*(.*)$")


def format_message(summary: str, body: str, trailers: dict[str, str]) -> str:
    """A commit message: one-line subject, optional body, then the Darwin trailers."""
    subject = " ".join(summary.split())[:72] or "darwin: mutation"
    parts = [subject]
    if body.strip():
        parts.append(body.strip())
    parts.append("\n".join(f"{k}: {v}" for k, v in trailers.items()))
    return "\n\n".join(parts) + "\n"


def parse_trailers(message: str) -> dict[str, str]:
    """The ``Darwin-*`` trailers of a commit message (the last block wins)."""
    found: dict[str, str] = {}
    for line in message.splitlines():
        m = _TRAILER_LINE.match(line.strip())
        if m and m.group(1) in TRAILER_KEYS:
            found[m.group(1)] = m.group(2).strip()
    return found


def mutation_from_commit(sha: str, message: str) -> Mutation | None:
    """Rebuild a :class:`Mutation` from a commit; None for commits without trailers."""
    t = parse_trailers(message)
    if "Darwin-Agent" not in t or "Darwin-Kind" not in t:
        return None
    parents = tuple(p for p in t.get("Darwin-Parents", "-").split(",") if p and p != "-")
    model = t.get("Darwin-Model", "-")

    def _int(key: str) -> int:
        try:
            return int(t.get(key, "0"))
        except ValueError:
            return 0

    return Mutation(
        sha=sha,
        agent=t["Darwin-Agent"],
        generation=_int("Darwin-Generation"),
        parents=parents,
        kind=t["Darwin-Kind"],  # type: ignore[arg-type]
        summary=message.splitlines()[0] if message else "",
        model="" if model == "-" else model,
        prompt_tokens=_int("Darwin-Prompt-Tokens"),
        completion_tokens=_int("Darwin-Completion-Tokens"),
    )
