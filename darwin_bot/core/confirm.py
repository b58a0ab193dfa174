"""Promotion across two fidelities: a gain must hold at the search budget *and* a longer one.

A champion chosen on the search budget (100 iterations of the tiny preset by
default) may owe its gain to the short run: a larger learning rate, a
shorter warmup. ``budget.confirm_iters`` (or ``confirm_seconds``) names a
longer budget; the provisional champion and the baseline are re-run there
with ``confirm_repeats`` seeds, and :func:`promotion` promotes only when the
gain is significant at both. Pure: the engine gathers the perplexities and
records the decision (both gains and both p-values) in the summary.

Config design (``[budget]``)::

    confirm_iters = 500       # or confirm_seconds = 300.0; neither: no confirmation
    confirm_repeats = 3       # seeds at the confirmation budget (default: budget.repeats)
    confirm_preset = ""       # another preset for the confirmation runs ("" = budget.preset)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from darwin_bot.core.fitness import GateResult, champion_test
from darwin_bot.core.results import Budget, EvalResult


class Verdict(StrEnum):
    """Why a provisional champion is or is not promoted."""

    PROMOTED = "promoted"
    FAILED_SEARCH = "failed_search"  # not significant at the search budget: nothing to confirm
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # confirmation runs not all in yet
    FAILED_CONFIRMATION = "failed_confirmation"  # better at the search budget, not at the longer


@dataclass(frozen=True)
class ConfirmSpec:
    """The confirmation budget, or ``budget`` None when confirmation is off."""

    budget: Budget | None
    repeats: int
    preset: str

    @classmethod
    def from_config(cls, bc: Any) -> ConfirmSpec:
        """From a ``BudgetConfig`` (read with defaults, so older configs work unchanged)."""
        iters = getattr(bc, "confirm_iters", None)
        seconds = getattr(bc, "confirm_seconds", None)
        budget = Budget(iters=iters, seconds=seconds) if (iters or seconds) else None
        repeats = getattr(bc, "confirm_repeats", None) or bc.repeats
        preset = getattr(bc, "confirm_preset", "") or bc.preset
        return cls(budget, repeats, preset)


@dataclass(frozen=True)
class Promotion:
    """The two-fidelity decision with both tests, for the summary, the PR and the dashboard."""

    verdict: Verdict
    reason: str
    search: GateResult
    confirm: GateResult | None

    @property
    def promote(self) -> bool:
        return self.verdict is Verdict.PROMOTED

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": str(self.verdict),
            "passed": self.promote,
            "reason": self.reason,
            "search": self.search.to_dict(),
            "confirm": self.confirm.to_dict() if self.confirm else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Promotion:
        """From :meth:`to_dict`'s form (as the generation schema validated it)."""

        def gate(d: Mapping[str, Any] | None) -> GateResult | None:
            return GateResult(**{k: d[k] for k in GateResult.__dataclass_fields__}) if d else None

        search = gate(data["search"])
        assert search is not None  # the schema requires it
        return cls(Verdict(data["verdict"]), str(data["reason"]), search, gate(data.get("confirm")))


def confirm_samples(runs: Sequence[EvalResult]) -> list[float]:
    """Perplexity per confirmation run; a run that did not work is ``inf`` (it never passes).

    Unlike the search budget's samples, a failed confirmation run is kept: it
    counts as run (not "missing"), and :func:`promotion` refuses it.
    """
    return [r.metrics.perplexity if r.ok and r.metrics else math.inf for r in runs]


def _gain(g: GateResult) -> str:
    pct = "?" if g.effect_size is None else f"{100.0 * g.effect_size:+.2f}%"
    p = "n/a" if g.p_value is None else f"{g.p_value:.3g}"
    return f"perplexity {pct} (p={p})"


def promotion(
    search_candidate: Sequence[float],
    search_baseline: Sequence[float],
    confirm_candidate: Sequence[float] | None,
    confirm_baseline: Sequence[float] | None,
    alpha: float,
    *,
    confirm_runs: int | None,
) -> Promotion:
    """Promote only when the gain is significant at the search budget and at the confirmation one.

    ``confirm_runs``: the repeats the confirmation needs on each side (None:
    confirmation is off, and the search gate alone decides). Perplexities,
    lower is better; a failed run is a non-finite value and never passes.
    """
    search = champion_test(search_candidate, search_baseline, alpha)
    if not search.passed:
        return Promotion(Verdict.FAILED_SEARCH, f"search budget: {search.reason}", search, None)
    if confirm_runs is None:
        return Promotion(Verdict.PROMOTED, f"search budget: {search.reason}", search, None)
    cand, base = list(confirm_candidate or ()), list(confirm_baseline or ())
    if len(cand) < confirm_runs or len(base) < confirm_runs:
        return Promotion(
            Verdict.AWAITING_CONFIRMATION,
            f"passed at the search budget ({_gain(search)}); confirmation runs missing: "
            f"{len(cand)}/{confirm_runs} candidate, {len(base)}/{confirm_runs} baseline",
            search,
            None,
        )
    confirm = champion_test(cand, base, alpha)
    both = f"search budget {_gain(search)}; confirmation budget {_gain(confirm)}"
    if confirm.passed:
        return Promotion(Verdict.PROMOTED, f"passed at both budgets: {both}", search, confirm)
    return Promotion(
        Verdict.FAILED_CONFIRMATION,
        f"not promoted: better at the search budget but not at the confirmation budget "
        f"({both}; {confirm.reason})",
        search,
        confirm,
    )
