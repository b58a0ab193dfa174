"""What a memory commit carries, said in its message.

The subject names the generations whose summaries the commit records (the
unit a reader looks for in ``git log``); the body counts the files by kind.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

_SUMMARY = re.compile(r"(?:^|/)g(\d{3,})/summary\.json$")
_KINDS = (
    (re.compile(r"/summary\.json$"), "generation summary"),
    (re.compile(r"/mutations/[^/]+\.json$"), "mutation record"),
    (re.compile(r"/offspring/[^/]+\.json$"), "offspring record"),
    (re.compile(r"/plan\.json$"), "offspring plan"),
    (re.compile(r"/selection\.json$"), "selection journal"),
    (re.compile(r"/evals/"), "evaluation result"),
    (re.compile(r"/requests/[^/]+\.json$"), "request record"),
    (re.compile(r"(?:^|/)run\.json$"), "run target"),
)


def summaries_in(paths: Sequence[str]) -> list[int]:
    """The generations whose summary file is among ``paths``, ascending."""
    return sorted({int(m.group(1)) for p in paths if (m := _SUMMARY.search(p))})


def subject(paths: Sequence[str]) -> str | None:
    """'darwin: record generation 2' (or the baseline); None when no summary is among them."""
    gens = summaries_in(paths)
    if not gens:
        return None
    named = ["the baseline (generation 0)" if g == 0 else f"generation {g}" for g in gens]
    return "darwin: record " + (" and ".join(named) if len(named) <= 2 else ", ".join(named))


def body(paths: Sequence[str]) -> str:
    """One line per kind of file: '3 mutation records', in a fixed order."""
    counts: Counter[str] = Counter()
    for p in paths:
        kind = next((name for pattern, name in _KINDS if pattern.search(p)), "other file")
        counts[kind] += 1
    order = [name for _, name in _KINDS] + ["other file"]
    return "\n".join(
        f"- {counts[k]} {k}{'s' if counts[k] != 1 else ''}" for k in order if counts[k]
    )
