"""The engine's own files under the memory root: the run target, plans, offspring, journals, evals.

Layout (next to the memory records of :mod:`darwin_bot.store.memory`)::

    run.json                          the generation an interrupted run must reach
    gNNN/plan.json                    the offspring of generation NNN, decided once
    gNNN/offspring/<agent>.json       what making each offspring produced
    gNNN/selection.json               the decided outcome of the generation (journal)
    evals/<tree>/<key>.json           one evaluation result (the cache)

Every file is written atomically (``jsonio.write_json``) and validated against
its schema (``memory/schemas/``) when read, so a truncated or hand-broken file
is one ``StateError`` line naming it, never a silent skip.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from darwin_bot.core import Budget, EvalResult
from darwin_bot.errors import BrokenState
from darwin_bot.store import schema
from darwin_bot.store.jsonio import write_json
from darwin_bot.store.records import OffspringRecord, PlanItem, SelectionJournal

_GEN_DIR = re.compile(r"^g\d{3,}$")


def gen_dir_name(g: int) -> str:
    """The folder of generation ``g`` under the memory root: ``g001``."""
    return f"g{g:03d}"


def load(kind: str, path: Path) -> dict[str, Any]:
    """Read ``path`` and validate it as a ``kind`` record; one line naming the file otherwise."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BrokenState(
            f"{path}: not a readable JSON {kind} file ({exc}); restore it from git "
            "(git checkout -- <file>) or delete it and rerun the step"
        ) from exc
    return schema.validate(kind, data, str(path))


class RunState:
    """Typed access to the engine's files under ``root`` (the memory folder)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def gdir(self, g: int) -> Path:
        return self.root / gen_dir_name(g)

    # -- run target ---------------------------------------------------------------
    def target(self) -> int | None:
        """The generation the current ``darwin run`` goes to; None before the first run."""
        path = self.root / "run.json"
        return int(load("run", path)["target"]) if path.exists() else None

    def set_target(self, target: int) -> None:
        write_json(self.root / "run.json", {"target": target})

    # -- plans ----------------------------------------------------------------------
    def plan_path(self, g: int) -> Path:
        return self.gdir(g) / "plan.json"

    def plan(self, g: int) -> list[PlanItem] | None:
        path = self.plan_path(g)
        if not path.exists():
            return None
        return [PlanItem.from_json(i) for i in load("plan", path)["offspring"]]

    def write_plan(self, g: int, items: list[PlanItem]) -> None:
        data = {"generation": g, "offspring": [i.to_json() for i in items]}
        write_json(self.plan_path(g), schema.validate("plan", data, "offspring plan"))

    # -- offspring --------------------------------------------------------------------
    def offspring_path(self, g: int, agent: str) -> Path:
        return self.gdir(g) / "offspring" / f"{agent}.json"

    def offspring(self, g: int) -> dict[str, OffspringRecord]:
        folder = self.gdir(g) / "offspring"
        if not folder.is_dir():
            return {}
        out = {}
        for p in sorted(folder.glob("*.json")):
            rec = OffspringRecord.from_json(load("offspring", p))
            if rec.agent != p.stem:
                raise BrokenState(
                    f"{p}: holds agent {rec.agent!r}; restore it from git or delete it"
                )
            out[p.stem] = rec
        return out

    def write_offspring(self, rec: OffspringRecord) -> None:
        data = schema.validate("offspring", rec.to_json(), f"offspring record {rec.agent}")
        write_json(self.offspring_path(rec.generation, rec.agent), data)

    # -- selection journal --------------------------------------------------------------
    def journal_path(self, g: int) -> Path:
        return self.gdir(g) / "selection.json"

    def journal(self, g: int) -> SelectionJournal | None:
        path = self.journal_path(g)
        return SelectionJournal.from_json(load("selection", path)) if path.exists() else None

    def write_journal(self, journal: SelectionJournal) -> None:
        data = schema.validate("selection", journal.to_json(), "selection journal")
        write_json(self.journal_path(journal.generation), data, allow_nan=False)

    # -- what darwin wrote ----------------------------------------------------------------
    def own_files(self) -> list[Path]:
        """Every engine file under the root (for the memory commit); stray files are not listed."""
        if not self.root.is_dir():
            return []
        found = [self.root / "run.json"]
        for child in sorted(self.root.iterdir()):
            if child.is_dir() and _GEN_DIR.match(child.name):
                found += [child / "plan.json", child / "selection.json"]
                found += sorted((child / "offspring").glob("*.json"))
        found += sorted((self.root / "evals").glob("*/*.json"))
        return [p for p in found if p.is_file()]

    def verify(self) -> None:
        """Validate every engine file (a truncated or foreign one is one line naming it)."""
        for path in self.own_files():
            kind = _kind_of(self.root, path)
            load(kind, path)


# jsonio.write_json's temporary files: ".<name>.<8 random chars>" next to the target.
_TEMP = re.compile(r"^\..+\.json\.[a-z0-9_]{8}$")


def remove_stale_temps(folder: Path) -> int:
    """Delete the temporary files of writes a killed run left under ``folder``; how many.

    Call with the run lock held: then no live writer can own one.
    """
    if not folder.is_dir():
        return 0
    stale = [p for p in folder.rglob(".*") if p.is_file() and _TEMP.match(p.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _kind_of(root: Path, path: Path) -> str:
    rel = path.relative_to(root).parts
    if rel[0] == "evals":
        return "eval"
    if rel == ("run.json",):
        return "run"
    if rel[-2] == "offspring":
        return "offspring"
    return {"plan.json": "plan", "selection.json": "selection"}[rel[-1]]


def corpus_slug(data: str) -> str:
    """``budget.data`` as one file-name-safe word: ``data/shakespeare_char`` -> ``data_shakespeare_char``."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", data.strip("/")) or "_"


class EvalCache:
    """Evaluation results by (tree id, budget, evaluator version, corpus, seed), under ``root/evals``.

    A tree already scored under the same budget on the same corpus is never
    trained again. ``data`` is the corpus as ``budget.data`` names it: a new
    corpus (an approved data request) is a new folder, so nothing measured on
    the old one is reused for it.
    """

    def __init__(self, root: Path, preset: str, budget: Budget, version: str, data: str) -> None:
        self.root = root / "evals"
        self.key = f"{preset}-{budget.key()}-v{version}-d{corpus_slug(data)}"

    def path(self, tree: str, seed: int) -> Path:
        return self.root / tree.replace("+", "_") / f"{self.key}-s{seed}.json"

    def get(self, tree: str, seed: int) -> EvalResult | None:
        path = self.path(tree, seed)
        return EvalResult.from_dict(load("eval", path)) if path.exists() else None

    def put(self, tree: str, seed: int, result: EvalResult) -> None:
        write_json(self.path(tree, seed), result.to_dict())

    def results(self, tree: str) -> list[EvalResult]:
        """Every seed's result of ``tree`` under this key, by seed: one evaluator version, one corpus.

        Results of another evaluator version or corpus sit beside them in the
        same folder under other keys; they are not comparable and never read here.
        """
        folder = self.root / tree.replace("+", "_")
        found = []
        for path in folder.glob(f"{self.key}-s*.json"):
            seed = path.stem[len(self.key) + 2 :]
            if seed.isdigit():
                found.append((int(seed), EvalResult.from_dict(load("eval", path))))
        return [result for _, result in sorted(found, key=lambda pair: pair[0])]
