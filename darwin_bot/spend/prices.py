"""What an LLM call costs: the shipped price table, ``llm.prices`` over it, unknown as unknown.

The table ships as data (``prices.json``: USD per 1M tokens, the date it was
taken and a source per entry). ``llm.prices`` in ``darwin.toml`` (USD per 1k
tokens as ``[prompt, completion]``, the unit the key always had) overrides it.
A model in neither has an *unknown* price: :meth:`PriceTable.cost` returns
``None`` and every display says "unknown", never "$0".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Price:
    """USD per 1M prompt tokens and per 1M completion tokens, and where the numbers come from."""

    input_per_m: float
    output_per_m: float
    source: str

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_m + completion_tokens * self.output_per_m) / 1e6


@cache
def _shipped() -> dict[str, Any]:
    text = (resources.files("darwin_bot.spend") / "prices.json").read_text(encoding="utf-8")
    return json.loads(text)


def shipped_date() -> str:
    """The day the shipped table was taken (``YYYY-MM-DD``)."""
    return str(_shipped()["taken"])


@dataclass(frozen=True)
class PriceTable:
    """Model name -> :class:`Price`; look-ups also match dated names (``gpt-4o-mini-2024-07-18``)."""

    prices: dict[str, Price]
    taken: str

    @classmethod
    def load(cls, overrides: dict[str, tuple[float, float]] | None = None) -> PriceTable:
        """The shipped table with ``llm.prices`` (USD per 1k tokens) on top."""
        data = _shipped()
        prices = {
            name: Price(
                float(p["input"]), float(p["output"]), f"{p['source']} (taken {data['taken']})"
            )
            for name, p in data["models"].items()
        }
        for name, (per_k_in, per_k_out) in (overrides or {}).items():
            prices[name] = Price(per_k_in * 1000.0, per_k_out * 1000.0, "llm.prices in darwin.toml")
        return cls(prices, str(data["taken"]))

    def price(self, *models: str) -> Price | None:
        """The price of the first of ``models`` known: an exact name, else the longest prefix."""
        for m in models:
            if m in self.prices:
                return self.prices[m]
        for m in models:
            keys = [k for k in self.prices if m.startswith(k + "-")]
            if keys:
                return self.prices[max(keys, key=len)]
        return None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for one call, or None when the model's price is unknown."""
        p = self.price(model)
        return None if p is None else p.cost(prompt_tokens, completion_tokens)


def format_usd(value: float | None, unknown_calls: int = 0) -> str:
    """``$0.0123``; ``unknown`` for None; ``$0.0123 + N calls of unknown cost`` when mixed."""
    if value is None:
        return "unknown"
    text = f"${value:.4f}"
    if unknown_calls:
        text += f" + {unknown_calls} call{'s' if unknown_calls != 1 else ''} of unknown cost"
    return text


def spend_text(usd: float, calls: int, unknown_calls: int) -> str:
    """Spend over ``calls`` of which ``unknown_calls`` have no price: never "$0" for unknown."""
    if calls and unknown_calls == calls:
        return "unknown"
    return format_usd(usd, unknown_calls)
