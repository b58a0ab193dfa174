"""Everything under memory/: typed records, schemas, atomic writes, the eval cache (its only reader), run state."""

from typing import TYPE_CHECKING

from darwin_bot import lazy_surface

if TYPE_CHECKING:
    from darwin_bot.store.history import History
    from darwin_bot.store.jsonio import read_json, write_json
    from darwin_bot.store.memory import MemoryStore, fit_lines, utc_now
    from darwin_bot.store.records import (
        Baseline,
        GenerationSummary,
        JournalState,
        MutationEdit,
        MutationRecord,
        OffspringRecord,
        PlanItem,
        SelectionJournal,
    )
    from darwin_bot.store.state import EvalCache, RunState, remove_stale_temps


# The package's surface: code outside the package imports these names from here, never
# from a module of the package (tests/test_house.py holds the rule and the listing in
# tests/surface.txt). Each name is imported from its module on first use (PEP 562), so
# importing one module of the package (a sandbox worker) does not import the rest.
__all__ = [
    "Baseline",
    "EvalCache",
    "GenerationSummary",
    "History",
    "JournalState",
    "MemoryStore",
    "MutationEdit",
    "MutationRecord",
    "OffspringRecord",
    "PlanItem",
    "RunState",
    "SelectionJournal",
    "fit_lines",
    "read_json",
    "remove_stale_temps",
    "utc_now",
    "write_json",
]
_HOMES = {
    "Baseline": ".records",
    "EvalCache": ".state",
    "GenerationSummary": ".records",
    "History": ".history",
    "JournalState": ".records",
    "MemoryStore": ".memory",
    "MutationEdit": ".records",
    "MutationRecord": ".records",
    "OffspringRecord": ".records",
    "PlanItem": ".records",
    "RunState": ".state",
    "SelectionJournal": ".records",
    "fit_lines": ".memory",
    "read_json": ".jsonio",
    "remove_stale_temps": ".state",
    "utc_now": ".memory",
    "write_json": ".jsonio",
}


__getattr__ = lazy_surface(__name__, _HOMES, globals())
