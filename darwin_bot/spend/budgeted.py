"""``BudgetedLLM``: any LLM behind the spend caps, priced, recorded in the ledger.

It implements the same ``complete(messages) -> Completion`` protocol as
``darwin_bot.llm.base``, so the mutation pipeline needs no change. Before each
call it asks the caps whether the call may be made; when not, it raises
:class:`~darwin_bot.errors.SpendCapReached` (an ``LLMError``: the pipeline
stops that offspring and records why), and :class:`SpendingFactory` says so
once on stderr and in the ledger. The engine finishes the generation with the
offspring already made, and ``darwin run`` stops after it (the seam is
``SpendingFactory.stop_reason``). Raising the cap and running again continues:
the ledger on disk holds what was spent.

:class:`SpendingFactory` is the engine's ``llm_factory``: one call per
offspring, which picks the model for that offspring (UCB1, see ``bandit``).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from darwin_bot.errors import ConfigError, LLMError, SpendCapReached
from darwin_bot.llm import (
    CHARS_PER_TOKEN,
    LLM,
    ChunkOffer,
    ChunkPlan,
    Completion,
    Guided,
    Message,
    Window,
    window_of,
)
from darwin_bot.spend.bandit import UCB1, ArmStats, Choice, arm_stats
from darwin_bot.spend.ledger import Call, CapHit, Caps, CapScope, Ledger, Stop, Totals
from darwin_bot.spend.prices import PriceTable
from darwin_bot.store import MemoryStore, utc_now

if TYPE_CHECKING:
    from darwin_bot.llm import Guidance


@dataclass
class SpendState:
    """What every BudgetedLLM of one process shares: ledger, caps, prices, the stop."""

    ledger: Ledger
    caps: Caps
    prices: PriceTable
    max_tokens: int = 4096
    stopped: str | None = None
    stopped_total: bool = False
    say: Callable[[str], None] = field(
        default=lambda msg: print(f"darwin: {msg}", file=sys.stderr, flush=True)
    )

    def estimate(self, model: str, messages: list[Message]) -> float:
        """USD the next call of ``model`` will likely cost (0 when nothing is known)."""
        known = [
            c.cost_usd
            for c in self.ledger.calls()
            if model in (c.arm, c.model) and c.cost_usd is not None
        ]
        if known:
            return sum(known) / len(known)
        price = self.prices.price(model)
        if price is None:
            return 0.0
        prompt = int(sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN)
        return price.cost(prompt, self.max_tokens)

    def refuse(self, generation: int, hit: CapHit, *, started: bool = True) -> None:
        """Say once that the bot stops mutating, and record it in the ledger."""
        self.stopped_total = self.stopped_total or hit.scope is CapScope.TOTAL
        if self.stopped == hit.reason:
            return
        self.stopped = hit.reason
        self.ledger.stop(Stop(generation, hit.reason, utc_now()))
        then = (
            f"finishing generation {generation} with the offspring made so far"
            if started
            else f"generation {generation} not started"
        )
        self.say(f"{hit.reason}. The bot stops mutating: {then}.")


class BudgetedLLM:
    """One model behind the caps; ``generation`` is the one the calls are billed to."""

    def __init__(self, inner: LLM, model: str, state: SpendState, generation: int) -> None:
        self.inner = inner
        self.model = model
        self.state = state
        self.generation = generation
        self.name = getattr(inner, "name", model)

    def guide(self, guidance: Guidance | None) -> None:
        """Pass the memory's typed evidence on to a backend that reads it (the offline mutator).

        Without this the wrapper would hide the inner backend's ``guide`` from the
        pipeline, and the offline mutator would never see the memory.
        """
        if isinstance(self.inner, Guided):
            self.inner.guide(guidance)

    def prefer(self, offers: Sequence[ChunkOffer], picked: Sequence[str]) -> ChunkPlan | None:
        """The inner backend's chunk plan (None, the random pick, when it makes none)."""
        if isinstance(self.inner, Guided):
            return self.inner.prefer(offers, picked)
        return None

    def window(self) -> Window | None:
        """The inner backend's context window (None: it has none), for fitting prompts."""
        return window_of(self.inner)

    def complete(self, messages: list[Message]) -> Completion:
        st = self.state
        hit = st.caps.would_pass(st.ledger, self.generation, st.estimate(self.model, messages))
        if hit is not None:
            st.refuse(self.generation, hit)
            raise SpendCapReached(hit.reason)
        reply = self.inner.complete(messages)
        return self.bill(reply)

    def bill(self, reply: Completion, kind: str = "") -> Completion:
        """Record ``reply`` in the ledger, priced; the reply with its cost."""
        cost = self._cost(reply)
        self.state.ledger.record(
            Call(
                self.generation,
                reply.model or self.model,
                reply.prompt_tokens,
                reply.completion_tokens,
                cost,
                utc_now(),
                self.model,
                kind,
            )
        )
        return dataclasses.replace(reply, cost_usd=cost or 0.0)

    def _cost(self, reply: Completion) -> float | None:
        """The backend's own figure when it gives one, else the price table's, else unknown."""
        if reply.cost_usd > 0:
            return reply.cost_usd
        if not (reply.prompt_tokens or reply.completion_tokens) and reply.usage_reported:
            return 0.0  # nothing billed: the offline mutator, a scripted reply without a price
        price = self.state.prices.price(reply.model, self.model)
        if price is None:
            return None
        return price.cost(reply.prompt_tokens, reply.completion_tokens)


@dataclass(frozen=True)
class Arm:
    """One configured model and how to build its client (built on first use)."""

    model: str
    make: Callable[[int], LLM]


class SpendingFactory:
    """The engine's ``llm_factory``: seed -> a BudgetedLLM on the model the bandit picks."""

    def __init__(
        self,
        arms: list[Arm],
        state: SpendState,
        memory_root: Path,
        generation: Callable[[], int] = lambda: 0,
    ) -> None:
        self.arms = {a.model: a for a in arms}
        self.state = state
        self.memory = MemoryStore(memory_root)
        self.generation = generation
        self.bandit = UCB1(tuple(self.arms))
        self.choices: list[Choice] = []
        self._stats_of: int | None = None
        self._stats: dict[str, ArmStats] = {}

    def stats(self) -> dict[str, ArmStats]:
        """Per-model stats over the whole memory and ledger (for the dashboard)."""
        return arm_stats(tuple(self.arms), self.memory.mutations(), self.state.ledger.calls())

    def __call__(self, seed: int) -> BudgetedLLM:
        g = self.generation()
        if len(self.arms) == 1:
            arm = next(iter(self.arms.values()))
        else:
            if self._stats_of != g:  # read the memory once per generation
                self._stats, self._stats_of = self.stats(), g
                self.bandit.pending.clear()
            choice = self.bandit.choose(self._stats)
            self.choices.append(choice)
            arm = self.arms[choice.model]
        return BudgetedLLM(arm.make(seed), arm.model, self.state, g)

    def totals(self, generation: int) -> Totals:
        """Every call the ledger billed to ``generation`` (for the generation's summary)."""
        return self.state.ledger.totals(generation)

    def preflight(self) -> None:
        """One tiny call per configured endpoint, before a generation spends anything.

        A refused key, a model the server does not serve or a server that does
        not answer ends the run here (``ConfigError``, exit 2), before any
        offspring is made. Backends with nothing to check (offline, scripted)
        are skipped. Each call is billed like any other.
        """
        g = self.generation()
        for arm in self.arms.values():
            inner = arm.make(0)
            check = getattr(inner, "preflight", None)
            if check is None:
                continue
            where = getattr(inner, "where", "")
            try:
                reply = check()
            except LLMError as exc:
                raise ConfigError(
                    f"the LLM preflight call to {arm.model} ({where}) failed, nothing was "
                    f"spent on offspring: {exc}"
                ) from exc
            BudgetedLLM(inner, arm.model, self.state, g).bill(reply, kind="preflight")
            w = window_of(inner)
            room = f"; context window {w.context_tokens} tokens ({w.source})" if w else ""
            self.state.say(f"LLM {arm.model} at {where} answered the preflight call{room}")

    def stop_reason(self) -> str | None:
        """Why ``darwin run`` must not start another generation (the total cap), or None.

        Asked before each generation: when even the cheapest model's next call
        would pass ``llm.max_usd`` on what the ledger (on disk, so earlier
        runs count) holds, no generation starts.
        """
        if not self.state.stopped_total:
            g = self.generation()
            cheapest = min(self.state.estimate(m, []) for m in self.arms)
            hit = self.state.caps.would_pass(self.state.ledger, g, cheapest)
            if hit is not None and hit.scope is CapScope.TOTAL:
                self.state.refuse(g, hit, started=False)
        return self.state.stopped if self.state.stopped_total else None


def arm_config(llm_cfg: Any, spec: dict[str, str]) -> Any:
    """The ``LLMConfig`` of one ``llm.models`` entry (its model and endpoint over the rest)."""
    return dataclasses.replace(
        llm_cfg, model=spec["model"], base_url=spec.get("base_url", llm_cfg.base_url)
    )
