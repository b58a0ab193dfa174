"""Search schedules: how one generation spends its training runs across budgets (pure).

``flat``
    Every candidate is trained at the search budget (``budget.iters`` or
    ``budget.seconds``); the ranking and the gate use those runs.
``halving`` (successive halving)
    Rung 0 trains every candidate at ``rungs[0]`` times the search budget; the
    best ``keep`` fraction of it (at least one) advances to rung 1, trained at
    ``rungs[1]`` times the budget, and so on. A candidate stands by its result
    at the highest rung it reached: candidates that reached a higher rung rank
    ahead of those that stopped lower, and within a rung by their result there.
    Only results of the same rung are ever compared with each other (a longer
    run has a lower loss whatever the program), and the seed runs at every
    rung, so each rung's fitness is measured against the seed at that budget.

Everything here is a function of the results known so far, so a run killed
between two rungs recomputes the same entrants on its rerun and trains only
what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from darwin_bot.core.results import Budget

__all__ = [
    "Schedule",
    "ScheduleKind",
    "Scores",
    "advance",
    "entrants",
    "standing",
    "tiers",
]


class ScheduleKind(StrEnum):
    FLAT = "flat"
    HALVING = "halving"


@dataclass(frozen=True)
class Schedule:
    """A search schedule: its kind, the rungs' budget multipliers and the fraction that advances."""

    kind: ScheduleKind = ScheduleKind.FLAT
    rungs: tuple[int, ...] = (1,)
    keep: float = 0.5

    def __post_init__(self) -> None:
        if not self.rungs or any(b <= a for a, b in zip(self.rungs, self.rungs[1:], strict=False)):
            raise ValueError("rungs must be increasing budget multipliers, e.g. (1, 2, 5)")
        if self.rungs[0] < 1 or not 0.0 < self.keep < 1.0:
            raise ValueError("rungs must start at 1 or more, and keep lie strictly between 0 and 1")

    @property
    def top(self) -> int:
        """The index of the last rung (0 for a flat schedule)."""
        return 0 if self.kind is ScheduleKind.FLAT else len(self.rungs) - 1

    def factor(self, rung: int) -> int:
        return 1 if self.kind is ScheduleKind.FLAT else self.rungs[rung]

    def budget(self, base: Budget, rung: int) -> Budget:
        """The budget of ``rung``: the search budget ``base`` times the rung's multiplier."""
        f = self.factor(rung)
        if f == 1:
            return base
        if base.iters is not None:
            return Budget(iters=base.iters * f)
        return Budget(seconds=base.seconds * f if base.seconds is not None else None)

    def advancing(self, n: int) -> int:
        """How many of ``n`` entrants advance to the next rung (at least one, when there are any)."""
        return min(n, max(1, math.ceil(self.keep * n))) if n else 0

    def cost(self, n: int) -> float:
        """Training runs of ``n`` candidates, in search-budget units, when every entrant works."""
        total, entering = 0.0, n
        for rung in range(self.top + 1):
            total += entering * self.factor(rung)
            entering = self.advancing(entering)
        return total


Scores = Mapping[str, float | None]  # agent -> fitness at one rung (higher is better; None: failed)


def advance(scores: Scores, n: int) -> list[str]:
    """The best ``n`` agents of one rung by fitness (ties by name); a failed one never advances."""
    working = [(-s, a) for a, s in scores.items() if s is not None and math.isfinite(s)]
    return [a for _, a in sorted(working)[:n]]


def entrants(
    schedule: Schedule, results: Sequence[Scores], candidates: Sequence[str]
) -> list[list[str]]:
    """Who trains at each rung, given ``results[r]`` (the fitness known at rung ``r``).

    Rung 0 is every candidate. A rung's entrants are only known once every
    entrant of the rung below has a result there (a failure counts: it is a
    result that does not advance); the list stops at the first rung whose
    entrants are not known yet.
    """
    out = [list(candidates)]
    for rung in range(schedule.top):
        below = results[rung] if rung < len(results) else {}
        if any(a not in below for a in out[-1]):
            break
        scores = {a: below[a] for a in out[-1]}
        out.append(advance(scores, schedule.advancing(len(out[-1]))))
    return out


def tiers(
    schedule: Schedule, results: Sequence[Scores], candidates: Sequence[str]
) -> dict[str, int]:
    """The highest rung at which each candidate has a result (0 when it has none yet)."""
    tier = {a: 0 for a in candidates}
    for rung, names in enumerate(entrants(schedule, results, candidates)):
        done = results[rung] if rung < len(results) else {}
        for a in names:
            if a in done:
                tier[a] = rung
    return tier


def standing(schedule: Schedule, results: Sequence[Scores], candidates: Sequence[str]) -> list[str]:
    """Candidates best first: higher rung reached first, then fitness at that rung, then name.

    A candidate is compared only with those that stopped at the same rung; one
    whose run at its highest rung failed stands after every working one.
    """
    tier = tiers(schedule, results, candidates)

    def key(a: str) -> tuple[bool, int, float, str]:
        rung = tier[a]
        s = results[rung].get(a) if rung < len(results) else None
        failed = s is None or not math.isfinite(s)
        return (failed, -rung, 0.0 if failed else -s, a)  # type: ignore[operator]

    return sorted(candidates, key=key)
