"""The JSON memory store: schema, atomic idempotent writes, reading back, the digest."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from darwin_bot.cli import cli
from darwin_bot.errors import StateError
from darwin_bot.store.memory import CHARS_PER_TOKEN, MemoryStore, utc_now


def mutation(agent: str, n: int = 1, generation: int = 1, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": f"{agent}-{n}",
        "timestamp": "2026-01-01T00:00:00Z",
        "agent": agent,
        "generation": generation,
        "parents": ["seed"],
        "file": "seed/train.py",
        "chunk": n,
        "summary": f"change {n} of {agent}",
        "model": "heuristic",
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "cost_usd": 0.001,
        "commit": "abc123",
        "kind": "mutate",
        "outcome": "pending",
        "reason": "",
        "metrics_before": {"perplexity": 10.0, "mfu": 0.1},
        "metrics_after": None,
        "fitness_delta": None,
    }
    rec.update(extra)
    return rec


def generation(g: int, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "generation": g,
        "ranking": [
            {
                "agent": "g001-000",
                "fitness": 0.05,
                "status": "ok",
                "perplexity": 9.5,
                "mfu": 0.1,
                "rank": 1,
                "generation": g,
                # as the engine writes it: every field of Metrics (core.results)
                "metrics": {
                    "val_loss": 2.25,
                    "perplexity": 9.5,
                    "mfu": 0.1,
                    "tokens_per_s": 1e3,
                    "train_seconds": 1.0,
                    "peak_mem_mb": 10.0,
                },
                "n_runs": 3,
            },
            {"agent": "g001-001", "fitness": -math.inf, "status": "failed", "reason": "crash"},
        ],
        "survivors": ["g001-000"],
        "culled": ["g001-001"],
        "champion": None,
        "leader": "g001-000",
        "gate": {"p_value": 0.2, "effect_size": 0.05, "passed": False},
        "baseline": {"mean": {"perplexity": 10.0, "mfu": 0.1}, "std": {"perplexity": 0.1}, "n": 3},
        "timings": {"select_s": 1.5},
        "tokens": {"prompt": 10, "completion": 5},
        "cost_usd": 0.01,
    }
    rec.update(extra)
    return rec


def test_mutation_roundtrip_fills_defaults(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "memory")
    rec = mutation("g001-000")
    for optional in ("model", "cost_usd", "metrics_after", "fitness_delta", "reason"):
        del rec[optional]
    path = store.write_mutation(rec)
    assert path == tmp_path / "memory" / "g001" / "mutations" / "g001-000-1.json"
    [back] = store.mutations()
    assert back["model"] == "" and back["cost_usd"] == 0.0 and back["fitness_delta"] is None
    assert back["summary"] == "change 1 of g001-000"


def test_rewrite_is_idempotent_and_atomic(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    first = store.write_mutation(mutation("g001-000"))
    before = first.read_bytes()
    mtime = first.stat().st_mtime_ns
    again = store.write_mutation(mutation("g001-000"))
    assert again == first
    assert first.read_bytes() == before
    assert first.stat().st_mtime_ns == mtime  # unchanged content is not rewritten
    store.write_mutation(mutation("g001-000", summary="changed"))
    assert len(store.mutations()) == 1
    assert store.mutations()[0]["summary"] == "changed"
    # no temporary files left behind
    assert [p.name for p in first.parent.iterdir()] == [first.name]


def test_records_are_strict_json_and_deterministic(tmp_path: Path) -> None:
    a, b = MemoryStore(tmp_path / "a"), MemoryStore(tmp_path / "b")
    pa = a.write_generation(generation(1))
    pb = b.write_generation(dict(reversed(list(generation(1).items()))))
    assert pa.read_bytes() == pb.read_bytes()
    text = pa.read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text)["ranking"][1]["fitness"] is None  # -inf stored as null


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"generation": "one"}, "generation"),
        ({"prompt_tokens": -1}, "prompt_tokens"),
        ({"kind": "teleport"}, "kind"),
        ({"id": "../escape"}, "id"),
        ({"parents": "seed"}, "parents"),
        ({"metrics_after": {"perplexity": "low"}}, "metrics_after"),
        ({"fitnes_delta": 0.1}, "fitnes_delta"),  # a typo is an unknown field
    ],
)
def test_schema_errors_name_the_field(tmp_path: Path, change: dict[str, Any], field: str) -> None:
    store = MemoryStore(tmp_path)
    with pytest.raises(StateError, match=f"'{field}'"):
        store.write_mutation(mutation("g001-000", **change))
    assert not (tmp_path / "g001").exists()  # nothing written


def test_missing_required_field(tmp_path: Path) -> None:
    rec = mutation("g001-000")
    del rec["outcome"]
    with pytest.raises(StateError, match="missing required field 'outcome'"):
        MemoryStore(tmp_path).write_mutation(rec)


def test_generation_schema_checks_nested_tables(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    bad = generation(1)
    bad["ranking"][0]["fitness"] = "high"
    with pytest.raises(StateError, match=r"ranking\[0\].*'fitness'"):
        store.write_generation(bad)
    with pytest.raises(StateError, match=r"gate.*'p_value'"):
        store.write_generation(generation(1, gate={"effect_size": 0.1}))


def test_corrupt_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    path = store.write_generation(generation(2))
    path.write_text("{ not json", encoding="utf-8")
    with pytest.raises(StateError) as err:
        store.generations()
    assert str(path) in str(err.value) and "restore it from git" in str(err.value)


def test_hand_edited_record_that_breaks_the_schema_is_caught_on_read(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    path = store.write_mutation(mutation("g001-000"))
    data = json.loads(path.read_text())
    data["generation"] = 7  # no longer matches its folder
    path.write_text(json.dumps(data))
    with pytest.raises(StateError, match="does not match its file name"):
        store.mutations()


def test_stray_entry_in_a_record_folder_is_an_error(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    store.write_mutation(mutation("g001-000"))
    (tmp_path / "g001" / "mutations" / "notes.txt").write_text("hi")
    with pytest.raises(StateError, match="notes.txt"):
        store.mutations()


def test_other_state_under_the_root_is_left_alone(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    store.write_generation(generation(1))
    (tmp_path / "g001" / "plan.json").write_text("{}")
    (tmp_path / "g001" / "offspring").mkdir()
    (tmp_path / "g001" / "offspring" / "g001-000.json").write_text("[1]")
    (tmp_path / "evals" / "tree").mkdir(parents=True)
    (tmp_path / "evals" / "tree" / "x.json").write_text("{}")
    (tmp_path / "run.json").write_text("{}")
    # an interrupted write's temporary file
    (tmp_path / "g001" / "mutations").mkdir()
    (tmp_path / "g001" / "mutations" / ".g001-000-1.json.abc.tmp").write_text("{")
    assert [g["generation"] for g in store.generations()] == [1]
    assert store.mutations() == []


def test_listing_order_and_last_generation(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    assert store.last_generation() is None and store.generations() == []
    for g in (2, 0, 10):
        store.write_generation(generation(g))
    store.write_mutation(mutation("g003-001", generation=3))  # g003 has no summary: incomplete
    for n in (10, 2, 1):
        store.write_mutation(mutation("g002-000", n=n, generation=2))
    assert [g["generation"] for g in store.generations()] == [0, 2, 10]
    assert store.last_generation() == 10
    assert [m["id"] for m in store.mutations()] == [
        "g002-000-1",
        "g002-000-2",
        "g002-000-10",
        "g003-001-1",
    ]
    assert [m["id"] for m in store.mutations(3)] == ["g003-001-1"]


def test_update_generation_metrics_touches_only_the_agents_named(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    store.write_mutation(mutation("g001-000", 1))
    store.write_mutation(mutation("g001-000", 2))
    store.write_mutation(mutation("g001-001", 1))
    paths = store.update_generation_metrics(1, {"g001-000": ({"perplexity": 9.0, "mfu": 0.1}, 0.1)})
    assert len(paths) == 2
    by_id = {m["id"]: m for m in store.mutations()}
    assert by_id["g001-000-2"]["metrics_after"] == {"perplexity": 9.0, "mfu": 0.1}
    assert by_id["g001-000-2"]["fitness_delta"] == 0.1
    assert by_id["g001-001-1"]["metrics_after"] is None
    assert store.update_generation_metrics(1, {"nobody": (None, None)}) == []


def test_requests(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    rec = {
        "key": "abc123def456",
        "kind": "data",
        "title": "More text",
        "agent": "g001-000",
        "state": "pending",
        "issue": 7,
    }
    path = store.write_request(rec)
    assert path.name == "abc123def456.json"
    assert store.requests()[0]["issue"] == 7
    with pytest.raises(StateError, match="'kind'"):
        store.write_request({**rec, "kind": "pizza"})


def _filled_store(tmp_path: Path) -> MemoryStore:
    store = MemoryStore(tmp_path)
    deltas = {"g001-000": 0.002, "g001-001": -0.08, "g001-002": 0.15, "g001-003": None}
    for agent, delta in deltas.items():
        store.write_mutation(
            mutation(
                agent,
                outcome="applied" if delta is not None else "smoke_failed",
                reason="" if delta is not None else "NameError: x",
                metrics_after={"perplexity": 9.0} if delta is not None else None,
                fitness_delta=delta,
                summary=f"idea of {agent}",
            )
        )
    store.write_mutation(mutation("g002-000", generation=2, summary="not evaluated yet"))
    return store


def test_digest_orders_by_information_and_lists_failures(tmp_path: Path) -> None:
    text = _filled_store(tmp_path).digest(1000)
    lines = text.splitlines()
    assert lines[1].startswith("- +0.1500 helped") and "idea of g001-002" in lines[1]
    assert lines[2].startswith("- -0.0800 hurt") and "idea of g001-001" in lines[2]
    assert lines[3].startswith("- +0.0020 helped")
    assert "failed [smoke_failed]" in lines[4] and "NameError: x" in lines[4]
    assert "perplexity 10.000 -> 9.000" in lines[1]
    assert "not evaluated yet" not in text  # pending records say nothing yet


@pytest.mark.parametrize("tokens", [0, 10, 25, 40, 60, 1000])
def test_digest_respects_the_cap(tmp_path: Path, tokens: int) -> None:
    store = _filled_store(tmp_path)
    text = store.digest(tokens)
    assert len(text) <= tokens * CHARS_PER_TOKEN
    full = store.digest(10_000)
    if text:
        # whatever is shown is a prefix of the full digest (most informative first),
        # possibly with a "more not shown" line
        shown = [line for line in text.splitlines() if "more not shown" not in line]
        assert full.splitlines()[: len(shown)] == shown
    if tokens < 1000:
        assert text != full


def test_empty_memory_digest_is_empty(tmp_path: Path) -> None:
    assert MemoryStore(tmp_path / "none").digest(100) == ""


def test_utc_now_format() -> None:
    stamp = utc_now()
    assert stamp.endswith("Z") and "T" in stamp and len(stamp) == 20


def test_cli_memory_show(tmp_path: Path) -> None:
    store = _filled_store(tmp_path / "memory")
    store.write_generation(generation(1))
    runner = CliRunner()
    res = runner.invoke(cli, ["memory", "show", "--path", str(tmp_path / "memory")])
    assert res.exit_code == 0, res.output
    assert "generation 1: leader g001-000" in res.output
    assert "idea of g001-002" in res.output and "+0.1500" in res.output
    res = runner.invoke(cli, ["memory", "show", "--path", str(tmp_path / "memory"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert len(doc["mutations"]) == 5 and doc["generations"][0]["generation"] == 1
    res = runner.invoke(
        cli, ["memory", "digest", "--path", str(tmp_path / "memory"), "--tokens", "30"]
    )
    assert res.exit_code == 0 and len(res.output.strip()) <= 120


def test_cli_memory_show_empty(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["memory", "show", "--repo", str(tmp_path)])
    assert res.exit_code == 0 and "is empty" in res.output


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize(
    ("rel", "breaks", "needles"),
    [
        # a hand edit that breaks the schema: the file and the field
        ("g001/mutations/g001-000-1.json", "fitness_delta", ("fitness_delta", "'high'")),
        ("g001/summary.json", "survivors", ("survivors",)),
        # a truncated file: the file, where it stops, and how to restore it
        ("g001/summary.json", None, ("line ", "restore it from git")),
        ("g001/mutations/g001-001-1.json", None, ("restore it from git",)),
    ],
)
def test_cli_bad_memory_is_one_line_exit_2_and_nothing_is_lost(
    tmp_path: Path, rel: str, breaks: str | None, needles: tuple[str, ...]
) -> None:
    import os
    import subprocess
    import sys

    root = tmp_path / "memory"
    store = MemoryStore(root)
    store.write_generation(generation(1))
    for agent in ("g001-000", "g001-001"):
        store.write_mutation(mutation(agent))
    path = root / rel
    if breaks is None:
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
        data[breaks] = "high"
        path.write_text(json.dumps(data), encoding="utf-8")
    before = _files(root)
    for command in ("show", "digest"):
        res = subprocess.run(
            [sys.executable, "-m", "darwin_bot", "memory", command, "--path", str(root)],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )  # fmt: skip
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and res.stdout == "", res.stderr
        assert str(path) in lines[0], lines[0]
        for needle in needles:
            assert needle in lines[0], lines[0]
        assert _files(root) == before  # nothing rewritten, moved or deleted
