"""Successive halving wired into the engine (``search.schedule = "halving"``), with a fake evaluator.

The fake's perplexity is a function of the tree and of the budget it is asked
for, with independent orders at each budget, so "better at the search budget,
worse at the longer one" happens by construction; nothing trains.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import pytest

from darwin_bot.config import Config, from_dict
from darwin_bot.core import Budget, EvalResult, Metrics
from darwin_bot.engine import Engine
from darwin_bot.git import GitRepo
from darwin_bot.llm import make_llm
from tests.engine.test_engine import _files_hash

SEARCH = 10  # iterations at rung 0; the rungs are 1x, 2x, 5x of it


class RungEvaluator:
    """Seed: 10 at every budget. Any other tree: 8.5 + a hash-drawn offset per budget, in [0, 1)."""

    version = "fake-1"

    def __init__(self, seed_hash: str, crash_after_rung_runs: int | None = None) -> None:
        self.seed_hash = seed_hash
        self.calls: Counter[tuple[str, int, int]] = Counter()  # (tree, seed, iters)
        self.crash_after = crash_after_rung_runs

    def ppl(self, digest: str, iters: int) -> float:
        if digest == self.seed_hash:
            return 10.0
        at = {SEARCH: 0, 2 * SEARCH: 6, 5 * SEARCH: 12}[iters]  # independent hash digits
        return 8.5 + int(digest[at : at + 6], 16) / 0x1000000

    def __call__(
        self,
        tree: Path,
        *,
        seed: int,
        smoke: bool = False,
        budget: Budget | None = None,
        preset: str | None = None,
    ) -> EvalResult:
        digest = _files_hash(tree)
        if smoke:
            return EvalResult("ok", "", None, "cpu", seed, Budget(iters=2), self.version, digest)
        budget = budget or Budget(iters=SEARCH)
        rung_runs = sum(n for (_, _, it), n in self.calls.items() if it != SEARCH)
        limit = self.crash_after
        if budget.iters != SEARCH and limit is not None and rung_runs >= limit:
            raise KeyboardInterrupt("simulated kill between two rung runs")
        self.calls[(digest, seed, budget.iters or 0)] += 1
        m = Metrics(
            val_loss=2.3,
            perplexity=self.ppl(digest, budget.iters or 0) + 0.001 * seed,
            mfu=0.1,
            tokens_per_s=1000.0,
            train_seconds=1.0,
            peak_mem_mb=10.0,
            train_wall_s=1.0,
        )
        return EvalResult("ok", "", m, "cpu", seed, budget, self.version, digest[:16])

    def trees_at(self, iters: int) -> set[str]:
        return {d for (d, _, it) in self.calls if it == iters}


def _cfg(schedule: str = "halving") -> Config:
    return from_dict(
        {
            "evolution": {"population": 5, "survivors": 2, "seed": 3},
            "budget": {"iters": SEARCH, "repeats": 3},
            "search": {"schedule": schedule, "rungs": [1, 2, 5], "keep": 0.5},
            "fitness": {"mfu_weight": 0.0},
            "llm": {"backend": "heuristic"},
        }
    )


def _seed_hash(root: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        GitRepo(root).export("HEAD", ["seed/"], Path(tmp))
        return _files_hash(Path(tmp))


def _engine(root: Path, cfg: Config, ev: RungEvaluator) -> Engine:
    return Engine(
        GitRepo(root, prefix=cfg.evolution.branch_prefix),
        cfg,
        evaluator=ev,  # type: ignore[arg-type]
        llm_factory=lambda seed: make_llm(cfg.llm, seed=seed),
    )


def _hash_of(engine: Engine, agent: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        engine.repo.export(engine.head(agent), ["seed/"], Path(tmp))
        return _files_hash(Path(tmp))


def _expected(ev: RungEvaluator, seed: str) -> tuple[set[str], str]:
    """The rung-1 entrants and the top-rung agent, from the fake's own numbers."""
    offspring = ev.trees_at(SEARCH) - {seed}
    assert len(offspring) == 4

    def best(trees: set[str], iters: int, n: int) -> set[str]:
        return set(sorted(trees, key=lambda d: ev.ppl(d, iters))[:n])

    rung1 = best(offspring, SEARCH, 2)
    [top] = best(rung1, 2 * SEARCH, 1)
    return rung1, top


def test_the_best_half_advances_and_the_champion_is_chosen_at_the_top_rung(scratch) -> None:
    root = scratch()
    seed = _seed_hash(root)
    ev = RungEvaluator(seed)
    engine = _engine(root, _cfg(), ev)
    [summary] = engine.run(1)
    rung1, top = _expected(ev, seed)
    # rung 1: the 2 best of rung 0; rung 2: the best of those by rung 1's runs
    assert ev.trees_at(2 * SEARCH) - {seed} == rung1
    assert ev.trees_at(5 * SEARCH) - {seed} == {top}
    # the seed ran at every rung: once at rung 1, with the gate's repeats at the top
    assert {s for (d, s, it) in ev.calls if d == seed and it == 5 * SEARCH} == {3, 4, 5}
    assert {s for (d, s, it) in ev.calls if d == seed and it == 2 * SEARCH} == {3}
    # the leader is the top rung's agent, whatever the lower rungs' numbers say
    assert summary.leader is not None and _hash_of(engine, summary.leader) == top
    assert [r.agent for r in summary.ranking][0] == summary.leader
    assert summary.gate is not None and summary.gate.agent == summary.leader
    # its repeats ran at the top rung, and the gate compared them with the seed's there
    assert {s for (d, s, it) in ev.calls if d == top and it == 5 * SEARCH} == {3, 4, 5}
    assert summary.gate.passed and summary.champion == summary.leader
    assert max(ev.calls.values()) == 1  # every (tree, seed, budget) trained once
    # each rung has a cache key of its own: a rung's run is never read as another budget's
    keys = {p.name.split("-v")[0] for p in (engine.state / "evals").glob("*/*.json")}
    assert keys == {"tiny-iters=10", "tiny-iters=20", "tiny-iters=50"}
    seed_tree = engine.repo.tree_id(engine.seed_head(), ["seed/"])
    at_50 = engine.evals.cache_at(False, Budget(iters=50))
    assert at_50.key != engine.evals.cache.key
    assert engine.evals.cache.get(seed_tree, 5).budget == Budget(iters=SEARCH)  # type: ignore[union-attr]
    assert at_50.get(seed_tree, 5).budget == Budget(iters=50)  # type: ignore[union-attr]


def test_a_run_killed_between_rungs_resumes_without_retraining(scratch) -> None:
    root = scratch()
    seed = _seed_hash(root)
    crashing = RungEvaluator(seed, crash_after_rung_runs=2)  # inside rung 1
    with pytest.raises(KeyboardInterrupt):
        _engine(root, _cfg(), crashing).run(1)
    assert not crashing.trees_at(5 * SEARCH)
    resumed = RungEvaluator(seed)
    engine = _engine(root, _cfg(), resumed)
    [summary] = engine.run(1)
    both = RungEvaluator(seed)
    both.calls = crashing.calls + resumed.calls
    rung1, top = _expected(both, seed)
    assert both.trees_at(2 * SEARCH) - {seed} == rung1  # the same entrants after the restart
    assert summary.leader is not None and _hash_of(engine, summary.leader) == top
    assert max(both.calls.values()) == 1  # nothing trained twice
