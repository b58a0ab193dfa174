"""What the recorded generations say about agents: their rows, metrics, fitness and children.

Read from the generation summaries once, until the next summary is written.
"""

from __future__ import annotations

from darwin_bot.core import Metrics, Row
from darwin_bot.errors import StateError
from darwin_bot.store.memory import MemoryStore
from darwin_bot.store.records import GenerationSummary


class History:
    """The typed generation summaries of one memory, oldest first."""

    def __init__(self, memory: MemoryStore) -> None:
        self.memory = memory
        self._gens: list[GenerationSummary] | None = None

    def summaries(self) -> list[GenerationSummary]:
        if self._gens is None:
            self._gens = [GenerationSummary.from_json(g) for g in self.memory.generations()]
        return self._gens

    def write(self, summary: GenerationSummary) -> None:
        self.memory.write_generation(summary.to_json())
        self._gens = None

    def summary(self, g: int) -> GenerationSummary | None:
        return next((s for s in self.summaries() if s.generation == g), None)

    def previous(self, g: int) -> GenerationSummary:
        """The summary generation ``g`` builds on; a one-line error when it is missing."""
        prev = self.summary(g - 1)
        if prev is None:
            raise StateError(f"generation {g - 1} has no summary; run it (or 'darwin run') first")
        return prev

    def rows(self, agent: str) -> list[Row]:
        """Every recorded row of ``agent``, oldest generation first."""
        return [r for s in self.summaries() for r in s.ranking if r.agent == agent]

    def metrics_of(self, agent: str) -> Metrics | None:
        found = [r for r in self.rows(agent) if r.ok and r.metrics]
        return found[-1].metrics if found else None

    def fitness_of(self, agent: str) -> float | None:
        found = [r for r in self.rows(agent) if r.ok]
        return float(found[-1].fitness) if found else None

    def children(self, agent: str) -> int:
        return sum(
            1
            for s in self.summaries()
            for r in s.ranking
            if r.generation == s.generation and agent in r.parents
        )
