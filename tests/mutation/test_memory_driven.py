"""The Breeder and the offline mutator over a real git repository (training faked by a hash).

Three generations: every edit is tagged in memory, no offspring repeats an
edit its lineage already has unless its record says it explored, and no two
trained offspring carry the same normalised change.
"""

from __future__ import annotations

from pathlib import Path

from darwin_bot.cli import make_scratch_repo
from darwin_bot.core import Outcome
from darwin_bot.llm.evidence import EditTag
from tests.engine.test_engine import FakeEvaluator, _cfg, _engine


def test_three_generations_learn_without_repeats(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    make_scratch_repo(root, "")
    cfg = _cfg(population=5, survivors=2, generations=3)
    engine = _engine(root, cfg, FakeEvaluator())
    engine.run(3)
    records = engine.memory.mutations()
    tagged = [r for r in records if r["edit"] and r["edit"]["tag"]]
    assert tagged and all(
        r["outcome"] in (Outcome.APPLIED, Outcome.REPAIRED, Outcome.DUPLICATE) for r in tagged
    )
    parents = {r["agent"]: r["parents"] for r in records}
    kept = {}
    for r in tagged:
        if r["outcome"] != Outcome.DUPLICATE:
            kept.setdefault(r["agent"], []).append(r)

    def ancestors(agent: str) -> set[str]:
        out, todo = set(), list(parents.get(agent, []))
        while todo:
            a = todo.pop()
            if a not in out:
                out.add(a)
                todo += parents.get(a, [])
        return out

    for agent, recs in kept.items():
        had = {
            EditTag.parse(x["edit"]["tag"]).effect
            for a in ancestors(agent)
            for x in kept.get(a, [])
        }
        for r in recs:
            if EditTag.parse(r["edit"]["tag"]).effect in had:
                assert r["edit"]["explore"] and "Exploring on purpose" in r["reason"], r
    evaluated = [r for r in tagged if r["fitness_delta"] is not None]
    assert evaluated, "no edit was credited with a measured fitness change"
    later = [r for r in tagged if r["generation"] >= 2]
    assert any("earlier" in r["reason"] and "% mean" in r["reason"] for r in later)
    trained = {}
    for r in records:
        change = (r["edit"] or {}).get("change")
        if change and r["outcome"] != Outcome.DUPLICATE and r["commit"]:
            assert trained.setdefault(change, r["agent"]) == r["agent"], "two offspring, one change"


def test_the_llm_digest_leads_with_the_evidence_within_digest_tokens(tmp_path: Path) -> None:
    from darwin_bot.config import from_dict
    from darwin_bot.engine.offspring import Breeder
    from darwin_bot.store import MemoryStore

    memory = MemoryStore(tmp_path / "memory")
    for i in range(3):
        memory.write_mutation(
            {"id": f"g001-00{i}-00", "timestamp": "t", "agent": f"g001-00{i}", "generation": 1,
             "parents": ["seed"], "kind": "mutate", "outcome": "applied", "summary": "RMSNorm",
             "fitness_delta": 0.018, "edit": {"tag": "rmsnorm", "explore": False, "change": f"c{i}"}}
        )  # fmt: skip
    for i in range(20):  # more per-mutation lines than the digest has room for
        agent = f"g001-1{i:02d}"
        line = {"id": f"{agent}-00", "timestamp": "t", "agent": agent, "generation": 1}
        line |= {"parents": ["seed"], "kind": "mutate", "outcome": "applied"}
        memory.write_mutation(line | {"summary": "x" * 40, "fitness_delta": -0.001 * (i + 1)})
    cfg = from_dict({"memory": {"digest_tokens": 100}})
    breeder = Breeder(None, cfg, memory, None, lambda seed: None)  # type: ignore[arg-type]
    text = breeder._digest(2)
    assert text.startswith("Measured effect per kind of edit")
    assert "3 earlier rmsnorm edits: +1.8 % mean (g001-000, g001-001, g001-002)" in text
    assert len(text) <= 100 * 4 and "Past mutations (" in text
    assert "g001-100" not in text  # the least informative line (the smallest change) did not fit
    breeder.use_memory = False
    assert breeder._digest(2) == ""
