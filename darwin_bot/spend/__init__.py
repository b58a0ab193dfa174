"""LLM spend: prices, the persisted ledger and its caps, and the model bandit.

``build_factory`` is the one seam: ``darwin_bot.cli.app`` wraps its LLM factory
with it, and every mutation's LLM is then a :class:`BudgetedLLM`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from darwin_bot import lazy_surface
from darwin_bot.config import Config
from darwin_bot.spend.bandit import ArmStats, arm_stats
from darwin_bot.spend.budgeted import Arm, SpendingFactory, SpendState, arm_config
from darwin_bot.spend.ledger import Caps, Ledger
from darwin_bot.spend.prices import PriceTable, spend_text

if TYPE_CHECKING:
    from darwin_bot.spend.bandit import UCB1
    from darwin_bot.spend.budgeted import BudgetedLLM
    from darwin_bot.spend.ledger import Call, CapHit, CapScope, Stop, Totals
    from darwin_bot.spend.prices import Price, format_usd, shipped_date


LEDGER_DIR = "spend"


def _openai_arm(cfg: Config, spec: dict[str, str]) -> Arm:
    from darwin_bot.llm import OpenAIBackend

    sub = arm_config(cfg.llm, spec)
    env = spec.get("api_key_env")
    client: list[Any] = []  # one client per model, built on first use

    def make(seed: int) -> Any:
        if not client:
            client.append(OpenAIBackend(sub, api_key=os.environ.get(env, "") if env else None))
        return client[0]

    return Arm(spec["model"], make)


def build_factory(
    cfg: Config,
    memory_root: Path,
    base: Callable[[int], Any],
    *,
    say: Callable[[str], None] | None = None,
) -> SpendingFactory:
    """The engine's LLM factory with the caps, prices and (with ``llm.models``) the bandit.

    With ``llm.models`` and the ``openai`` backend, each entry is its own
    endpoint; with any other backend (scripted, heuristic) the entries share
    ``base``'s client, which is what the tests and the offline demo use.
    """
    state = SpendState(
        ledger=Ledger(memory_root / LEDGER_DIR),
        caps=Caps(cfg.llm.max_usd, cfg.llm.max_usd_per_generation),
        prices=PriceTable.load(cfg.llm.prices),
        max_tokens=cfg.llm.max_tokens,
    )
    if say is not None:
        state.say = say
    if cfg.llm.models and cfg.llm.backend in ("openai", "auto"):
        arms = [_openai_arm(cfg, spec) for spec in cfg.llm.models]
    elif cfg.llm.models:
        arms = [Arm(spec["model"], base) for spec in cfg.llm.models]
    else:
        arms = [Arm(cfg.llm.model, base)]
    return SpendingFactory(arms, state, memory_root)


def model_table(stats: dict[str, ArmStats]) -> str:
    """Markdown: each model's calls, spend, success rate and mean gain (for the dashboard)."""
    lines = [
        "| model | calls | spend | offspring | success rate | mean gain |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in stats.values():
        spend = spend_text(s.usd, s.calls, s.unknown_cost_calls)
        rate = "—" if s.success_rate is None else f"{100 * s.success_rate:.0f}%"
        gain = "—" if s.mean_gain is None else f"{s.mean_gain:+.4f}"
        lines.append(f"| `{s.model}` | {s.calls} | {spend} | {s.offspring} | {rate} | {gain} |")
    return "\n".join(lines)


def spend_markdown(ledger: Ledger, caps: Caps | None = None) -> str:
    """One paragraph for the job summary and dashboard: spent, caps, and any stop."""
    t = ledger.totals()
    text = f"LLM spend: {spend_text(t.usd, t.calls, t.unknown_calls)} over {t.calls} calls"
    if caps is not None and caps.total is not None:
        text += f" (cap llm.max_usd = ${caps.total:.2f})"
    stops, calls = ledger.stops(), ledger.calls()
    last_call = max((c.timestamp for c in calls), default="")
    if stops and stops[-1].timestamp >= last_call:  # a later call means a higher cap continued
        text += f".\n\n**Stopped mutating:** {stops[-1].reason} (generation {stops[-1].generation})"
    return text + "."


def spend_report(cfg: Config, memory: Any) -> str:
    """Markdown for the dashboard and job summary: total spend, any stop, and the per-model table.

    ``memory`` is a ``MemoryStore``. The models are the configured ones and any
    other the ledger has billed (a server may answer under a longer name).
    """
    ledger = Ledger(Path(memory.root) / LEDGER_DIR)
    caps = Caps(cfg.llm.max_usd, cfg.llm.max_usd_per_generation)
    configured = [s["model"] for s in cfg.llm.models] or [cfg.llm.model]
    calls = ledger.calls()
    # The rows name the models that answered (a configured model the calls went to under
    # another name, the offline mutator's "heuristic", must not show as having made none).
    billed = [c.model or c.arm for c in calls]
    models = list(dict.fromkeys([*configured, *billed]))
    stats = arm_stats(models, memory.mutations(), calls)
    shown = {m: s for m, s in stats.items() if s.calls or s.offspring}
    shown = shown or {m: s for m, s in stats.items() if m in configured}  # nothing called yet
    return spend_markdown(ledger, caps) + "\n\n" + model_table(shown)


# The package's surface: code outside the package imports these names from here, never
# from a module of the package (tests/test_house.py holds the rule and the listing in
# tests/surface.txt). Each name is imported from its module on first use (PEP 562), so
# importing one module of the package (a sandbox worker) does not import the rest.
__all__ = [
    "Arm",
    "ArmStats",
    "BudgetedLLM",
    "Call",
    "CapHit",
    "CapScope",
    "Caps",
    "LEDGER_DIR",
    "Ledger",
    "Price",
    "PriceTable",
    "SpendState",
    "SpendingFactory",
    "Stop",
    "Totals",
    "UCB1",
    "arm_stats",
    "build_factory",
    "format_usd",
    "model_table",
    "shipped_date",
    "spend_markdown",
    "spend_report",
    "spend_text",
]
_HOMES = {
    "BudgetedLLM": ".budgeted",
    "Call": ".ledger",
    "CapHit": ".ledger",
    "CapScope": ".ledger",
    "Price": ".prices",
    "Stop": ".ledger",
    "Totals": ".ledger",
    "UCB1": ".bandit",
    "format_usd": ".prices",
    "shipped_date": ".prices",
}


__getattr__ = lazy_surface(__name__, _HOMES, globals())
