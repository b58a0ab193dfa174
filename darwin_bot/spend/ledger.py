"""The spend ledger: every LLM call's cost, persisted, so a rerun continues the same count.

Layout: ``<memory>/spend/<session>.json``, one file per process that calls the
LLM (so parallel CI jobs never write the same file, like every memory record),
rewritten atomically after each call. The totals are the sum over all files,
so a run killed part-way, or stopped at a cap, and started again counts what
was already spent. The files live in the memory folder, which the bot commits.

The caps (``llm.max_usd`` for the whole evolution in this repository,
``llm.max_usd_per_generation`` for one generation) are checked *before* a
call against an estimate of that call (:meth:`Ledger.would_pass`).
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from darwin_bot.store import read_json, write_json


@dataclass(frozen=True)
class Call:
    """One LLM call as billed: ``cost_usd`` None when the model's price is unknown."""

    generation: int
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    timestamp: str = ""
    arm: str = ""  # the configured model name the call was made for (llm.model / llm.models)
    kind: str = ""  # "preflight" for the run's check that the server answers; "" a mutation's


@dataclass(frozen=True)
class Stop:
    """The bot stopped mutating because the next call would pass a cap."""

    generation: int
    reason: str
    timestamp: str = ""


@dataclass
class Totals:
    """Known spend, tokens, and the number of calls whose cost is unknown."""

    usd: float = 0.0
    calls: int = 0
    unknown_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, call: Call) -> None:
        self.calls += 1
        self.prompt_tokens += call.prompt_tokens
        self.completion_tokens += call.completion_tokens
        if call.cost_usd is None:
            self.unknown_calls += 1
        else:
            self.usd += call.cost_usd


def _session_name(ns: int) -> str:
    """Sorts in time order (to the nanosecond), unique across processes."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ns // 1_000_000_000))
    return f"{stamp}.{ns % 1_000_000_000:09d}Z-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class Ledger:
    """Append-only record of calls and stops under ``folder`` (``<memory>/spend``)."""

    folder: Path
    session: str = field(default_factory=lambda: _session_name(time.time_ns()))
    _calls: list[Call] = field(default_factory=list)
    _stops: list[Stop] = field(default_factory=list)
    _earlier: list[Call] | None = None
    _earlier_stops: list[Stop] | None = None

    @property
    def path(self) -> Path:
        return self.folder / f"{self.session}.json"

    def _load_earlier(self) -> None:
        """Read the other sessions' files once (they do not change while this one runs)."""
        if self._earlier is not None:
            return
        self._earlier, self._earlier_stops = [], []
        if not self.folder.is_dir():
            return
        for p in sorted(self.folder.glob("*.json")):
            if p == self.path:
                continue
            data = read_json(p)
            self._earlier += [Call(**c) for c in data.get("calls", [])]
            self._earlier_stops += [Stop(**s) for s in data.get("stops", [])]

    def calls(self) -> list[Call]:
        """Every call recorded in this repository, this session's last."""
        self._load_earlier()
        return [*(self._earlier or []), *self._calls]

    def stops(self) -> list[Stop]:
        self._load_earlier()
        return [*(self._earlier_stops or []), *self._stops]

    def totals(self, generation: int | None = None) -> Totals:
        t = Totals()
        for c in self.calls():
            if generation is None or c.generation == generation:
                t.add(c)
        return t

    def record(self, call: Call) -> None:
        self._calls.append(call)
        self._save()

    def stop(self, stop: Stop) -> None:
        self._stops.append(stop)
        self._save()

    def _save(self) -> None:
        write_json(
            self.path,
            {
                "session": self.session,
                "calls": [asdict(c) for c in self._calls],
                "stops": [asdict(s) for s in self._stops],
            },
        )


class CapScope(StrEnum):
    """Which cap a call would pass: the whole evolution's or one generation's."""

    TOTAL = "total"
    GENERATION = "generation"


@dataclass(frozen=True)
class CapHit:
    scope: CapScope
    reason: str


@dataclass(frozen=True)
class Caps:
    """``llm.max_usd`` and ``llm.max_usd_per_generation``; None: no cap."""

    total: float | None = None
    per_generation: float | None = None

    def would_pass(self, ledger: Ledger, generation: int, estimate: float) -> CapHit | None:
        """The cap the next call (estimated at ``estimate`` USD) would pass, or None.

        A cap already reached stops the next call even when its estimate is 0
        (a model whose cost is known only after the call).
        """
        if self.total is not None:
            spent = ledger.totals().usd
            if spent >= self.total or spent + estimate > self.total:
                return CapHit(
                    CapScope.TOTAL,
                    f"LLM spend cap reached: ${spent:.4f} spent, the next call (~${estimate:.4f}) "
                    f"would pass llm.max_usd = ${self.total:.4f}; raise it to continue",
                )
        if self.per_generation is not None:
            spent = ledger.totals(generation).usd
            if spent >= self.per_generation or spent + estimate > self.per_generation:
                return CapHit(
                    CapScope.GENERATION,
                    f"LLM spend cap reached for generation {generation}: ${spent:.4f} spent, the "
                    f"next call (~${estimate:.4f}) would pass llm.max_usd_per_generation = "
                    f"${self.per_generation:.4f}; raise it to continue",
                )
        return None
