"""Ranking, survivors and the seeded offspring plan."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from darwin_bot.core import Row, Status
from darwin_bot.core import selection as sel
from darwin_bot.core.fitness import FAILED
from darwin_bot.errors import StateError


def s(agent: str, fitness: float, ok: bool = True) -> Row:
    return Row(agent, 1, (), status=Status.OK if ok else Status.FAILED, fitness=fitness)


POOL = [s("a", 0.05), s("b", 0.02), s("c", -0.01), s("d", 0.10), s("e", 0.0)]


def test_rank_orders_by_fitness_then_agent_with_failures_last() -> None:
    scored = [
        s("x", FAILED, ok=False),
        s("b", 0.1),
        s("a", 0.1),
        s("c", 0.3),
        s("y", 0.9, ok=False),
    ]
    assert [r.agent for r in sel.rank(scored)] == ["c", "a", "b", "x", "y"]


def test_rank_rejects_duplicate_agents() -> None:
    with pytest.raises(StateError, match="scored twice"):
        sel.rank([s("a", 0.1), s("a", 0.2)])


def test_failed_never_survives_over_a_working_one() -> None:
    # a "failed" agent with a high number must still not survive
    scored = [s("bad", 5.0, ok=False), s("nan", math.nan), s("weak", -0.5), s("ok", 0.1)]
    kept = sel.survivors(sel.rank(scored), 3)
    assert [k.agent for k in kept] == ["ok", "weak"]


def test_no_working_candidate_means_no_survivors() -> None:
    assert sel.survivors([s("x", FAILED, ok=False)], 2) == []


def test_survivors_take_the_top_k() -> None:
    assert [k.agent for k in sel.survivors(POOL, 2)] == ["d", "a"]


def test_plans_are_reproducible_and_order_independent() -> None:
    def plan(pool: list[Row], seed: int, method: str) -> list[sel.OffspringPlan]:
        return sel.plan_offspring(pool, 12, 0.5, random.Random(seed), method, 3)  # type: ignore[arg-type]

    for method in sel.METHODS:
        first = plan(POOL, 42, method)
        assert first == plan(POOL, 42, method)
        assert first == plan(list(reversed(POOL)), 42, method)
        assert len(first) == 12 - len(POOL)
        assert [p.index for p in first] == list(range(7))
    assert plan(POOL, 1, "tournament") != plan(POOL, 2, "tournament")


def test_plan_kinds_and_parents() -> None:
    plans = sel.plan_offspring(POOL, 40, 0.5, random.Random(0))
    kinds = Counter(p.kind for p in plans)
    assert kinds["crossover"] > 0 and kinds["mutate"] > 0
    for p in plans:
        if p.kind == "crossover":
            assert len(p.parents) == 2 and p.parents[0] != p.parents[1]
        else:
            assert len(p.parents) == 1
    assert sel.plan_offspring(POOL, 5, 0.5, random.Random(0)) == []


def test_plan_never_uses_a_failed_parent_and_mutates_when_only_one_works() -> None:
    pool = [s("good", 0.1), s("broken", FAILED, ok=False)]
    plans = sel.plan_offspring(pool, 8, 1.0, random.Random(3))
    assert all(p.kind == "mutate" and p.parents == ("good",) for p in plans)


def test_plan_without_working_parent_is_a_state_error() -> None:
    with pytest.raises(StateError, match="working parent"):
        sel.plan_offspring([s("broken", FAILED, ok=False)], 4, 0.0, random.Random(0))


def test_tournament_favours_the_best() -> None:
    picks = Counter(sel.sample_parents(POOL, 2000, random.Random(5), "tournament", 3))
    assert picks.most_common(1)[0][0] == "d"
    assert picks["d"] > picks["a"] > picks["c"]
    # the worst of five can win only a tournament of itself... which never happens with size 3
    assert picks["c"] == 0


def test_tournament_of_one_is_uniform() -> None:
    picks = Counter(sel.sample_parents(POOL, 5000, random.Random(9), "tournament", 1))
    assert set(picks) == {p.agent for p in POOL}
    assert max(picks.values()) - min(picks.values()) < 250


def test_dgm_prefers_fit_and_unexplored_parents() -> None:
    weights = dict(zip([p.agent for p in POOL], sel.dgm_weights(POOL), strict=True))
    assert weights["d"] > weights["a"] > weights["c"] > 0
    # the same fitness with many children weighs less
    crowded = sel.dgm_weights([s("x", 0.1), s("y", 0.1)], {"x": 9, "y": 0})
    assert crowded[0] == pytest.approx(crowded[1] / 10)


def test_dgm_counts_children_within_one_plan() -> None:
    # Two equal parents, 20 draws. Independent fair draws give E|x - y| = 3.5;
    # counting each draw as a child makes the sampler self-correcting (about 1.9).
    pool = [s("x", 0.1), s("y", 0.1)]
    gaps = []
    for seed in range(200):
        picks = Counter(sel.sample_parents(pool, 20, random.Random(seed), "dgm"))
        gaps.append(abs(picks["x"] - picks["y"]))
    assert sum(gaps) / len(gaps) < 2.6


def test_pair_parents_are_distinct() -> None:
    pairs = sel.pair_parents(POOL, 50, random.Random(11))
    assert len(pairs) == 50
    assert all(a != b for a, b in pairs)
    assert pairs == sel.pair_parents(POOL, 50, random.Random(11))
    with pytest.raises(StateError, match="at least 2"):
        sel.pair_parents([s("only", 0.1), s("broken", FAILED, ok=False)], 1, random.Random(0))


def test_bad_arguments_say_what_is_allowed() -> None:
    with pytest.raises(ValueError, match="tournament, dgm"):
        sel.sample_parents(POOL, 1, random.Random(0), "roulette")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1"):
        sel.survivors(POOL, 0)
