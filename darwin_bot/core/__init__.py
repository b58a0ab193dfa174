"""Pure evolution logic: no git, GitHub, LLM clients, torch or click in here."""

from typing import TYPE_CHECKING

from darwin_bot import lazy_surface

if TYPE_CHECKING:
    from darwin_bot.core.agent import (
        REQUEST_KINDS,
        SEED_AGENT,
        TRAILER_KEYS,
        Agent,
        HumanRequest,
        Mutation,
        MutationKind,
        Outcome,
        RequestStatus,
        agent_id,
    )
    from darwin_bot.core.confirm import ConfirmSpec, Promotion, confirm_samples
    from darwin_bot.core.fitness import champion_test, summarize
    from darwin_bot.core.generation import (
        Confirmation,
        Gate,
        Previous,
        Rules,
        Selection,
        gate_fallback,
        leader,
        plan,
        rank,
        select,
    )
    from darwin_bot.core.results import (
        CONTENTION_SLACK,
        METRIC_SOURCES,
        Budget,
        Cost,
        EvalResult,
        Metrics,
        SmokeDeferred,
        SmokeResult,
        Status,
        apply_cost_limit,
    )
    from darwin_bot.core.row import Row
    from darwin_bot.core.schedule import Schedule, ScheduleKind, Scores, entrants, standing, tiers
    from darwin_bot.core.significance import welch_one_sided
    from darwin_bot.core.time_to_loss import over_runs, points_of


# The package's surface: code outside the package imports these names from here, never
# from a module of the package (tests/test_house.py holds the rule and the listing in
# tests/surface.txt). Each name is imported from its module on first use (PEP 562), so
# importing one module of the package (a sandbox worker) does not import the rest.
__all__ = [
    "Agent",
    "Budget",
    "CONTENTION_SLACK",
    "ConfirmSpec",
    "Confirmation",
    "Cost",
    "EvalResult",
    "Gate",
    "HumanRequest",
    "METRIC_SOURCES",
    "Metrics",
    "Mutation",
    "MutationKind",
    "Outcome",
    "Previous",
    "Promotion",
    "REQUEST_KINDS",
    "RequestStatus",
    "Row",
    "Rules",
    "SEED_AGENT",
    "Schedule",
    "ScheduleKind",
    "Scores",
    "Selection",
    "SmokeDeferred",
    "SmokeResult",
    "Status",
    "TRAILER_KEYS",
    "agent_id",
    "apply_cost_limit",
    "champion_test",
    "confirm_samples",
    "entrants",
    "gate_fallback",
    "leader",
    "over_runs",
    "plan",
    "points_of",
    "rank",
    "select",
    "standing",
    "summarize",
    "tiers",
    "welch_one_sided",
]
_HOMES = {
    "Agent": ".agent",
    "Budget": ".results",
    "CONTENTION_SLACK": ".results",
    "ConfirmSpec": ".confirm",
    "Confirmation": ".generation",
    "Cost": ".results",
    "EvalResult": ".results",
    "Gate": ".generation",
    "HumanRequest": ".agent",
    "METRIC_SOURCES": ".results",
    "Metrics": ".results",
    "Mutation": ".agent",
    "MutationKind": ".agent",
    "Outcome": ".agent",
    "Previous": ".generation",
    "Promotion": ".confirm",
    "REQUEST_KINDS": ".agent",
    "RequestStatus": ".agent",
    "Row": ".row",
    "Rules": ".generation",
    "SEED_AGENT": ".agent",
    "Schedule": ".schedule",
    "ScheduleKind": ".schedule",
    "Scores": ".schedule",
    "Selection": ".generation",
    "SmokeDeferred": ".results",
    "SmokeResult": ".results",
    "Status": ".results",
    "TRAILER_KEYS": ".agent",
    "agent_id": ".agent",
    "apply_cost_limit": ".results",
    "champion_test": ".fitness",
    "confirm_samples": ".confirm",
    "entrants": ".schedule",
    "gate_fallback": ".generation",
    "leader": ".generation",
    "over_runs": ".time_to_loss",
    "plan": ".generation",
    "points_of": ".time_to_loss",
    "rank": ".generation",
    "select": ".generation",
    "standing": ".schedule",
    "summarize": ".fitness",
    "tiers": ".schedule",
    "welch_one_sided": ".significance",
}


__getattr__ = lazy_surface(__name__, _HOMES, globals())
