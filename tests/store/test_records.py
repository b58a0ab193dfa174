"""The typed mutation record: what it writes is what the memory's schema and readers expect."""

from __future__ import annotations

import json
from pathlib import Path

from darwin_bot.core import Metrics, MutationKind, Outcome
from darwin_bot.store import MemoryStore, MutationEdit, MutationRecord


def _record(**changes: object) -> MutationRecord:
    base = dict(
        id="g001-000-00",
        timestamp="2026-01-01T00:00:00Z",
        agent="g001-000",
        generation=1,
        parents=("seed",),
        file="model.py",
        chunk="MLP",
        summary="swap GELU for ReLU squared",
        model="heuristic",
        prompt_tokens=120,
        completion_tokens=30,
        cost_usd=0.0,
        commit="a" * 40,
        kind=MutationKind.MUTATE,
        outcome=Outcome.APPLIED,
        reason="",
        metrics_before=Metrics(3.1, 22.2, 0.05, 1000.0, 10.0, 300.0),
    )
    return MutationRecord(**{**base, **changes})  # type: ignore[arg-type]


def test_a_written_mutation_record_reads_back_as_plain_json(tmp_path: Path) -> None:
    rec = _record(edit=MutationEdit("relu2", True, "abc123"), left_out=("memory",))
    path = MemoryStore(tmp_path).write_mutation(rec.to_json())
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["kind"] == "mutate" and stored["outcome"] == "applied"
    assert stored["edit"] == {"tag": "relu2", "explore": True, "change": "abc123"}
    assert stored["left_out"] == ["memory"]
    assert stored["metrics_before"]["perplexity"] == 22.2
    assert stored["metrics_after"] is None and stored["fitness_delta"] is None
    assert MemoryStore(tmp_path).mutations(1) == [stored]


def test_a_record_without_an_edit_or_cut_sections_writes_neither() -> None:
    out = _record(outcome=Outcome.REJECTED, reason="no edit parsed").to_json()
    assert out["edit"] is None
    assert "left_out" not in out  # the key exists only when a section was cut
