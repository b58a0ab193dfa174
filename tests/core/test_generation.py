"""The pure generation core: plan() and select() over typed rows, without git or files."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from darwin_bot.core import Metrics, Previous, Row, Rules, Status
from darwin_bot.core import generation as gen

RULES = Rules(population=4, survivors=2, significance=0.05)
SEED_ONLY = Previous(("seed",))


def _m(ppl: float) -> Metrics:
    return Metrics(2.0, ppl, 0.1, 1000.0, 1.0, 10.0)


def row(agent: str, fitness: float, status: Status = Status.OK, generation: int = 1) -> Row:
    ok = status is Status.OK
    return Row(
        agent,
        generation,
        ("seed",),
        status=status,
        fitness=fitness if ok else -math.inf,
        metrics=_m(10.0 - fitness) if ok else None,
        n_runs=1,
    )


def _select(rows, *, samples=None, previous=SEED_ONLY, alive=None, base=(10.0, 10.1, 9.9)):
    alive = frozenset(r.agent for r in rows) if alive is None else alive
    return gen.select(
        rows, baseline=base, samples=samples or {}, previous=previous, alive=alive, rules=RULES
    )


def test_rank_puts_failures_last_and_numbers_rows() -> None:
    ranked = gen.rank([row("b", 0.1), row("a", -1, Status.FAILED), row("c", 0.3)])
    assert [(r.agent, r.rank) for r in ranked] == [("c", 1), ("b", 2), ("a", 3)]


def test_the_top_k_working_rows_survive_and_failures_never_do() -> None:
    out = _select([row("seed", 0.0, generation=0), row("x", 0.2), row("y", 0, Status.TIMEOUT)])
    assert out.keep == ("x", "seed")
    assert out.cull == ("y",)
    assert out.leader == "x"


def test_gate_decides_the_champion_and_writes_the_p_value_into_the_leader_row() -> None:
    rows = [row("seed", 0.0, generation=0), row("x", 0.5)]
    strong = _select(rows, samples={"x": [5.0, 5.1, 4.9]})
    assert strong.champion == "x" and strong.gate is not None and strong.gate.passed
    lead = next(r for r in strong.ranking if r.agent == "x")
    assert lead.p_value is not None and lead.p_value < 0.05
    weak = _select(rows, samples={"x": [9.9]})  # one run: needs repeats, never passes
    assert weak.champion is None and weak.gate is not None and not weak.gate.passed


def test_no_gate_when_the_seed_leads() -> None:
    out = _select([row("seed", 0.0, generation=0), row("x", -0.2)])
    assert out.leader == "seed" and out.gate is None and out.champion is None


def test_a_previous_champion_stays_until_something_beats_it() -> None:
    rows = [row("a", 0.3), row("b", 0.2), row("champ", 0.1)]
    out = _select(rows, previous=Previous(("a", "champ"), champion="champ"))
    assert out.keep == ("a", "b", "champ") and "champ" not in out.cull


def test_nothing_works_keeps_the_previous_survivors() -> None:
    rows = [row("a", 0, Status.FAILED), row("b", 0, Status.REJECTED)]
    out = _select(rows, previous=Previous(("seed",)), alive=frozenset({"a"}))
    assert out.keep == ("seed",)
    assert out.cull == ("a",)  # b has no branch (rejected at mutation): nothing to cull


def test_plan_fills_the_population_from_working_parents_only() -> None:
    pool = [row("a", 0.2), row("b", 0, Status.FAILED)]
    plans = gen.plan(pool, {}, RULES, random.Random(1))
    assert [p.index for p in plans] == [0, 1]  # population 4 minus a pool of 2
    assert {p for plan in plans for p in plan.parents} == {"a"}


def test_plan_is_a_function_of_the_seed_not_of_the_input_order() -> None:
    pool = [row("a", 0.2), row("b", 0.1), row("c", 0.05)]
    rules = Rules(population=8, survivors=3, crossover_rate=0.5, method="dgm")
    one = gen.plan(pool, {"a": 3}, rules, random.Random(7))
    two = gen.plan(list(reversed(pool)), {"a": 3}, rules, random.Random(7))
    assert one == two and any(p.kind == "crossover" for p in one)


def test_row_json_round_trip_keeps_a_failure_a_failure() -> None:
    failed = Row("x", 2, ("seed",), status=Status.TIMEOUT, reason="slow")
    data = failed.to_json()
    assert data["fitness"] is None and data["status"] == "timeout"
    assert Row.from_json(data) == failed
    with pytest.raises(ValueError):
        Row.from_json({**data, "status": "great"})


def _rows_with_runs(lead_runs: int) -> list[Row]:
    rows = [row("seed", 0.0, generation=0), row("lucky", 0.9), row("real", 0.6)]
    return [replace(r, n_runs=lead_runs) if r.agent == "lucky" else r for r in rows]


def test_a_confirmed_agent_behind_a_single_lucky_run_is_gated_and_promoted() -> None:
    # Confirming the first leader put it behind another agent's single run: the
    # gate goes to the best agent with repeats instead of refusing the lucky one.
    samples = {"lucky": [9.0], "real": [9.4, 9.45, 9.35]}
    out = _select(_rows_with_runs(1), samples=samples)
    assert out.leader == "lucky"
    assert out.gate is not None and out.gate.agent == "real" and out.gate.passed
    assert out.champion == "real"
    assert "the leader lucky has 1 run" in out.gate.result.reason
    gated = next(r for r in out.ranking if r.agent == "real")
    assert gated.p_value == out.gate.result.p_value
    # with repeats on the leader itself, the leader is gated as before
    full = _select(_rows_with_runs(3), samples={**samples, "lucky": [9.0, 9.1, 8.9]})
    assert full.gate is not None and full.gate.agent == "lucky" and full.champion == "lucky"


def test_the_fallback_never_gates_past_the_seed_or_re_promotes_the_champion() -> None:
    samples = {"lucky": [9.0], "real": [9.4, 9.45, 9.35]}
    behind_seed = [row("lucky", 0.9), row("seed", 0.7, generation=0), row("real", 0.6)]
    out = _select(behind_seed, samples=samples)
    assert out.gate is not None and out.gate.agent == "lucky" and out.champion is None
    assert "needs repeats" in out.gate.result.reason
    champ = _select(
        _rows_with_runs(1), samples=samples, previous=Previous(("real",), champion="real")
    )
    assert champ.gate is not None and champ.gate.agent == "lucky" and champ.champion is None


def test_gate_fallback_names_the_agent_ci_must_also_confirm() -> None:
    # Before the leader's repeats are in, CI asks whom the gate would test if they
    # dropped it: the best agent that already has its repeats, never the seed's
    # side of the table or the champion, and the leader's own runs do not count.
    rows = gen.rank(_rows_with_runs(1))
    lead = gen.leader(rows)
    assert lead is not None and lead.agent == "lucky"
    samples = {"lucky": [9.0, 9.1, 8.9], "real": [9.4, 9.45, 9.35]}
    backup = gen.gate_fallback(rows, lead, samples, SEED_ONLY, RULES)
    assert backup is not None and backup.agent == "real"
    # the same agent select falls back to once the repeats drop the leader to one run
    assert _select(_rows_with_runs(1), samples={**samples, "lucky": [9.0]}).gate.agent == "real"  # type: ignore[union-attr]
    assert gen.gate_fallback(rows, lead, {"lucky": [9.0]}, SEED_ONLY, RULES) is None
    champ = Previous(("real",), champion="real")
    assert gen.gate_fallback(rows, lead, samples, champ, RULES) is None
    behind_seed = gen.rank([row("lucky", 0.9), row("seed", 0.7, generation=0), row("real", 0.6)])
    assert gen.gate_fallback(behind_seed, behind_seed[0], samples, SEED_ONLY, RULES) is None


def test_every_offspring_with_repeats_has_its_p_value_but_only_the_gate_decides() -> None:
    rows = [row("seed", 0.0, generation=0), row("x", 0.5), row("y", 0.1), row("z", 0.05)]
    out = _select(rows, samples={"x": [9.0, 9.6, 8.8], "y": [9.95, 9.8], "z": [9.9]})
    p = {r.agent: r.p_value for r in out.ranking}
    assert out.gate is not None and out.gate.agent == "x"
    assert p["y"] is not None and 0.05 < p["y"] < 1.0  # measured, not significant
    assert p["z"] is None and p["seed"] is None  # one run: no test; the seed is the reference
    assert out.champion in (None, "x")
