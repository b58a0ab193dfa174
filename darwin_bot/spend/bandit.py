"""Which of ``llm.models`` writes the next mutation: UCB1 on fitness gain per dollar.

Why UCB1 (Auer et al. 2002) and not Thompson sampling or epsilon-greedy: it is
deterministic given the record, so a rerun after a crash picks the same model
for the same offspring (every step of the bot must converge on a rerun), and
its exploration bonus shrinks on its own as a model is tried, with no schedule
to tune. ShinkaEvolve picks its LLMs with a UCB-style bandit for the same
reasons.

Reward of one offspring: its fitness gain over its parent, clipped at 0 (a
failed or worse offspring earns nothing), once selection has scored it. An
arm's value is its gain per dollar (sum of gains / sum of its known spend);
when any arm's price is unknown, gain per dollar cannot be compared and every
arm is valued by gain per offspring instead (said in ``Choice.why``). Values
are divided by the best arm's, so they lie in [0, 1] as UCB1 assumes. An arm
never tried is tried first. Offspring picked but not yet scored count as
pulls with no gain, so the offspring of one generation, all made before any is
scored, spread over the arms instead of all taking the same one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

EXPLORATION = 1.0  # UCB1's c: 1 is the textbook bound for rewards in [0, 1]


@dataclass
class ArmStats:
    """What one model did: offspring written, scored, improved; gain; spend."""

    model: str
    calls: int = 0
    offspring: int = 0
    scored: int = 0
    improved: int = 0
    gain: float = 0.0
    usd: float = 0.0
    unknown_cost_calls: int = 0
    pending: int = 0  # picked in this process, not yet in the memory

    @property
    def pulls(self) -> int:
        return self.offspring + self.pending

    @property
    def success_rate(self) -> float | None:
        return self.improved / self.scored if self.scored else None

    @property
    def mean_gain(self) -> float | None:
        return self.gain / self.scored if self.scored else None


@dataclass(frozen=True)
class Choice:
    model: str
    why: str


def arm_stats(
    models: Sequence[str],
    mutations: Iterable[dict[str, Any]],
    calls: Iterable[Any],
) -> dict[str, ArmStats]:
    """Per-model stats from memory mutation records and ledger calls.

    ``mutations``: memory records (``agent``, ``generation``, ``model``,
    ``fitness_delta``); ``calls``: ledger ``Call``s (``model``, ``cost_usd``).
    Models served under a longer name (``gpt-4o-mini-2024-07-18``) count for
    the configured name they start with.
    """
    stats = {m: ArmStats(m) for m in models}

    def arm_of(name: str) -> ArmStats | None:
        if name in stats:
            return stats[name]
        hits = [m for m in stats if name.startswith(m)]
        return stats[max(hits, key=len)] if hits else None

    offspring: dict[tuple[str, int], tuple[str, float | None]] = {}
    for rec in mutations:
        if rec.get("model"):
            offspring[(rec["agent"], rec["generation"])] = (rec["model"], rec.get("fitness_delta"))
    for model, delta in offspring.values():
        arm = arm_of(model)
        if arm is None:
            continue
        arm.offspring += 1
        if delta is not None:
            arm.scored += 1
            arm.improved += delta > 0
            arm.gain += max(0.0, float(delta))
    for call in calls:
        arm = arm_of(call.model)
        if arm is None:
            continue
        arm.calls += 1
        if call.cost_usd is None:
            arm.unknown_cost_calls += 1
        else:
            arm.usd += call.cost_usd
    return stats


@dataclass
class UCB1:
    """UCB1 over ``models`` (in config order, which breaks ties)."""

    models: tuple[str, ...]
    exploration: float = EXPLORATION
    pending: dict[str, int] = field(default_factory=dict)

    def choose(self, stats: dict[str, ArmStats]) -> Choice:
        for m in self.models:
            stats[m].pending = self.pending.get(m, 0)
        untried = [m for m in self.models if stats[m].pulls == 0]
        if untried:
            return self._take(untried[0], "not tried yet")
        per_dollar = all(stats[m].unknown_cost_calls == 0 and stats[m].usd > 0 for m in self.models)
        raw = {}
        for m in self.models:
            s = stats[m]
            raw[m] = s.gain / s.usd if per_dollar else s.gain / s.pulls
        best = max(raw.values())
        total = sum(stats[m].pulls for m in self.models)
        scores = {}
        for m in self.models:
            value = raw[m] / best if best > 0 else 0.0
            bonus = self.exploration * math.sqrt(2.0 * math.log(total) / stats[m].pulls)
            scores[m] = value + bonus
        pick = max(self.models, key=lambda m: scores[m])  # max keeps the first of equals
        unit = "gain per dollar" if per_dollar else "gain per offspring (a price is unknown)"
        return self._take(pick, f"UCB1 on {unit}: score {scores[pick]:.3f}")

    def _take(self, model: str, why: str) -> Choice:
        self.pending[model] = self.pending.get(model, 0) + 1
        return Choice(model, why)
